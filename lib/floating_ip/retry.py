"""Retrying transient failures with capped exponential backoff inside a deadline."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import TypeVar

from floating_ip.deadline import Deadline
from floating_ip.errors import ConflictError, TransientError

T = TypeVar("T")

FIRST_DELAY = 0.2
MAX_DELAY = 4.0


def with_retries(call: Callable[[], T], deadline: Deadline, what: str) -> T:
    """Run ``call``; on :class:`TransientError` wait (honouring ``retry_after``) and retry
    until the deadline. Conflicts are not retried here: the caller must observe again."""
    delay = FIRST_DELAY
    while True:
        try:
            return call()
        except ConflictError:
            raise
        except TransientError as error:
            if error.retry_after is not None:
                wait = error.retry_after
            else:  # jitter spreads retries of concurrent invocations apart
                wait = delay * (0.5 + random.random() / 2)  # noqa: S311
            if wait >= deadline.remaining():
                raise
            deadline.sleep(wait, what)
            delay = min(MAX_DELAY, delay * 2)
