"""A client's requests from inside a namespace: one answer, or why there was none."""

from __future__ import annotations

import errno
import socket
from dataclasses import dataclass

from testbed.dataplane.echo import REQUEST, Answer
from testbed.dataplane.namespaces import Namespace

TIMEOUT = 0.5


@dataclass
class Outcome:
    """An answer, or the failure a client saw: ``refused``, ``timeout``, ``reset``, …"""

    answer: Answer | None = None
    failure: str | None = None

    @property
    def pod(self) -> str | None:
        return self.answer.pod if self.answer else None


def request(
    netns: Namespace | None, ip: str, port: int, protocol: str = "TCP", timeout: float = TIMEOUT
) -> Outcome:
    """One request to ``ip:port`` over a new connection (TCP) or a new socket (UDP), from
    ``netns`` (``None``: the namespace this process is in)."""
    kind = socket.SOCK_STREAM if protocol == "TCP" else socket.SOCK_DGRAM
    with _socket(netns, kind) as sock:
        sock.settimeout(timeout)
        try:
            if protocol == "TCP":
                sock.connect((ip, port))
                sock.sendall(REQUEST)
                raw = _line(sock)
            else:
                sock.sendto(REQUEST, (ip, port))
                raw = sock.recv(512)
        except OSError as error:
            return Outcome(failure=failure(error))
    if not raw:
        return Outcome(failure="closed")
    return Outcome(answer=Answer.parse(raw))


class Connection:
    """One TCP connection carrying many requests, to see whether it survives a move."""

    def __init__(
        self, netns: Namespace | None, ip: str, port: int, timeout: float = TIMEOUT
    ) -> None:
        self._sock = _socket(netns, socket.SOCK_STREAM)
        self._sock.settimeout(timeout)
        self._sock.connect((ip, port))

    def request(self) -> Outcome:
        try:
            self._sock.sendall(REQUEST)
            raw = _line(self._sock)
        except OSError as error:
            return Outcome(failure=failure(error))
        return Outcome(answer=Answer.parse(raw)) if raw else Outcome(failure="closed")

    def close(self) -> None:
        self._sock.close()


def _socket(netns: Namespace | None, kind: socket.SocketKind) -> socket.socket:
    return socket.socket(socket.AF_INET, kind) if netns is None else netns.socket(kind)


def _line(sock: socket.socket) -> bytes:
    raw = b""
    while not raw.endswith(b"\n"):
        chunk = sock.recv(512)
        if not chunk:
            return raw
        raw += chunk
    return raw


def failure(error: OSError) -> str:
    if isinstance(error, TimeoutError | socket.timeout):
        return "timeout"
    if isinstance(error, ConnectionRefusedError):
        return "refused"
    if isinstance(error, ConnectionResetError):
        return "reset"
    if error.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
        return "unreachable"
    return type(error).__name__
