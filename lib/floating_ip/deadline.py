"""The time one invocation may spend, shared by every retry and wait inside it."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from floating_ip.errors import OutOfTime

MAX_BUDGET = 25.0
"""Never spend more than this, whatever the platform allows: a web call must end < 30 s."""
SAFETY_MARGIN = 2.0
"""Left unused at the end, to build and send the response."""


@dataclass
class Deadline:
    """Monotonic deadline; ``remaining()`` is what is left for work."""

    budget: float
    started: float = field(default_factory=time.monotonic)

    @classmethod
    def from_platform(cls, remaining_ms: int | None) -> Deadline:
        """The platform's remaining time (DigitalOcean Functions' context), capped."""
        budget = MAX_BUDGET if remaining_ms is None else min(MAX_BUDGET, remaining_ms / 1000)
        return cls(max(0.0, budget - SAFETY_MARGIN))

    def remaining(self) -> float:
        return self.budget - (time.monotonic() - self.started)

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def sleep(self, seconds: float, what: str) -> None:
        """Sleep ``seconds`` if the deadline allows it, else raise :class:`OutOfTime`."""
        if seconds >= self.remaining():
            raise OutOfTime(f"out of time while waiting for {what}")
        time.sleep(max(0.0, seconds))
