"""The suspicion state machine, round by round: who is suspected, why, and when cleared.

``LIMITS`` judges alone at once (``confirm_wait`` 0, no other replica): the single vantage
point's rules. The second vantage point's rules have their own table, ``VANTAGE_ROWS``."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from floating_ip_forwarder.dead_nodes.suspicion import (
    WAITING,
    Limits,
    NodeRound,
    Peer,
    Probe,
    State,
    Suspect,
    Vantage,
    adopt,
    rejudge,
    step,
)

LIMITS = Limits(failures=2, lease_stale=20.0, hold_down=30.0, confirm_wait=0.0)
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


def test_partition_adds_no_suspect_but_the_failures_count() -> None:
    state = run(State(), n(3, n1=DOWN), 0.0, 1)
    state = run(state, dict.fromkeys(n(3), DOWN), 1.0, 5)
    assert state.suspected == frozenset() and state.cut_off
    assert state.failing == {"n1", "n2", "n3"}, "observed, for the other replicas"
    # The first round after the partition heals judges n1 on what this replica saw of it.
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


@pytest.mark.parametrize(
    ("rounds", "expected"),
    [
        pytest.param(
            [n(3, n1=DOWN)] * 2,
            Suspect(
                "n1",
                Probe.TCP,
                1.0,
                "1 endpoint refused or timed out 2 times in a row;"
                " no other replica answered (one vantage point)",
            ),
            id="one-endpoint",
        ),
        pytest.param(
            [n(3, n1=NodeRound(probed=2, answered=0, lease_age=1.0))] * 2,
            Suspect(
                "n1",
                Probe.TCP,
                1.0,
                "2 endpoints refused or timed out 2 times in a row;"
                " no other replica answered (one vantage point)",
            ),
            id="two-endpoints",
        ),
        pytest.param(
            [n(3, n1=stale(20.0))],
            Suspect("n1", Probe.LEASE, 0.0, "kubelet Lease not renewed for 20 s"),
            id="lease-stale-exactly-at-the-limit",
        ),
    ],
)
def test_what_a_suspicion_tells_people(
    rounds: list[dict[str, NodeRound]], expected: Suspect
) -> None:
    """The node, the signal, since when, and a detail a person can read (as the Service's
    status and the Warning show it)."""
    state = State()
    for second, seen in enumerate(rounds):
        state = step(state, seen, float(second), LIMITS)
    assert list(state.suspects.values()) == [expected]


def test_every_lease_at_the_limit_means_our_watch_is_stuck() -> None:
    state = step(State(), {name: stale(20.0) for name in n(3)}, 0.0, LIMITS)
    assert state.suspected == frozenset()


def test_one_failed_round_during_the_hold_down_restarts_it() -> None:
    state = run(State(), n(3, n1=DOWN), 0.0, 2)  # suspected at t=1
    state = run(state, n(3), 2.0, 20)  # healthy t=2..21
    state = step(state, n(3, n1=DOWN), 22.0, LIMITS)  # one failed round: not dead, not healthy
    state = run(state, n(3), 23.0, 29)  # healthy t=23..51: 28 s
    assert state.suspected == {"n1"}
    state = step(state, n(3), 53.0, LIMITS)  # healthy for 30 s since t=23
    assert state.suspected == frozenset()


def test_a_cleared_node_adopted_again_earns_a_new_hold_down() -> None:
    """A new leader may publish a suspicion this one has cleared already: it is kept for a
    whole hold-down from the next round, as any adopted suspicion."""
    state = run(State(), n(3, n1=DOWN), 0.0, 2)
    state = run(state, n(3), 2.0, 31)  # cleared at t=32
    assert state.suspected == frozenset()
    state = adopt(state, [Suspect("n1", Probe.TCP, 1.0, "published by the old leader")])
    state = run(state, n(3), 33.0, 30)  # healthy t=33..62: 29 s
    assert state.suspected == {"n1"}
    assert step(state, n(3), 63.0, LIMITS).suspected == frozenset()


# --- a second vantage point --------------------------------------------------------------------

WAIT = Limits(failures=2, lease_stale=20.0, hold_down=30.0, confirm_wait=3.0)
HERE = "n4"
"""This replica's node in the rows below (its own endpoints answer unless a row says so)."""


def on(node: str, *failing: str, cut_off: bool = False) -> Peer:
    return Peer(f"replica-on-{node}", node, frozenset(failing), cut_off)


@dataclass(frozen=True)
class VantageRow:
    id: str
    rounds: list[dict[str, NodeRound]]
    peers: tuple[Peer, ...]
    suspected: set[str]
    unconfirmed: set[str] = field(default_factory=set)
    own_node: str | None = HERE


VANTAGE_ROWS = [
    VantageRow(
        "confirmed-by-a-peer-on-another-node", [n(4, n1=DOWN)] * 2, (on("n2", "n1"),), {"n1"}
    ),
    VantageRow(
        "a-peer-that-still-reaches-it-disputes",
        [n(4, n1=DOWN)] * 10,
        (on("n2"),),
        set(),
        {"n1"},
    ),
    VantageRow(
        "own-node-cut-off-from-every-other-node-suspects-none",
        [dict.fromkeys(("n1", "n2", "n3"), DOWN) | {HERE: UP}] * 10,
        (),
        set(),
    ),
    VantageRow(
        "cut-off-even-when-a-cut-off-peer-agrees",
        [dict.fromkeys(("n1", "n2", "n3"), DOWN) | {HERE: UP}] * 10,
        (on("n3", "n1", "n2", cut_off=True),),
        set(),
    ),
    VantageRow(
        "without-own-node-known-its-own-endpoints-count-as-reached",
        [dict.fromkeys(("n1", "n2"), DOWN) | {HERE: UP}] * 10,
        (),
        {"n1"},
        {"n2"},
        own_node=None,
    ),
    VantageRow(
        "a-peer-on-the-same-node-is-no-second-vantage-point",
        [n(4, n1=DOWN)] * 2,
        (on(HERE, "n1"),),
        set(),
        {"n1"},
    ),
    VantageRow(
        "a-cut-off-peer-neither-confirms-nor-disputes-alone-after-the-wait",
        [n(4, n1=DOWN)] * 5,
        (on("n2", "n1", "n3", cut_off=True),),
        {"n1"},
    ),
    VantageRow(
        "no-peer-waits-before-judging-alone",
        [n(4, n1=DOWN)] * 4,
        (),
        set(),
        {"n1"},
    ),
    VantageRow("no-peer-judges-alone-after-the-wait", [n(4, n1=DOWN)] * 5, (), {"n1"}),
    VantageRow(
        "one-confirming-peer-is-enough",
        [n(4, n1=DOWN)] * 2,
        (on("n2"), on("n3", "n1")),
        {"n1"},
    ),
    VantageRow(
        "confirmation-still-needs-failures-rounds-here",
        [n(4), n(4, n1=DOWN)],
        (on("n2", "n1"),),
        set(),
    ),
    VantageRow(
        "the-lease-path-needs-no-confirmation",
        [n(4, n1=stale())],
        (on("n2"),),
        {"n1"},
    ),
]


@pytest.mark.parametrize("row", VANTAGE_ROWS, ids=[r.id for r in VANTAGE_ROWS])
def test_second_vantage_point(row: VantageRow) -> None:
    vantage = Vantage(row.own_node, row.peers)
    state = State()
    for second, rounds in enumerate(row.rounds):
        state = step(state, rounds, float(second), WAIT, vantage)
    assert state.suspected == row.suspected
    assert set(state.unconfirmed) == row.unconfirmed


def test_a_late_confirmation_is_judged_without_a_new_round() -> None:
    """The other replica's observation arrives between two rounds: judged at once."""
    state = run_vantage(State(), n(4, n1=DOWN), 0.0, 2, Vantage(HERE, (on("n2"),)))
    assert state.unconfirmed == {"n1": "replica-on-n2 still reach it"}
    state = rejudge(state, 1.4, WAIT, Vantage(HERE, (on("n2", "n1"),)))
    assert state.suspected == {"n1"} and state.unconfirmed == {}
    suspect = state.suspects["n1"]
    assert suspect.since == 1.4
    assert suspect.detail.endswith("confirmed by replica-on-n2 on n2")
    assert rejudge(state, 1.6, WAIT, Vantage(HERE, (on("n2", "n1"),))) == state, "idempotent"


def test_judging_alone_says_so() -> None:
    state = run_vantage(State(), n(4, n1=DOWN), 0.0, 5, Vantage(HERE))
    assert state.suspects["n1"].since == 4.0, "the candidate (t=1) waited 3 s"
    assert "one vantage point" in state.suspects["n1"].detail


def test_what_this_replica_observes_for_the_others() -> None:
    state = run_vantage(State(), n(4, n1=DOWN), 0.0, 1, Vantage(HERE, (on("n2"),)))
    assert state.failing == frozenset(), "one failed round is not an observation yet"
    state = step(state, n(4, n1=DOWN), 1.0, WAIT, Vantage(HERE, (on("n2"),)))
    assert state.failing == {"n1"} and state.suspected == frozenset()
    state = step(state, n(4), 2.0, WAIT, Vantage(HERE, (on("n2"),)))
    assert state.failing == frozenset() and state.unconfirmed == {}


def run_vantage(
    state: State, rounds: dict[str, NodeRound], start: float, seconds: int, vantage: Vantage
) -> State:
    for second in range(seconds):
        state = step(state, rounds, start + second, WAIT, vantage)
    return state


# --- what the state says about each node, word for word (logs and metrics show it) --------


def judged(rounds: list[dict[str, NodeRound]], peers: tuple[Peer, ...]) -> State:
    state = State()
    vantage = Vantage(HERE, peers)
    for second, seen in enumerate(rounds):
        state = step(state, seen, float(second), WAIT, vantage)
    return state


@pytest.mark.parametrize(
    ("peers", "detail"),
    [
        pytest.param(
            (on("n2", "n1"),),
            "1 endpoint refused or timed out 2 times in a row; confirmed by replica-on-n2 on n2",
            id="peer-on-a-known-node",
        ),
        pytest.param(
            (Peer("replica-x", None, frozenset({"n1"})),),
            "1 endpoint refused or timed out 2 times in a row; confirmed by replica-x",
            id="peer-on-an-unknown-node",
        ),
    ],
)
def test_a_confirmed_suspicion_names_who_confirmed_it(peers: tuple[Peer, ...], detail: str) -> None:
    [suspect] = judged([n(4, n1=DOWN)] * 2, peers).suspects.values()
    assert suspect.detail == detail


@pytest.mark.parametrize(
    ("rounds", "peers", "why"),
    [
        pytest.param(
            [n(4, n1=DOWN)] * 2,
            (on("n3"), on("n2")),
            "replica-on-n2, replica-on-n3 still reach it",
            id="disputed-by-two",
        ),
        pytest.param(
            [n(4, n1=DOWN)] * 2, (), "waiting for another replica's observation", id="waiting"
        ),
        pytest.param(
            [n(7, n1=DOWN, n2=DOWN, n3=DOWN, n5=DOWN)] * 2,
            (on("n6", "n1", "n2", "n3", "n5"),),
            "more than half of the nodes would be suspected",
            id="over-the-cap",
        ),
    ],
)
def test_an_unconfirmed_node_says_why_it_moves_nothing(
    rounds: list[dict[str, NodeRound]], peers: tuple[Peer, ...], why: str
) -> None:
    state = judged(rounds, peers)
    assert why in state.unconfirmed.values()
    assert (why in state.settled_unconfirmed.values()) is (why != WAITING), "Event-worthy"


def test_a_node_waiting_for_its_confirmation_settles_once_a_replica_disputes_it() -> None:
    state = judged([n(4, n1=DOWN)] * 2, ())
    assert state.unconfirmed == {"n1": WAITING} and state.settled_unconfirmed == {}
    state = rejudge(state, 1.5, WAIT, Vantage(HERE, (on("n2"),)))
    assert state.settled_unconfirmed == {"n1": "replica-on-n2 still reach it"}


def test_a_suspected_node_is_not_also_reported_unconfirmed() -> None:
    """Adopted from the old leader, disputed now: it stays suspected through its hold-down,
    and is counted once, as suspected."""
    state = adopt(State(), [Suspect("n1", Probe.TCP, 0.0, "published by the old leader")])
    vantage = Vantage(HERE, (on("n2"),))
    for second in range(3):
        state = step(state, n(4, n1=DOWN), float(second), WAIT, vantage)
    assert state.suspected == {"n1"}
    assert "n1" not in state.unconfirmed


def test_a_node_with_nothing_to_probe_clears_once_its_lease_is_renewed() -> None:
    """A UDP-only Service's node, suspected by its Lease: no failed probe can break its
    healthy streak, so it clears a hold-down after the Lease moves again."""
    state = run(State(), n(3, n1=stale()), 0.0, 1)
    assert state.suspected == {"n1"}
    state = run(state, n(3, n1=SILENT), 1.0, 31)
    assert state.suspected == frozenset()
