"""Named network namespaces the bed makes (``ip netns``), and sockets opened inside them.

A socket belongs to the namespace its creating thread was in. The bed opens every client and
server socket from its own process by entering a namespace on the current thread only
(``setns``), making the socket and coming back, so no helper process is needed per socket and
the test reads what the pod saw directly.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import shutil
import socket
import subprocess
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

_CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
NETNS_DIR = "/run/netns"
TOOLS = ("ip", "nft", "iptables", "conntrack")


def unavailable() -> str | None:
    """Why the bed's data path cannot run here, or ``None`` when it can."""
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        packages = "iproute2 nftables iptables conntrack"
        return f"{', '.join(missing)} not installed (apt-get install {packages})"
    if os.geteuid() != 0:
        return "named network namespaces need root"
    name = f"probe-{uuid.uuid4().hex[:6]}"
    made = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True, check=False)
    if made.returncode != 0:
        return f"ip netns add failed: {made.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)
    return None


def can_sudo() -> bool:
    """True when this (unprivileged) process may become root without a password."""
    if shutil.which("sudo") is None:
        return False
    done = subprocess.run(["sudo", "-n", "true"], capture_output=True, check=False)
    return done.returncode == 0


def build_cache() -> Path:
    """Where the bed's build scripts cache their binaries (as they compute it)."""
    if os.environ.get("FLOATING_IP_CACHE"):
        return Path(os.environ["FLOATING_IP_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "doks-floating-ip"


class Namespace:
    """A network namespace made by the bed, deleted by :meth:`delete`."""

    def __init__(self, role: str) -> None:
        # Short names: interface and namespace names end up in error messages and logs.
        self.name = f"fip-{role}-{uuid.uuid4().hex[:5]}"
        run(["ip", "netns", "add", self.name])
        self.run("ip", "link", "set", "lo", "up")

    @property
    def path(self) -> str:
        return f"{NETNS_DIR}/{self.name}"

    def argv(self, *argv: str) -> list[str]:
        """``argv`` as a command run inside this namespace."""
        return ["ip", "netns", "exec", self.name, *argv]

    def run(self, *argv: str, stdin: str | None = None) -> str:
        return run(self.argv(*argv), stdin=stdin)

    def socket(self, kind: socket.SocketKind) -> socket.socket:
        """A new IPv4 socket of ``kind`` that lives in this namespace."""
        with entered(self.path):
            return socket.socket(socket.AF_INET, kind)

    def delete(self) -> None:
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True, check=False)


@contextlib.contextmanager
def entered(path: str) -> Iterator[None]:
    """The current thread inside the namespace at ``path``, back where it was afterwards."""
    with Path("/proc/thread-self/ns/net").open("rb") as home, Path(path).open("rb") as target:
        _setns(target.fileno())
        try:
            yield
        finally:
            _setns(home.fileno())


def _setns(fd: int) -> None:
    if _libc.setns(fd, _CLONE_NEWNET) != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"setns: {os.strerror(error)}")


def run(argv: Sequence[str], *, stdin: str | None = None) -> str:
    done = subprocess.run(list(argv), input=stdin, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout
