"""Which nodes the leader suspects to be dead: a pure state machine (plain data in and out).

Each probe round reports, per node, how its probed endpoints answered and how long ago (on
the forwarder's own monotonic clock) its kubelet Lease last changed. A node becomes
*suspected* when

- every endpoint probed on it failed in ``failures`` consecutive rounds (``tcp``), or
- its Lease has not changed for ``lease_stale`` seconds (``lease``; the only signal for a
  node whose Services are UDP-only);

and it stays suspected until it has looked healthy for ``hold_down`` seconds without a
break, so a flapping node cannot flap the IP. Two guards against blaming the cluster for
the forwarder's own trouble:

- a round in which no probed endpoint anywhere answered (the forwarder's network is cut) and
  a round in which every known Lease is stale (its watch is stuck) judge nobody by that
  signal;
- never more than half of the nodes are suspected at once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum


class Probe(StrEnum):
    TCP = "tcp"
    """Every probed TCP endpoint on the node failed (refused or timed out)."""
    LEASE = "lease"
    """The node's kubelet Lease stopped being renewed."""


@dataclass(frozen=True, slots=True)
class Limits:
    failures: int = 2
    """Consecutive failed rounds that make a node suspected by its probes."""
    lease_stale: float = 20.0
    """Seconds without a Lease change that make a node suspected."""
    hold_down: float = 30.0
    """Seconds a suspected node must look healthy, without a break, to be cleared."""


@dataclass(frozen=True, slots=True)
class NodeRound:
    """What one round saw of one node."""

    probed: int = 0
    """Endpoints probed on the node this round."""
    answered: int = 0
    """Of those, how many accepted the connection."""
    lease_age: float | None = None
    """Seconds since its Lease last changed (``None``: no Lease seen)."""


@dataclass(frozen=True, slots=True)
class Suspect:
    node: str
    probe: Probe
    since: float
    """When the suspicion began (the caller's clock, as passed in ``now``)."""
    detail: str
    """What failed, for people: ``3 endpoints refused or timed out``, ``Lease unchanged 21 s``."""


@dataclass(frozen=True, slots=True)
class NodeState:
    failed_rounds: int = 0
    healthy_since: float | None = None
    """While suspected: since when it has looked healthy without a break."""


@dataclass(frozen=True, slots=True)
class State:
    nodes: Mapping[str, NodeState] = field(default_factory=dict)
    suspects: Mapping[str, Suspect] = field(default_factory=dict)

    @property
    def suspected(self) -> frozenset[str]:
        return frozenset(self.suspects)


def adopt(state: State, suspects: Iterable[Suspect]) -> State:
    """Take over suspicions another leader published: each must earn its hold-down again."""
    merged = dict(state.suspects)
    for suspect in suspects:
        merged.setdefault(suspect.node, suspect)
    return replace(state, suspects=merged)


def _verdict(
    seen: NodeRound, failed_rounds: int, limits: Limits, probes_count: bool, leases_count: bool
) -> tuple[Probe, str] | None:
    """Why this node looks dead this round, or ``None`` when it looks alive."""
    if probes_count and failed_rounds >= limits.failures:
        return Probe.TCP, (
            f"{seen.probed} endpoint{'s' * (seen.probed != 1)} refused or timed out "
            f"{failed_rounds} times in a row"
        )
    if leases_count and seen.lease_age is not None and seen.lease_age >= limits.lease_stale:
        return Probe.LEASE, f"kubelet Lease not renewed for {seen.lease_age:.0f} s"
    return None


def step(state: State, rounds: Mapping[str, NodeRound], now: float, limits: Limits) -> State:
    """The state after one round; ``rounds`` has every node of the cluster."""
    probed = [r for r in rounds.values() if r.probed]
    # Nobody answered at all: the forwarder's own network is the likely problem.
    probes_count = not probed or any(r.answered for r in probed)
    leased = [r.lease_age for r in rounds.values() if r.lease_age is not None]
    leases_count = not leased or any(age < limits.lease_stale for age in leased)

    nodes: dict[str, NodeState] = {}
    suspects: dict[str, Suspect] = {}
    newly: list[tuple[str, Probe, str]] = []
    for name, seen in sorted(rounds.items()):
        old = state.nodes.get(name, NodeState())
        failed_rounds = old.failed_rounds
        all_failed = probes_count and seen.probed > 0 and seen.answered == 0
        if probes_count:
            failed_rounds = failed_rounds + 1 if all_failed else 0
        dead = _verdict(seen, failed_rounds, limits, probes_count, leases_count)
        current = state.suspects.get(name)
        healthy_since = None
        if current is not None:
            # While suspected, a single failed round already breaks the healthy streak.
            if dead is None and not all_failed:
                healthy_since = old.healthy_since if old.healthy_since is not None else now
            if healthy_since is None or now - healthy_since < limits.hold_down:
                suspects[name] = current
            else:
                healthy_since = None
        elif dead is not None:
            newly.append((name, *dead))
        nodes[name] = NodeState(failed_rounds, healthy_since)

    room = len(rounds) // 2 - len(suspects)
    for name, probe, detail in newly[: max(room, 0)]:
        suspects[name] = Suspect(name, probe, now, detail)
    return State(nodes, suspects)
