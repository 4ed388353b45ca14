"""A client's steady traffic to the reserved IP, and what it saw around one move.

Every ``interval`` a request goes out over TCP (a new connection) and over UDP (a new
socket), each on its own worker so a request left hanging never delays the next; one more
TCP connection stays open and carries a request every ``interval`` to tell whether an
established connection survives a move (it is reopened after it fails, and the failure is
recorded).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from testbed.dataplane.client import Connection, Outcome, request
from testbed.dataplane.namespaces import Namespace

INTERVAL = 0.01
TIMEOUT = 0.5
PROTOCOLS = ("TCP", "UDP")


@dataclass(frozen=True)
class Sample:
    sent: float
    protocol: str
    outcome: Outcome


@dataclass
class MoveSeen:
    """From the samples around one move, per protocol."""

    outage: dict[str, float] = field(default_factory=dict)
    """Seconds from the last answer of the old pod to the first of the new (by send time)."""
    lost: dict[str, int] = field(default_factory=dict)
    """Requests sent in between that got no answer."""
    requests: dict[str, int] = field(default_factory=dict)
    established: str = "kept"
    """What the open connection saw: ``kept``, or its first failure (``reset``, ``timeout``…)."""


class Traffic:
    def __init__(
        self,
        netns: Namespace,
        ip: str,
        port: int,
        interval: float = INTERVAL,
        timeout: float = TIMEOUT,
    ) -> None:
        self._netns, self._ip, self._port = netns, ip, port
        self._interval, self._timeout = interval, timeout
        self._samples: list[Sample] = []
        self._established: list[Sample] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=int(4 * timeout / interval) + 8)
        self._threads = [
            threading.Thread(target=self._tick, daemon=True),
            threading.Thread(target=self._hold, daemon=True),
        ]

    def start(self) -> Traffic:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=10)
        self._pool.shutdown(wait=True)

    def samples(self) -> tuple[list[Sample], list[Sample]]:
        """(requests, established-connection requests) recorded so far."""
        with self._lock:
            return list(self._samples), list(self._established)

    def clear(self) -> None:
        with self._lock:
            self._samples.clear()
            self._established.clear()

    def _tick(self) -> None:
        next_at = time.monotonic()
        while not self._stop.is_set():
            for protocol in PROTOCOLS:
                self._pool.submit(self._one, protocol, time.monotonic())
            next_at += self._interval
            self._stop.wait(max(0.0, next_at - time.monotonic()))

    def _one(self, protocol: str, sent: float) -> None:
        outcome = request(self._netns, self._ip, self._port, protocol, self._timeout)
        with self._lock:
            self._samples.append(Sample(sent, protocol, outcome))

    def _hold(self) -> None:
        connection: Connection | None = None
        while not self._stop.wait(self._interval):
            sent = time.monotonic()
            try:
                if connection is None:
                    connection = Connection(self._netns, self._ip, self._port, self._timeout)
                outcome = connection.request()
            except OSError as error:
                outcome = Outcome(failure=type(error).__name__)
            if outcome.answer is None and connection is not None:
                connection.close()
                connection = None
            with self._lock:
                self._established.append(Sample(sent, "TCP", outcome))
        if connection is not None:
            connection.close()


def seen_around(
    samples: Sequence[Sample], established: Sequence[Sample], old: str, new: str
) -> MoveSeen:
    """What the client saw of a move from pod ``old`` to pod ``new``."""
    seen = MoveSeen()
    for protocol in PROTOCOLS:
        mine = sorted((s for s in samples if s.protocol == protocol), key=lambda s: s.sent)
        last_old = max((s.sent for s in mine if s.outcome.pod == old), default=None)
        first_new = min((s.sent for s in mine if s.outcome.pod == new), default=None)
        if last_old is None or first_new is None:
            raise ValueError(f"{protocol}: no answer from {old if last_old is None else new}")
        between = [s for s in mine if last_old < s.sent < first_new]
        seen.outage[protocol] = max(0.0, first_new - last_old)
        seen.lost[protocol] = sum(1 for s in between if s.outcome.answer is None)
        seen.requests[protocol] = len(mine)
    held = sorted(established, key=lambda s: s.sent)
    failed = next((s for s in held if s.outcome.answer is None), None)
    if failed is not None:
        seen.established = failed.outcome.failure or "no answer"
    return seen
