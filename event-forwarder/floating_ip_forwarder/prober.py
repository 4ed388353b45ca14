"""TCP connect probes, all of a round at once on one thread (non-blocking sockets).

A probe succeeds when the connection is accepted; refused, unreachable and no answer within
the timeout all count as failures. The connection is closed at once, without sending a byte.
"""

from __future__ import annotations

import contextlib
import errno
import selectors
import socket
import struct
import time
from collections.abc import Iterable

Target = tuple[str, int]
"""``(address, port)``."""

BATCH = 256
"""Sockets open at once: stays well under the default limit of 1024 descriptors."""
ATTEMPTS = 3
"""Parallel connects per target, any of which may answer: one lost SYN or SYN-ACK (a lossy
network, not a dead node) then fails a probe in ~5 % of rounds at 20 % loss, not ~36 %."""


def probe(
    targets: Iterable[Target], timeout: float, attempts: int = ATTEMPTS
) -> dict[Target, bool]:
    """Connect to every target; ``True`` for each that accepted within ``timeout``."""
    unique = list(dict.fromkeys(targets))
    per_batch = max(1, BATCH // attempts)
    results: dict[Target, bool] = {}
    for start in range(0, len(unique), per_batch):
        results.update(_batch(unique[start : start + per_batch], timeout, attempts))
    return results


def _batch(targets: list[Target], timeout: float, attempts: int) -> dict[Target, bool]:
    results = dict.fromkeys(targets, False)
    with selectors.DefaultSelector() as selector:
        for target in targets:
            for _ in range(attempts):
                sock = _start(target)
                if sock is not None:
                    selector.register(sock, selectors.EVENT_WRITE, target)
        deadline = time.monotonic() + timeout
        while selector.get_map():
            left = deadline - time.monotonic()
            if left <= 0:
                break
            for key, _ in selector.select(left):
                done = key.fileobj
                assert isinstance(done, socket.socket)
                if done.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
                    results[key.data] = True
                selector.unregister(done)
                done.close()
        for key in list(selector.get_map().values()):
            selector.unregister(key.fileobj)
            assert isinstance(key.fileobj, socket.socket)
            key.fileobj.close()
    return results


def _start(target: Target) -> socket.socket | None:
    address, port = target
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    try:
        sock = socket.socket(family, socket.SOCK_STREAM)
    except OSError:
        return None
    sock.setblocking(False)
    # No lingering FIN_WAIT states on the probed pod: reset on close.
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    code = sock.connect_ex((address, port))
    if code in (0, errno.EINPROGRESS, errno.EWOULDBLOCK):
        return sock
    sock.close()
    return None
