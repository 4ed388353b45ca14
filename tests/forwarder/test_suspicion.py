"""The suspicion state machine, round by round: who is suspected, why, and when cleared."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from floating_ip_forwarder.dead_nodes.suspicion import (
    Limits,
    NodeRound,
    Probe,
    State,
    Suspect,
    adopt,
    step,
)

LIMITS = Limits(failures=2, lease_stale=20.0, hold_down=30.0)
UP = NodeRound(probed=1, answered=1, lease_age=1.0)
"""A healthy node: its one endpoint answered, its Lease renewed a second ago."""
DOWN = NodeRound(probed=1, answered=0, lease_age=1.0)
"""Power off as the probes see it, before the Lease goes stale."""
SILENT = NodeRound(probed=0, answered=0, lease_age=1.0)
"""A node with nothing to probe (a UDP-only Service), Lease fresh."""


def stale(age: float = 21.0) -> NodeRound:
    return NodeRound(probed=0, answered=0, lease_age=age)


@dataclass(frozen=True)
class Row:
    id: str
    rounds: list[dict[str, NodeRound]]
    """One per second, from t=0."""
    suspected: set[str]
    """After the last round."""
    probes: dict[str, Probe] = field(default_factory=dict)


def n(count: int, **overrides: NodeRound) -> dict[str, NodeRound]:
    """``count`` healthy nodes n1..n<count>, with some replaced."""
    nodes = {f"n{i}": UP for i in range(1, count + 1)}
    nodes.update(overrides)
    return nodes


ROWS = [
    Row("all-healthy", [n(3)] * 5, set()),
    Row("one-failed-round-is-not-enough", [n(3), n(3, n1=DOWN)], set()),
    Row(
        "two-failed-rounds-suspect", [n(3), n(3, n1=DOWN), n(3, n1=DOWN)], {"n1"}, {"n1": Probe.TCP}
    ),
    Row(
        "failures-must-be-consecutive",
        [n(3, n1=DOWN), n(3), n(3, n1=DOWN), n(3), n(3, n1=DOWN)],
        set(),
    ),
    Row(
        "one-endpoint-answering-keeps-the-node",
        [n(3, n1=NodeRound(probed=3, answered=1, lease_age=1.0))] * 4,
        set(),
    ),
    Row(
        "every-endpoint-failing-suspects",
        [n(3, n1=NodeRound(probed=3, answered=0, lease_age=1.0))] * 2,
        {"n1"},
    ),
    Row("stale-lease-suspects-a-udp-only-node", [n(3, n1=stale())], {"n1"}, {"n1": Probe.LEASE}),
    Row("fresh-lease-and-no-probes-is-fine", [n(3, n1=SILENT)] * 10, set()),
    Row("lease-just-under-the-limit", [n(3, n1=stale(19.9))], set()),
    Row("no-lease-seen-is-not-stale", [n(3, n1=NodeRound(probed=0, lease_age=None))] * 3, set()),
    Row(
        "forwarder-partitioned-from-every-node-suspects-none",
        [dict.fromkeys(n(3), DOWN)] * 10,
        set(),
    ),
    Row(
        "every-lease-stale-means-our-watch-is-stuck",
        [{name: stale(60.0) for name in n(3)}],
        set(),
    ),
    Row("never-more-than-half-of-the-nodes", [n(4, n1=DOWN, n2=DOWN, n3=DOWN)] * 2, {"n1", "n2"}),
    Row("two-nodes-one-may-be-suspected", [n(2, n1=DOWN)] * 2, {"n1"}),
    Row("a-lone-node-is-never-suspected", [{"n1": stale()}, {"n1": stale()}], set()),
]


@pytest.mark.parametrize("row", ROWS, ids=[r.id for r in ROWS])
def test_suspicion(row: Row) -> None:
    state = State()
    for second, rounds in enumerate(row.rounds):
        state = step(state, rounds, float(second), LIMITS)
    assert state.suspected == row.suspected
    for name, probe in row.probes.items():
        assert state.suspects[name].probe is probe


def run(state: State, rounds: dict[str, NodeRound], start: float, seconds: int) -> State:
    for second in range(seconds):
        state = step(state, rounds, start + second, LIMITS)
    return state


def test_suspicion_records_when_it_began_and_what_failed() -> None:
    state = run(State(), n(3), 0.0, 5)
    state = run(state, n(3, n1=DOWN), 5.0, 2)
    suspect = state.suspects["n1"]
    assert suspect.since == 6.0
    assert "refused or timed out 2 times" in suspect.detail


def test_recovered_node_is_cleared_only_after_the_hold_down() -> None:
    state = run(State(), n(3, n1=DOWN), 0.0, 2)
    assert state.suspected == {"n1"}
    state = run(state, n(3), 2.0, 30)  # healthy t=2..31: 29 s
    assert state.suspected == {"n1"}
    state = step(state, n(3), 32.0, LIMITS)  # healthy for 30 s
    assert state.suspected == frozenset()


def test_a_flap_during_the_hold_down_restarts_it() -> None:
    state = run(State(), n(3, n1=DOWN), 0.0, 2)
    state = run(state, n(3), 2.0, 20)
    state = run(state, n(3, n1=DOWN), 22.0, 2)  # down again
    state = run(state, n(3), 24.0, 29)  # healthy t=24..52
    assert state.suspected == {"n1"}
    assert state.suspects["n1"].since == 1.0, "still the first suspicion"
    state = step(state, n(3), 54.0, LIMITS)
    assert state.suspected == frozenset()


def test_partition_neither_adds_nor_counts_failures() -> None:
    state = run(State(), n(3, n1=DOWN), 0.0, 1)
    state = run(state, dict.fromkeys(n(3), DOWN), 1.0, 5)
    # The round after the partition heals counts as the second failure of n1, not the sixth.
    state = step(state, n(3, n1=DOWN), 6.0, LIMITS)
    assert state.suspected == {"n1"}
    assert state.suspects["n1"].since == 6.0


def test_a_deleted_node_leaves_the_suspected_set() -> None:
    state = run(State(), n(3, n1=DOWN), 0.0, 2)
    state = step(state, n(3, n1=DOWN), 2.0, LIMITS)
    del_n1 = {k: v for k, v in n(3).items() if k != "n1"}
    assert step(state, del_n1, 3.0, LIMITS).suspected == frozenset()


def test_a_new_leader_adopts_published_suspicions_and_their_hold_down() -> None:
    published = [Suspect("n1", Probe.LEASE, -100.0, "kubelet Lease not renewed for 25 s")]
    state = adopt(State(), published)
    state = run(state, n(3), 0.0, 30)
    assert state.suspects["n1"] == published[0], "kept, unchanged, during the hold-down"
    assert step(state, n(3), 30.0, LIMITS).suspected == frozenset()


def test_cap_keeps_the_earlier_suspects() -> None:
    state = run(State(), n(4, n1=DOWN), 0.0, 2)
    state = run(state, n(4, n1=DOWN, n2=DOWN, n3=DOWN), 2.0, 3)
    assert "n1" in state.suspected
    assert len(state.suspected) == 2
