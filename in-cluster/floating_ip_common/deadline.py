"""The time a whole run may spend, shared by every call and wait inside it."""

from __future__ import annotations

import time
from collections.abc import Callable


class Deadline:
    """``seconds`` from now on ``clock`` (monotonic unless a test passes its own)."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.started = clock()
        self.seconds = seconds

    def remaining(self) -> float:
        """What is left, never below zero."""
        return max(0.0, self.seconds - self.elapsed())

    def elapsed(self) -> float:
        return self._clock() - self.started
