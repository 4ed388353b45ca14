"""A pod's server: answers every request, over TCP and UDP, with who answered and whom it saw.

The answer is ``<pod name> <source address>:<source port>``: the test reads there which pod
answered and whether the client's own address reached it (``externalTrafficPolicy: Local``).
A TCP connection may carry many requests, one line each, so a client can also tell whether an
established connection survives a move.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from testbed.dataplane.namespaces import Namespace

REQUEST = b"who\n"


def answer(pod: str, peer: tuple[str, int]) -> bytes:
    return f"{pod} {peer[0]}:{peer[1]}\n".encode()


@dataclass
class Answer:
    pod: str
    source: str

    @classmethod
    def parse(cls, raw: bytes) -> Answer:
        pod, peer = raw.decode().split()
        return cls(pod, peer.rsplit(":", 1)[0])


@dataclass
class EchoServer:
    """Listens on ``port`` (TCP and UDP) on every address of ``netns`` until :meth:`stop`."""

    pod: str
    netns: Namespace
    port: int
    _sockets: list[socket.socket] = field(default_factory=list)
    _threads: list[threading.Thread] = field(default_factory=list)
    _stopped: threading.Event = field(default_factory=threading.Event)

    def start(self) -> EchoServer:
        tcp = self.netns.socket(socket.SOCK_STREAM)
        tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        tcp.bind(("0.0.0.0", self.port))
        tcp.listen(128)
        udp = self.netns.socket(socket.SOCK_DGRAM)
        udp.bind(("0.0.0.0", self.port))
        self._sockets += [tcp, udp]
        self._spawn(self._accept, tcp)
        self._spawn(self._datagrams, udp)
        return self

    def stop(self) -> None:
        """Close every socket: a connection still open is reset, as a killed process's is."""
        self._stopped.set()
        for sock in list(self._sockets):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        for thread in self._threads:
            thread.join(timeout=5)

    def _spawn(self, target: Callable[[socket.socket], None], sock: socket.socket) -> None:
        thread = threading.Thread(target=target, args=(sock,), daemon=True)
        thread.start()
        self._threads.append(thread)

    def _accept(self, listener: socket.socket) -> None:
        while not self._stopped.is_set():
            try:
                conn, peer = listener.accept()
            except OSError:
                return
            self._sockets.append(conn)
            threading.Thread(target=self._serve, args=(conn, peer), daemon=True).start()

    def _serve(self, conn: socket.socket, peer: tuple[str, int]) -> None:
        with contextlib.suppress(OSError), conn.makefile("rb") as lines:
            for _ in lines:
                conn.sendall(answer(self.pod, peer))
        with contextlib.suppress(ValueError):
            self._sockets.remove(conn)
        conn.close()

    def _datagrams(self, sock: socket.socket) -> None:
        while not self._stopped.is_set():
            try:
                _, peer = sock.recvfrom(512)
                if self._stopped.is_set():
                    return
                sock.sendto(answer(self.pod, peer), peer)
            except OSError:
                return
