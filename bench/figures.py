"""Pure arithmetic of the benchmarks: percentiles, distributions, failover phases, and the
forwarder's rate limit as the bench must respect it. No clock, no I/O: times are passed in.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

PHASES = ("externalips_added", "assign_sent", "action_completed", "externalips_final")
"""A failover's milestones, in the order make-before-break reaches them."""

PHASE_LABELS = {
    "externalips_added": "new anchor in externalIPs",
    "assign_sent": "assign request sent",
    "action_completed": "assign action completed",
    "externalips_final": "old anchor dropped (done)",
}


def percentile(samples: Sequence[float], p: float) -> float:
    """The ``p``-th percentile (0-100), linear between closest ranks (numpy's default), so
    that p50 of an even count is the mean of the middle two."""
    if not samples:
        raise ValueError("no samples")
    if not 0 <= p <= 100:
        raise ValueError(f"percentile {p} is outside 0-100")
    ordered = sorted(samples)
    rank = (len(ordered) - 1) * p / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def distribution(samples: Sequence[float], digits: int = 3) -> dict[str, float | int]:
    """Count, p50, p95, min, max and mean of ``samples``, rounded to ``digits``."""
    return {
        "n": len(samples),
        "p50": round(percentile(samples, 50), digits),
        "p95": round(percentile(samples, 95), digits),
        "min": round(min(samples), digits),
        "max": round(max(samples), digits),
        "mean": round(sum(samples) / len(samples), digits),
    }


# --- one failover, from what was recorded around it ------------------------------------------


@dataclass(frozen=True)
class Move:
    """What a failover must reach: the IP on ``target_droplet``, whose anchor replaces
    ``old_anchor`` in the Service's ``spec.externalIPs``."""

    changed_at: float
    """Wall-clock time of the cluster change."""
    target_droplet: int
    new_anchor: str
    old_anchor: str


@dataclass(frozen=True)
class Recorded:
    """Wall-clock observations, each list in time order."""

    external_ips: Sequence[tuple[float, tuple[str, ...]]]
    """The Service's ``spec.externalIPs`` as a watch received it."""
    assigns: Sequence[tuple[float, int]]
    """Assign requests the DigitalOcean API got: when, and for which droplet."""
    holders: Sequence[tuple[float, int | None]]
    """The reserved IP's holder each time it was seen to change."""


class PhaseMissing(ValueError):
    """A milestone of the failover was not recorded."""


def phases(move: Move, seen: Recorded) -> dict[str, float]:
    """Seconds from the cluster change to each milestone of ``PHASES``."""
    after = move.changed_at

    def first(found: Iterable[float], what: str) -> float:
        for at in found:
            return round(at - after, 4)
        raise PhaseMissing(f"{what} not seen after the change")

    return {
        "externalips_added": first(
            (at for at, ips in seen.external_ips if at >= after and move.new_anchor in ips),
            f"{move.new_anchor} in externalIPs",
        ),
        "assign_sent": first(
            (at for at, droplet in seen.assigns if at >= after and droplet == move.target_droplet),
            f"an assign request for droplet {move.target_droplet}",
        ),
        "action_completed": first(
            (at for at, droplet in seen.holders if at >= after and droplet == move.target_droplet),
            f"the IP on droplet {move.target_droplet}",
        ),
        "externalips_final": first(
            (at for at, ips in seen.external_ips if at >= after and ips == (move.new_anchor,)),
            f"externalIPs reduced to {move.new_anchor}",
        ),
    }


def summarise_moves(moves: Sequence[dict[str, float]]) -> dict[str, dict[str, float | int]]:
    """Per phase, the distribution over ``moves`` (each a ``phases`` result)."""
    return {phase: distribution([m[phase] for m in moves]) for phase in PHASES}


def setting_summary(
    latency: float, moves: Sequence[Mapping[str, Any]], kinds: Sequence[str]
) -> dict[str, Any]:
    """The figures of the moves made at one action latency. Each move is a mapping with its
    ``kind``, ``phases`` (a ``phases`` result), ``digitalocean_calls``,
    ``digitalocean_writes`` and ``invocations``; they are kept as they are."""
    if not moves:
        raise ValueError("no moves")
    count = len(moves)

    def mean(key: str) -> float:
        return round(sum(float(m[key]) for m in moves) / count, 2)

    return {
        "action_latency": latency,
        "summary": summarise_moves([m["phases"] for m in moves]),
        "by_kind": {
            kind: summarise_moves([m["phases"] for m in moves if m["kind"] == kind])
            for kind in kinds
            if any(m["kind"] == kind for m in moves)
        },
        "digitalocean_calls_per_move": {
            "all": mean("digitalocean_calls"),
            "writes": mean("digitalocean_writes"),
        },
        "invocations_per_move": mean("invocations"),
        "moves": [dict(m) for m in moves],
    }


# --- the forwarder's token bucket, replayed ----------------------------------------------------


def tokens_left(
    sends: Iterable[float], now: float, *, per_second: float, burst: float, since: float
) -> float:
    """Tokens in a bucket refilled at ``per_second`` up to ``burst``, empty at ``since``,
    after one token was taken at each time in ``sends``. Never more than the forwarder's own
    bucket holds: it starts empty (the bench does not know what was spent before it looked),
    and a send it cannot pay for leaves it empty (the real one had the token)."""
    tokens, last = 0.0, since
    for at in sorted(s for s in sends if since <= s <= now):
        tokens = max(0.0, min(burst, tokens + (at - last) * per_second) - 1)
        last = at
    return min(burst, tokens + (now - last) * per_second)


def seconds_until_tokens(
    sends: Iterable[float],
    now: float,
    wanted: float,
    *,
    per_second: float,
    burst: float,
    since: float,
) -> float:
    """How long until the bucket holds ``wanted`` tokens (0 if it already does)."""
    if wanted > burst:
        raise ValueError(f"{wanted} tokens never fit a bucket of {burst}")
    have = tokens_left(sends, now, per_second=per_second, burst=burst, since=since)
    return max(0.0, (wanted - have) / per_second)


def seconds_until_window_room(
    counted: Iterable[float], now: float, wanted: int, *, limit: int, window: float
) -> float:
    """How long until a sliding ``window`` holding at most ``limit`` requests (made at the
    ``counted`` times) has room for ``wanted`` more: DigitalOcean's per-token minute."""
    if wanted > limit:
        raise ValueError(f"{wanted} requests never fit a window of {limit}")
    live = sorted(t for t in counted if t > now - window)
    excess = len(live) + wanted - limit
    if excess <= 0:
        return 0.0
    return max(0.0, live[excess - 1] + window - now)


def mode_ratio(base: Mapping[str, Any], other: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Per action latency both measured: the other run's finished failover over the base
    run's (p50 and p95); above 1 means the other is slower."""
    theirs = {s["action_latency"]: s["summary"][PHASES[-1]] for s in other["settings"]}
    rows = []
    for setting in base["settings"]:
        latency = setting["action_latency"]
        if latency not in theirs:
            continue
        ours = setting["summary"][PHASES[-1]]
        rows.append(
            {
                "action_latency": latency,
                "p50": round(theirs[latency]["p50"] / ours["p50"], 3),
                "p95": round(theirs[latency]["p95"] / ours["p95"], 3),
            }
        )
    return rows
