"""Retrying transient failures with capped exponential backoff inside a deadline."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import TypeVar

from floating_ip.deadline import Deadline
from floating_ip.errors import ConflictError, TransientError
from floating_ip_common import backoff

T = TypeVar("T")

FIRST_DELAY = 0.2
MAX_DELAY = 4.0


def with_retries(call: Callable[[], T], deadline: Deadline, what: str) -> T:
    """Run ``call``; on :class:`TransientError` wait (honouring ``retry_after``) and retry
    until the deadline. Conflicts are not retried here: the caller must observe again."""
    delays = backoff.growing(FIRST_DELAY, MAX_DELAY)
    while True:
        try:
            return call()
        except ConflictError:
            raise
        except TransientError as error:
            delay = next(delays)
            if error.retry_after is not None:
                wait = error.retry_after
            else:  # jitter spreads retries of concurrent invocations apart
                wait = backoff.equal_jitter(delay, random.random())  # noqa: S311
            if wait >= deadline.remaining():
                raise
            deadline.sleep(wait, what)
