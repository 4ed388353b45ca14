"""Bounded retries: a fixed number of attempts, exponential backoff, one overall deadline."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

from floating_ip_annotator.errors import Transient
from floating_ip_common import backoff
from floating_ip_common.deadline import Deadline

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5
    """Tries per call (the metadata reads and the Kubernetes patch each get this many)."""
    request_timeout: float = 5.0
    """Seconds one HTTP request may take (less when the deadline is nearer)."""
    first_delay: float = 0.5
    """Seconds before the second attempt; doubles each time up to ``max_delay``."""
    max_delay: float = 4.0

    def delays(self) -> Iterator[float]:
        """The waits between attempts (one fewer than ``attempts``)."""
        return itertools.islice(
            backoff.growing(self.first_delay, self.max_delay), max(self.attempts - 1, 0)
        )


class GaveUp(Exception):
    """Every attempt failed transiently, or the deadline came first."""

    def __init__(self, attempts: int, cause: str, out_of_time: bool) -> None:
        super().__init__(cause)
        self.attempts = attempts
        self.cause = cause
        self.out_of_time = out_of_time

    def summary(self, timeout: float) -> str:
        tries = f"{self.attempts} attempt{'s' if self.attempts != 1 else ''}"
        if self.out_of_time:
            return f"{tries} within the {timeout:g}s timeout: {self.cause}"
        return f"{tries}: {self.cause}"


def with_retries(
    call: Callable[[float], T],
    *,
    policy: RetryPolicy,
    deadline: Deadline,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run ``call(timeout)`` until it returns; retry only when it raises :class:`Transient`.

    Any other exception ends the run at once (a permanent failure is not retried).
    """
    delays = policy.delays()
    attempts = 0
    cause = "no time left"
    while True:
        remaining = deadline.remaining()
        if remaining <= 0:
            raise GaveUp(attempts, cause, out_of_time=True)
        attempts += 1
        try:
            return call(min(policy.request_timeout, remaining))
        except Transient as error:
            cause = str(error)
        delay = next(delays, None)
        if delay is None:
            raise GaveUp(attempts, cause, out_of_time=False) from None
        if delay >= deadline.remaining():
            raise GaveUp(attempts, cause, out_of_time=True) from None
        sleep(delay)
