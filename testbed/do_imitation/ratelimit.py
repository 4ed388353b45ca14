"""DigitalOcean's per-token rate limits: a sliding minute window and a sliding hour window.

The headers describe the hourly budget (``ratelimit-limit`` is the hourly limit); the
per-minute limit shows only as a 429 that carries ``retry-after``. A refused request does
not use up budget.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True)
class RateLimits:
    per_minute: int = 250
    per_hour: int = 5000
    minute_seconds: float = 60.0  # window lengths, shortened by tests that watch recovery
    hour_seconds: float = 3600.0


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    limit: int
    remaining: int
    reset_epoch: int
    retry_after: int | None  # seconds; only for the per-minute refusal

    def headers(self) -> dict[str, str]:
        headers = {
            "ratelimit-limit": str(self.limit),
            "ratelimit-remaining": str(self.remaining),
            "ratelimit-reset": str(self.reset_epoch),
        }
        if self.retry_after is not None:
            headers["retry-after"] = str(self.retry_after)
        return headers


class RateLimiter:
    def __init__(self, limits: RateLimits | None = None) -> None:
        self.limits = limits or RateLimits()
        self._history: dict[str, deque[float]] = {}

    def reset(self, limits: RateLimits | None = None) -> None:
        self.limits = limits or self.limits
        self._history.clear()

    def take(self, token: str, now: float, epoch_now: float) -> RateDecision:
        """Count one request of ``token`` at monotonic ``now`` if the limits allow it."""
        history = self._history.setdefault(token, deque())
        limits = self.limits
        while history and history[0] <= now - limits.hour_seconds:
            history.popleft()
        in_minute = [t for t in history if t > now - limits.minute_seconds]
        if len(in_minute) >= limits.per_minute:
            wait = in_minute[0] + limits.minute_seconds - now
            return self._decision(history, now, epoch_now, False, max(1, math.ceil(wait)))
        if len(history) >= limits.per_hour:
            return self._decision(history, now, epoch_now, False, None)
        history.append(now)
        return self._decision(history, now, epoch_now, True, None)

    def peek(self, token: str, now: float, epoch_now: float) -> RateDecision:
        """The headers' values without counting a request (for answers that do not count)."""
        history = self._history.get(token, deque())
        live = deque(t for t in history if t > now - self.limits.hour_seconds)
        return self._decision(live, now, epoch_now, True, None)

    def _decision(
        self,
        history: deque[float],
        now: float,
        epoch_now: float,
        allowed: bool,
        retry_after: int | None,
    ) -> RateDecision:
        oldest = history[0] if history else now
        reset = epoch_now + (oldest + self.limits.hour_seconds - now)
        return RateDecision(
            allowed=allowed,
            limit=self.limits.per_hour,
            remaining=max(0, self.limits.per_hour - len(history)),
            reset_epoch=math.ceil(reset),
            retry_after=retry_after,
        )
