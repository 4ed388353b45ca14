"""Turning a stream of changes into few, timely events: pure, with the clock passed in.

Rules, per key (a Service, or the resync):

- leading edge: the first change of a key that has been quiet (no change for ``quiet``
  seconds, nothing waiting or in flight) is due at once: a lone change, the common case of a
  failover, costs no waiting;
- any later change coalesces: it is sent once no change came for ``quiet`` seconds, but never
  later than ``ceiling`` seconds after the first change it carries; so a burst costs the
  leading event and one (or, past the ceiling, a few) more;
- at most one event per key is in flight; a change during the flight makes the key pending
  again, to be sent after the flight ends (and its own quiet window);
- a failed send keeps the key pending until ``now + delay`` (the retry policy's choice);
- all keys share a token bucket of ``rate`` events per second (``burst`` at most at once);
- a resync covers every Service: taking it drops every pending Service change seen so far,
  and when ``collapse_at`` Services are due at once, one resync is sent instead of them all
  (a node failure touching many Services costs one invocation, not one per Service).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Generic, TypeVar

K = TypeVar("K")

_FORGET_AT = 1024


@dataclass(slots=True)
class _Pending:
    first: float
    """The first change not yet covered by a successful send."""
    last: float
    not_before: float = 0.0
    attempts: int = 0
    leading: bool = False
    """The key was quiet before ``first``: due at once, without a quiet window."""


@dataclass(frozen=True, slots=True)
class Taken(Generic[K]):
    """A key handed out for sending; pass it back to ``succeeded`` or ``failed``."""

    key: K
    waited: float
    """Seconds from the first change it carries to now."""
    attempt: int
    """0 for a first send, then 1, 2, ... for retries."""
    ticket: int


class Coalescer(Generic[K]):
    def __init__(
        self,
        *,
        quiet: float,
        ceiling: float,
        rate: float,
        burst: int,
        resync_key: K,
        collapse_at: int,
        now: float,
    ) -> None:
        if not 0 <= quiet <= ceiling:
            raise ValueError("need 0 <= quiet <= ceiling")
        if rate <= 0 or burst < 1 or collapse_at < 1:
            raise ValueError("rate, burst and collapse_at must be positive")
        self.quiet = quiet
        self.ceiling = ceiling
        self.rate = rate
        self.burst = burst
        self.resync_key = resync_key
        self.collapse_at = collapse_at
        self._pending: dict[K, _Pending] = {}
        self._in_flight: dict[K, tuple[int, _Pending]] = {}
        self._tokens = float(burst)
        self._refilled = now
        self._tickets = itertools.count(1)
        self._last_change: dict[K, float] = {}
        """When each recently changed key last changed (to tell a quiet key's first change)."""

    # --- inputs ------------------------------------------------------------------------------

    def touch(self, key: K, now: float) -> None:
        """A change that may affect ``key`` was seen at ``now``."""
        entry = self._pending.get(key)
        if entry is None:
            previous = self._last_change.get(key)
            quiet = key not in self._in_flight and (
                previous is None or now - previous >= self.quiet
            )
            self._pending[key] = _Pending(first=now, last=now, leading=quiet)
        else:
            entry.last = now
        self._last_change[key] = now

    def clear(self) -> None:
        """Forget everything (leadership lost: the next leader starts with a resync)."""
        self._pending.clear()
        self._in_flight.clear()
        self._last_change.clear()

    # --- handing out work ---------------------------------------------------------------------

    def take(self, now: float) -> Taken[K] | None:
        """The next key to send now, or ``None`` (see ``wake_in`` for when to ask again)."""
        self._refill(now)
        self._forget_quiet(now)
        if self._tokens < 1:
            return None
        ready = [k for k, e in self._pending.items() if self._takeable(k) and self._due(e) <= now]
        if not ready:
            return None
        services = [k for k in ready if k != self.resync_key]
        if self.resync_key in ready or (
            len(services) >= self.collapse_at and self._resync_may_start(now)
        ):
            key = self.resync_key
        else:
            key = min(services, key=lambda k: self._due(self._pending[k]))
        return self._hand_out(key, now)

    def wake_in(self, now: float) -> float | None:
        """Seconds until ``take`` may return a key; ``None`` when nothing is waiting."""
        dues = [self._due(e) for k, e in self._pending.items() if self._takeable(k)]
        if not dues:
            return None
        self._refill(now)
        token_wait = 0.0 if self._tokens >= 1 else (1 - self._tokens) / self.rate
        return max(0.0, min(dues) - now, token_wait)

    # --- outcomes ----------------------------------------------------------------------------

    def succeeded(self, taken: Taken[K]) -> None:
        if not self._is_current(taken):
            return
        del self._in_flight[taken.key]
        # A change seen during the flight stays pending, as a fresh first attempt.
        again = self._pending.get(taken.key)
        if again is not None:
            again.attempts = 0
            again.not_before = 0.0

    def failed(self, taken: Taken[K], now: float, delay: float) -> None:
        if not self._is_current(taken):
            return
        _, sent = self._in_flight.pop(taken.key)
        entry = self._pending.setdefault(taken.key, _Pending(first=sent.first, last=sent.last))
        entry.first = min(entry.first, sent.first)
        entry.attempts = sent.attempts + 1
        entry.not_before = now + delay

    # --- state -------------------------------------------------------------------------------

    def depth(self) -> int:
        """Keys waiting or in flight."""
        return len(self._pending.keys() | self._in_flight.keys())

    def in_flight(self) -> int:
        return len(self._in_flight)

    # --- internals ---------------------------------------------------------------------------

    def _due(self, entry: _Pending) -> float:
        if entry.leading:
            settled = entry.first
        else:
            settled = min(entry.last + self.quiet, entry.first + self.ceiling)
        return max(settled, entry.not_before)

    def _forget_quiet(self, now: float) -> None:
        """Keys quiet for ``quiet`` seconds count as never changed: the map stays as small as
        the set of recently changed keys (checked only when it has grown, so cheap)."""
        if len(self._last_change) > _FORGET_AT + 2 * len(self._pending):
            self._last_change = {k: t for k, t in self._last_change.items() if now - t < self.quiet}

    def _takeable(self, key: K) -> bool:
        return key not in self._in_flight

    def _resync_may_start(self, now: float) -> bool:
        if self.resync_key in self._in_flight:
            return False
        waiting = self._pending.get(self.resync_key)
        return waiting is None or waiting.not_before <= now  # never cut a backoff short

    def _hand_out(self, key: K, now: float) -> Taken[K]:
        entry = self._pending.pop(key, None) or _Pending(first=now, last=now)
        if key == self.resync_key:
            # Every change seen so far is covered: the function reads the cluster after this.
            for other in list(self._pending):
                entry.first = min(entry.first, self._pending[other].first)
                del self._pending[other]
        ticket = next(self._tickets)
        self._in_flight[key] = (ticket, entry)
        self._tokens -= 1
        return Taken(key, now - entry.first, entry.attempts, ticket)

    def _is_current(self, taken: Taken[K]) -> bool:
        flight = self._in_flight.get(taken.key)
        return flight is not None and flight[0] == taken.ticket

    def _refill(self, now: float) -> None:
        elapsed = max(0.0, now - self._refilled)
        self._tokens = min(float(self.burst), self._tokens + elapsed * self.rate)
        self._refilled = now
