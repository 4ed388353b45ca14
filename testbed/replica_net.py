"""A forwarder replica's own node network, inside the node-death bed's namespace
(``testbed.netns``): so one replica's node can lose its path to the other nodes' pods while
it still reaches the API server.

```
 bed namespace: pods 10.244.x.y on lo, apiserver and function on 127.0.0.1
   └── veth 10.250.N.1/30 ── replica namespace: eth0 10.250.N.2/30, 10.244.0.0/16 via .1
```

The replica's probes go over the veth pair as over a node's link. Its loopback services (the
API server, the function) are relayed from its own 127.0.0.1 to the bed's, by this process,
and its metrics port the other way, so the test and the replica use the addresses they
always use. ``cut`` drops the replica's packets to every pod but those of its own node (a
firewall change, a bad route); ``heal`` lifts that. No root needed: the bed's namespace is
owned by the user namespace ``unshare -rn`` made.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

from testbed.netns import POD_RANGE

_CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
_CHAIN = "OUTPUT"


def unavailable() -> str | None:
    for tool in ("ip", "nsenter", "iptables"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (apt-get install iproute2 util-linux iptables)"
    return None


def _call(fn: str, *args: int) -> None:
    if getattr(_libc, fn)(*args) != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"{fn}: {os.strerror(error)}")


def _run(argv: list[str]) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.strip()}")


class ReplicaNetwork:
    """The namespace, its link, and relays for ``inbound`` loopback ports (the replica
    reaches them) and ``outbound`` ones (the bed reaches the replica's)."""

    def __init__(self, index: int, inbound: list[int], outbound: list[int]) -> None:
        self.fd = self._make()
        self.path = f"/proc/{os.getpid()}/fd/{self.fd}"
        self.outer = f"vr{index}"
        self.address = f"10.250.{index}.2"
        self._stop = threading.Event()
        self._servers: list[socket.socket] = []
        self._cut = False
        try:
            self._wire(index)
            for port in inbound:
                self._relay(self._socket_inside(), ("127.0.0.1", port), inside_to_out=True)
            for port in outbound:
                self._relay(socket.socket(), ("127.0.0.1", port), inside_to_out=False)
        except BaseException:
            self.close()
            raise

    def argv(self, argv: list[str]) -> list[str]:
        """``argv`` run inside this namespace."""
        return ["nsenter", f"--net={self.path}", "--", *argv]

    def cut(self, keep: list[str]) -> None:
        """Drop every packet to the pod range except to ``keep`` (its own node's pods)."""
        rules = [["-d", f"{address}/32", "-j", "ACCEPT"] for address in keep]
        rules.append(["-d", POD_RANGE, "-j", "DROP"])
        for rule in rules:
            _run(self.argv(["iptables", "-A", _CHAIN, *rule]))
        self._cut = True

    def heal(self) -> None:
        if self._cut:
            _run(self.argv(["iptables", "-F", _CHAIN]))
            self._cut = False

    def close(self) -> None:
        self._stop.set()
        for server in self._servers:
            with contextlib.suppress(OSError):
                server.shutdown(socket.SHUT_RDWR)
            server.close()
        subprocess.run(["ip", "link", "del", self.outer], capture_output=True, check=False)
        with contextlib.suppress(OSError):
            os.close(self.fd)

    # --- the namespace ---------------------------------------------------------------------

    @staticmethod
    def _make() -> int:
        """A new network namespace, held by a descriptor of this process (no process lives
        in it): made on a thread of its own, which alone enters it."""
        made: list[int] = []
        failed: list[BaseException] = []

        def unshare() -> None:
            try:
                _call("unshare", _CLONE_NEWNET)
                made.append(os.open("/proc/thread-self/ns/net", os.O_RDONLY))
            except BaseException as error:  # reported on the caller's thread
                failed.append(error)

        thread = threading.Thread(target=unshare)
        thread.start()
        thread.join()
        if failed:
            raise failed[0]
        return made[0]

    @contextlib.contextmanager
    def _entered(self) -> Iterator[None]:
        with Path("/proc/thread-self/ns/net").open("rb") as home:
            _call("setns", self.fd, _CLONE_NEWNET)
            try:
                yield
            finally:
                _call("setns", home.fileno(), _CLONE_NEWNET)

    def _socket_inside(self) -> socket.socket:
        with self._entered():
            return socket.socket()

    def _wire(self, index: int) -> None:
        inside = f"10.250.{index}.2/30"
        gateway = f"10.250.{index}.1"
        _run(self.argv(["ip", "link", "set", "lo", "up"]))
        _run(self.argv(["ip", "link", "add", "eth0", "type", "veth", "peer", "name", self.outer]))
        _run(self.argv(["ip", "link", "set", self.outer, "netns", str(os.getpid())]))
        _run(self.argv(["ip", "addr", "add", inside, "dev", "eth0"]))
        _run(self.argv(["ip", "link", "set", "eth0", "up"]))
        _run(self.argv(["ip", "route", "add", POD_RANGE, "via", gateway]))
        _run(["ip", "addr", "add", f"{gateway}/30", "dev", self.outer])
        _run(["ip", "link", "set", self.outer, "up"])

    # --- relays ----------------------------------------------------------------------------

    def _relay(self, server: socket.socket, address: tuple[str, int], inside_to_out: bool) -> None:
        """Listen on ``address`` on one side; each connection is joined to the same address
        on the other side."""
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(address)
        server.listen(64)
        self._servers.append(server)

        def accept() -> None:
            while not self._stop.is_set():
                try:
                    client, _ = server.accept()
                except OSError:
                    return
                other = socket.socket() if inside_to_out else self._socket_inside()
                try:
                    other.connect(address)
                except OSError:
                    client.close()
                    other.close()
                    continue
                for a, b in ((client, other), (other, client)):
                    threading.Thread(target=_pump, args=(a, b), daemon=True).start()

        threading.Thread(target=accept, daemon=True).start()


def _pump(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)
        with contextlib.suppress(OSError):
            source.close()
