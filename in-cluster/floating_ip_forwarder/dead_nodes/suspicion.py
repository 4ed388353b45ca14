"""Which nodes the leader suspects to be dead: a pure state machine (plain data in and out).

Each probe round reports, per node, how its probed endpoints answered and how long ago (on
the forwarder's own monotonic clock) its kubelet Lease last changed. A node becomes
*suspected* when

- every endpoint probed on it failed in ``failures`` consecutive rounds (``tcp``) and a
  second vantage point agrees (below), or
- its Lease has not changed for ``lease_stale`` seconds (``lease``; the only signal for a
  node whose Services are UDP-only);

and it stays suspected until it has looked healthy for ``hold_down`` seconds without a
break, so a flapping node cannot flap the IP.

One vantage point cannot tell a dead node from its own broken path to it (a partial
partition: a bad route, a firewall change on its own node). So a node whose probes fail
from here is a *candidate*, and becomes a ``tcp`` suspect only

- if this replica's own node reached an endpoint on some other node in the same round
  (``own_node``; a replica cut off from every other node judges nobody by TCP), and
- if another replica, on another node and not cut off itself, saw the same node failing
  (``Peer``: its observation, fresh on the caller's clock), or, when no such replica answers
  within ``confirm_wait`` of the candidate (one replica, or the other one's node is down
  too), on this vantage point alone.

A candidate another replica does not confirm is *unconfirmed*: reported, never published.
Two more guards against blaming the cluster for the forwarder's own trouble: a round in
which every known Lease is stale (its watch is stuck) judges nobody by Lease, and never more
than half of the nodes are suspected at once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum

WAITING = "waiting for another replica's observation"
"""Why a candidate is unconfirmed for at most ``confirm_wait``: it is judged soon after."""


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
    confirm_wait: float = 3.0
    """Seconds a candidate waits for another replica's observation before this replica may
    judge it alone."""


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
class Peer:
    """Another replica's latest observation, fresh (the caller drops stale ones)."""

    replica: str
    node: str | None
    """Where it runs (``None``: unknown)."""
    failing: frozenset[str] = frozenset()
    """Nodes whose every probed endpoint failed ``failures`` rounds in a row from there."""
    cut_off: bool = False
    """Its own node reached no other node's endpoint: it can neither confirm nor dispute."""


@dataclass(frozen=True, slots=True)
class Vantage:
    """Where this replica stands: its own node and what the other replicas see."""

    own_node: str | None = None
    """``None`` (unknown): every node counts as another node."""
    peers: tuple[Peer, ...] = ()

    def witnesses(self) -> tuple[Peer, ...]:
        """The peers that are a second vantage point: on another node, not cut off."""
        return tuple(
            p
            for p in self.peers
            if not p.cut_off
            and (p.node is None or self.own_node is None or p.node != self.own_node)
        )


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
    """Consecutive rounds in which every endpoint probed on it failed, from here."""
    candidate_since: float | None = None
    """Since when ``failed_rounds`` has reached ``failures``."""
    healthy_since: float | None = None
    """While suspected: since when it has looked healthy without a break."""


@dataclass(frozen=True, slots=True)
class State:
    nodes: Mapping[str, NodeState] = field(default_factory=dict)
    suspects: Mapping[str, Suspect] = field(default_factory=dict)
    unconfirmed: Mapping[str, str] = field(default_factory=dict)
    """Candidates by TCP not suspected, and why (for people: metrics and logs)."""
    last: Mapping[str, NodeRound] = field(default_factory=dict)
    """The last round, kept to judge it again when another replica's observation arrives."""
    cut_off: bool = False
    """In the last round this replica reached no endpoint on another node."""

    @property
    def suspected(self) -> frozenset[str]:
        return frozenset(self.suspects)

    @property
    def settled_unconfirmed(self) -> dict[str, str]:
        """The unconfirmed nodes whose verdict is in: not those ``WAITING`` (which become
        suspects or are disputed within ``confirm_wait``). What an Event reports."""
        return {n: why for n, why in self.unconfirmed.items() if why != WAITING}

    @property
    def failing(self) -> frozenset[str]:
        """What this replica observes: the nodes failing ``failures`` rounds in a row from
        here (its observation for the other replicas)."""
        return frozenset(n for n, s in self.nodes.items() if s.candidate_since is not None)


def adopt(state: State, suspects: Iterable[Suspect]) -> State:
    """Take over suspicions another leader published: each must earn its hold-down again."""
    merged = dict(state.suspects)
    for suspect in suspects:
        merged.setdefault(suspect.node, suspect)
    return replace(state, suspects=merged)


def _tcp_verdict(
    name: str, seen: NodeRound, node: NodeState, now: float, *, limits: Limits, vantage: Vantage
) -> tuple[str | None, str | None]:
    """``(detail, None)`` when the candidate is suspected by TCP, ``(None, why)`` when it is
    left unconfirmed."""
    if node.candidate_since is None:
        return None, None
    failed = (
        f"{seen.probed} endpoint{'s' * (seen.probed != 1)} refused or timed out "
        f"{node.failed_rounds} times in a row"
    )
    witnesses = vantage.witnesses()
    confirming = [p for p in witnesses if name in p.failing]
    if confirming:
        by = confirming[0]
        where = f" on {by.node}" if by.node else ""
        return f"{failed}; confirmed by {by.replica}{where}", None
    if witnesses:
        return None, f"{', '.join(sorted(p.replica for p in witnesses))} still reach it"
    if now - node.candidate_since >= limits.confirm_wait:
        return f"{failed}; no other replica answered (one vantage point)", None
    return None, WAITING


def _evidence(old: NodeState, seen: NodeRound, now: float, limits: Limits) -> NodeState:
    """The node's own probe record after this round (counted whatever the verdict)."""
    all_failed = seen.probed > 0 and seen.answered == 0
    failed_rounds = old.failed_rounds + 1 if all_failed else 0
    candidate_since = None
    if failed_rounds >= limits.failures:
        candidate_since = old.candidate_since if old.candidate_since is not None else now
    return NodeState(failed_rounds, candidate_since, old.healthy_since)


def step(
    state: State,
    rounds: Mapping[str, NodeRound],
    now: float,
    limits: Limits,
    vantage: Vantage = Vantage(),
) -> State:
    """The state after one round; ``rounds`` has every node of the cluster."""
    nodes = {
        name: _evidence(state.nodes.get(name, NodeState()), seen, now, limits)
        for name, seen in rounds.items()
    }
    # This replica's own health: it reached an endpoint on another node (a node's own
    # endpoints answer even when the node is cut off from the rest).
    reached = any(r.answered for name, r in rounds.items() if r.probed and name != vantage.own_node)
    return _judge(
        replace(state, nodes=nodes, last=dict(rounds), cut_off=not reached), now, limits, vantage
    )


def rejudge(state: State, now: float, limits: Limits, vantage: Vantage) -> State:
    """The last round judged again, with news from the other replicas (no new probes)."""
    return _judge(state, now, limits, vantage)


def _judge(state: State, now: float, limits: Limits, vantage: Vantage) -> State:
    rounds = state.last
    leased = [r.lease_age for r in rounds.values() if r.lease_age is not None]
    # Every Lease stale at once: the forwarder's watch is the likely problem.
    leases_count = not leased or any(age < limits.lease_stale for age in leased)

    nodes: dict[str, NodeState] = {}
    suspects: dict[str, Suspect] = {}
    unconfirmed: dict[str, str] = {}
    newly: list[tuple[str, Probe, str]] = []
    for name, seen in sorted(rounds.items()):
        node = state.nodes.get(name, NodeState())
        all_failed = seen.probed > 0 and seen.answered == 0
        dead: tuple[Probe, str] | None = None
        if not state.cut_off:
            detail, why = _tcp_verdict(name, seen, node, now, limits=limits, vantage=vantage)
            if detail is not None:
                dead = Probe.TCP, detail
            elif why is not None:
                unconfirmed[name] = why
        if (
            dead is None
            and leases_count
            and seen.lease_age is not None
            and seen.lease_age >= limits.lease_stale
        ):
            dead = Probe.LEASE, f"kubelet Lease not renewed for {seen.lease_age:.0f} s"
        current = state.suspects.get(name)
        healthy_since = None
        if current is not None:
            unconfirmed.pop(name, None)
            # While suspected, a single failed round already breaks the healthy streak.
            if dead is None and not all_failed:
                healthy_since = node.healthy_since if node.healthy_since is not None else now
            if healthy_since is None or now - healthy_since < limits.hold_down:
                suspects[name] = current
            else:
                healthy_since = None
        elif dead is not None:
            newly.append((name, *dead))
        nodes[name] = replace(node, healthy_since=healthy_since)

    room = len(rounds) // 2 - len(suspects)
    for name, probe, detail in newly[: max(room, 0)]:
        suspects[name] = Suspect(name, probe, now, detail)
    for name, _, _ in newly[max(room, 0) :]:
        unconfirmed.setdefault(name, "more than half of the nodes would be suspected")
    return replace(state, nodes=nodes, suspects=suspects, unconfirmed=unconfirmed)
