"""Leader election over a ``coordination.k8s.io/v1`` Lease, as client-go does it: pure.

Expiry is judged by this process's own monotonic clock ("the record has not changed for a
lease duration since I first saw it"), never by comparing the timestamps in the record with
the local wall clock, so skewed clocks between nodes cannot elect two leaders.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any


class Step(Enum):
    CREATE = "create"
    """No Lease yet: create it holding it."""
    ACQUIRE = "acquire"
    """Free or expired: take it over (an update with the read resourceVersion)."""
    RENEW = "renew"
    """Ours: renew it."""
    WAIT = "wait"
    """Someone else holds it."""


@dataclass(frozen=True, slots=True)
class LeaseRecord:
    holder: str
    duration: float
    acquire_time: str | None
    renew_time: str | None
    transitions: int
    resource_version: str


def record_from(lease: dict[str, Any]) -> LeaseRecord:
    spec = lease.get("spec") or {}
    return LeaseRecord(
        holder=str(spec.get("holderIdentity") or ""),
        duration=float(spec.get("leaseDurationSeconds") or 0),
        acquire_time=spec.get("acquireTime"),
        renew_time=spec.get("renewTime"),
        transitions=int(spec.get("leaseTransitions") or 0),
        resource_version=str((lease.get("metadata") or {}).get("resourceVersion", "")),
    )


def micro_time(when: datetime) -> str:
    """Kubernetes' MicroTime text (RFC 3339 with microseconds, UTC)."""
    return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Election:
    def __init__(self, identity: str, lease_duration: float, renew_deadline: float) -> None:
        if not 0 < renew_deadline < lease_duration:
            raise ValueError("need 0 < renew_deadline < lease_duration")
        self.identity = identity
        self.lease_duration = lease_duration
        self.renew_deadline = renew_deadline
        self._observed: tuple[str, str | None, str] | None = None
        self._observed_at = 0.0
        self._renewed_at: float | None = None

    def step(self, record: LeaseRecord | None, now: float) -> Step:
        if record is None:
            return Step.CREATE
        seen = (record.holder, record.renew_time, record.resource_version)
        if seen != self._observed:
            self._observed, self._observed_at = seen, now
        if record.holder == self.identity:
            return Step.RENEW
        if not record.holder or now - self._observed_at >= record.duration:
            return Step.ACQUIRE
        return Step.WAIT

    def spec(self, record: LeaseRecord | None, wall: datetime) -> dict[str, Any]:
        """The Lease spec that makes (or keeps) this process the holder."""
        now = micro_time(wall)
        taking = record is None or record.holder != self.identity
        transitions = 0 if record is None else record.transitions + (taking and bool(record.holder))
        return {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": round(self.lease_duration),
            "acquireTime": now if taking or record is None else record.acquire_time,
            "renewTime": now,
            "leaseTransitions": transitions,
        }

    def released_spec(self, record: LeaseRecord, wall: datetime) -> dict[str, Any]:
        """Give the Lease up on shutdown, so another replica takes over at once."""
        now = micro_time(wall)
        return {
            "holderIdentity": None,
            "leaseDurationSeconds": 1,
            "acquireTime": now,
            "renewTime": now,
            "leaseTransitions": record.transitions,
        }

    # --- this process's leadership ------------------------------------------------------------

    def held(self, now: float) -> None:
        """A create, takeover or renewal succeeded at ``now``."""
        self._renewed_at = now

    def lost(self) -> None:
        self._renewed_at = None

    def leading(self, now: float) -> bool:
        """Leader while the last successful renewal is younger than the renew deadline."""
        return self._renewed_at is not None and now - self._renewed_at < self.renew_deadline
