"""A client's steady traffic to the reserved IP, and what it saw around one move.

Every ``interval`` a request goes out over TCP (a new connection) and over UDP (a new
socket), or over one of them only, each on its own worker so a request left hanging never
delays the next; one more TCP connection stays open and carries a request every
``interval`` to tell whether an established connection survives a move (it is reopened after
it fails, and the failure is recorded).

The client is a process of its own inside the client namespace (``python -m
testbed.dataplane.traffic``): the bed's process runs the function and the edge, and its
threads must not hold back the client's clock. Each request is one line of its output;
``time.monotonic`` is the machine's clock, shared by both processes.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from testbed import processes
from testbed.dataplane.client import Connection, Outcome, failure, request
from testbed.dataplane.echo import Answer
from testbed.dataplane.namespaces import Namespace

INTERVAL = 0.01
TIMEOUT = 0.5
PROTOCOLS = ("TCP", "UDP")
ESTABLISHED = "TCP-established"


@dataclass(frozen=True)
class Sample:
    sent: float
    protocol: str
    outcome: Outcome

    def line(self) -> str:
        answer = self.outcome.answer
        who = f"{answer.pod} {answer.source}" if answer else f"- {self.outcome.failure}"
        return f"{self.sent:.6f} {self.protocol} {who}\n"

    @classmethod
    def parse(cls, line: str) -> Sample:
        sent, protocol, pod, rest = line.split()
        outcome = Outcome(failure=rest) if pod == "-" else Outcome(answer=Answer(pod, rest))
        return cls(float(sent), protocol, outcome)


@dataclass
class MoveSeen:
    """From the samples around one move, per protocol."""

    outage: dict[str, float] = field(default_factory=dict)
    """Seconds from the last answer of the old pod to the first of the new (by send time)."""
    lost: dict[str, int] = field(default_factory=dict)
    """Requests sent in between that got no answer."""
    failures: dict[str, dict[str, int]] = field(default_factory=dict)
    """How those requests failed (``refused``: nothing listened; ``timeout``: dropped)."""
    last_old: dict[str, float] = field(default_factory=dict)
    first_new: dict[str, float] = field(default_factory=dict)
    """Send times (``time.monotonic``) of the old pod's last and the new pod's first answer."""
    established: str = "kept"
    """What the open connection saw: ``kept``, or its first failure (``reset``, ``timeout``…)."""


class Traffic:
    """The client process, started in ``netns``; its samples read back from its output."""

    def __init__(
        self,
        netns: Namespace,
        ip: str,
        port: int,
        workdir: Path,
        protocols: Sequence[str] = PROTOCOLS,
    ) -> None:
        out = workdir / "traffic.samples"
        out.write_text("")
        module = "testbed.dataplane.traffic"
        argv = [sys.executable, "-m", module, ip, str(port), ",".join(protocols)]
        self._process = processes.start(netns.argv(*argv), out)
        self._lines = out.open()
        self._kept: list[Sample] = []

    def samples(self) -> list[Sample]:
        """Everything recorded since the last :meth:`clear`."""
        while line := self._lines.readline():
            if not line.endswith("\n"):
                self._lines.seek(self._lines.tell() - len(line))
                break
            if line[:1].isdigit():  # anything else is the client's own complaint
                self._kept.append(Sample.parse(line))
        return list(self._kept)

    def clear(self) -> None:
        self.samples()
        self._kept.clear()

    def stop(self) -> None:
        processes.stop(self._process)
        self._lines.close()


def seen_around(
    samples: Sequence[Sample], old: str, new: str, protocols: Sequence[str] = PROTOCOLS
) -> MoveSeen:
    """What the client saw of a move from pod ``old`` to pod ``new``, over ``protocols``."""
    seen = MoveSeen()
    for protocol in protocols:
        mine = sorted((s for s in samples if s.protocol == protocol), key=lambda s: s.sent)
        last_old = max((s.sent for s in mine if s.outcome.pod == old), default=None)
        first_new = min((s.sent for s in mine if s.outcome.pod == new), default=None)
        if last_old is None or first_new is None:
            raise ValueError(f"{protocol}: no answer from {old if last_old is None else new}")
        between = [s for s in mine if last_old < s.sent < first_new]
        seen.outage[protocol] = max(0.0, first_new - last_old)
        seen.last_old[protocol], seen.first_new[protocol] = last_old, first_new
        failed = [s.outcome.failure or "" for s in between if s.outcome.answer is None]
        seen.lost[protocol] = len(failed)
        seen.failures[protocol] = {kind: failed.count(kind) for kind in sorted(set(failed))}
    held = sorted((s for s in samples if s.protocol == ESTABLISHED), key=lambda s: s.sent)
    broken = next((s for s in held if s.outcome.answer is None), None)
    if broken is not None:
        seen.established = broken.outcome.failure or "no answer"
    return seen


# --- the client process -----------------------------------------------------------------------


class _Client:
    def __init__(self, ip: str, port: int, protocols: Sequence[str], out: TextIO) -> None:
        self._ip, self._port, self._protocols, self._out = ip, port, protocols, out
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=int(4 * TIMEOUT / INTERVAL) + 8)

    def run(self) -> None:
        signal.signal(signal.SIGTERM, lambda *_: self._stop.set())
        held = threading.Thread(target=self._hold, daemon=True)
        held.start()
        next_at = time.monotonic()
        while not self._stop.is_set():
            for protocol in self._protocols:
                self._pool.submit(self._one, protocol, time.monotonic())
            next_at += INTERVAL
            self._stop.wait(max(0.0, next_at - time.monotonic()))
        held.join(timeout=5)
        self._pool.shutdown(wait=True)

    def _write(self, sample: Sample) -> None:
        with self._lock:
            self._out.write(sample.line())
            self._out.flush()

    def _one(self, protocol: str, sent: float) -> None:
        self._write(Sample(sent, protocol, request(None, self._ip, self._port, protocol, TIMEOUT)))

    def _hold(self) -> None:
        connection: Connection | None = None
        while not self._stop.wait(INTERVAL):
            sent = time.monotonic()
            try:
                if connection is None:
                    connection = Connection(None, self._ip, self._port, TIMEOUT)
                outcome = connection.request()
            except OSError as error:
                outcome = Outcome(failure=failure(error))
            if outcome.answer is None and connection is not None:
                connection.close()
                connection = None
            self._write(Sample(sent, ESTABLISHED, outcome))
        if connection is not None:
            connection.close()


if __name__ == "__main__":
    _Client(sys.argv[1], int(sys.argv[2]), sys.argv[3].split(","), sys.stdout).run()
