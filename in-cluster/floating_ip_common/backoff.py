"""Capped exponential backoff, the one schedule every retry loop of the project uses (pure:
the random draw is passed in)."""

from __future__ import annotations

from collections.abc import Iterator


def ceiling(attempt: int, first: float, cap: float, factor: float = 2.0) -> float:
    """The longest wait before retry number ``attempt + 1``: ``first`` times ``factor`` per
    earlier attempt, at most ``cap``."""
    return min(cap, first * factor ** min(max(attempt, 0), 32))


def growing(first: float, cap: float, factor: float = 2.0) -> Iterator[float]:
    """``ceiling(0)``, ``ceiling(1)``, ... forever."""
    attempt = 0
    while True:
        yield ceiling(attempt, first, cap, factor)
        attempt += 1


def equal_jitter(delay: float, rand: float) -> float:
    """Half of ``delay`` fixed, half spread by ``rand`` (uniform in [0, 1)): concurrent
    retries drift apart, and none comes back almost at once."""
    return delay / 2 + delay / 2 * rand
