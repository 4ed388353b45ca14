"""The time one invocation may spend: the platform's remaining time, capped, shared by every
retry and wait inside it (the clock arithmetic is the in-cluster parts' own Deadline)."""

from __future__ import annotations

import time

from floating_ip.errors import OutOfTime
from floating_ip_common.deadline import Deadline as RunDeadline

MAX_BUDGET = 25.0
"""Never spend more than this, whatever the platform allows: a web call must end < 30 s."""
SAFETY_MARGIN = 2.0
"""Left unused at the end, to build and send the response."""


class Deadline(RunDeadline):
    """A run's deadline that an invocation may sleep within."""

    @classmethod
    def from_platform(cls, remaining_ms: int | None) -> Deadline:
        """The platform's remaining time (DigitalOcean Functions' context), capped."""
        budget = MAX_BUDGET if remaining_ms is None else min(MAX_BUDGET, remaining_ms / 1000)
        return cls(max(0.0, budget - SAFETY_MARGIN))

    def sleep(self, seconds: float, what: str) -> None:
        """Sleep ``seconds`` if the deadline allows it, else raise :class:`OutOfTime`."""
        if seconds >= self.remaining():
            raise OutOfTime(f"out of time while waiting for {what}")
        time.sleep(max(0.0, seconds))
