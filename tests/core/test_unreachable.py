"""A node the forwarder suspects is dead: unfit as ``Unreachable``, said in Events and status,
and never given the IP back by a later run."""

from __future__ import annotations

from dataclasses import replace

from floating_ip.core.fitness import verdict
from floating_ip.core.model import EventType, Reason, Unfit
from floating_ip.core.plan import plan
from floating_ip_common import contract
from tests.core.builders import DEAD, IP_A, node, nodes, observe, rip, svc
from tests.core.simulator import apply, converge


def test_a_suspected_node_is_unreachable_among_its_other_reasons() -> None:
    web = svc("web", on=["n1"])
    assert verdict(node("n1", suspicion=DEAD), (web,), "ams3", "ams3", {}).reasons == (
        Unfit.UNREACHABLE,
    )
    assert verdict(node("n1"), (web,), "ams3", "ams3", {}).reasons == ()


def test_the_move_says_which_probe_failed_and_since_when() -> None:
    observation = observe(
        svc("web", on=["n1", "n2"]),
        nodes=[node("n1", suspicion=DEAD), node("n2")],
        ips=[rip(IP_A, "n1")],
    )
    the_plan = plan(observation)
    [assignment] = the_plan.assignments
    assert assignment.node_name == "n2"
    by_reason = {e.reason: e for e in the_plan.events}
    moved, unreachable = by_reason[Reason.IP_MOVED], by_reason[Reason.UNREACHABLE]
    assert "(Unreachable)" in moved.message
    assert unreachable.type is EventType.WARNING
    assert unreachable.after_ip == IP_A, "announced only once the IP really moved"
    assert unreachable.message == (
        "Node n1 is unreachable: tcp probe failed since 2026-01-31T12:00:00Z "
        "(1 endpoint refused or timed out 2 times in a row); "
        f"reserved IP {IP_A} moved to node n2 (droplet 102)."
    )
    [after] = the_plan.after_assign
    status = dict(after.annotations)[contract.STATUS]
    assert status is not None
    assert status.startswith(f"Reserved IP {IP_A} is on node n2")
    assert "Node n1 is unreachable: tcp probe failed since 2026-01-31T12:00:00Z" in status


def test_without_a_fit_candidate_the_ip_stays_and_the_status_says_why() -> None:
    observation = observe(
        svc("web", on=["n1"]),
        nodes=[node("n1", suspicion=DEAD), node("n2")],
        ips=[rip(IP_A, "n1")],
    )
    the_plan = plan(observation)
    assert the_plan.assignments == ()
    [warning] = [e for e in the_plan.events if e.type is EventType.WARNING]
    assert warning.reason is Reason.UNREACHABLE
    assert warning.message == (
        f"Reserved IP {IP_A} stays on node n1 (droplet 101): node n1 is unreachable: tcp probe "
        "failed since 2026-01-31T12:00:00Z (1 endpoint refused or timed out 2 times in a row), "
        "but no other node is fit (n2: NoReadyEndpoint)."
    )


def test_a_resync_after_the_move_does_not_move_it_back() -> None:
    observation = observe(
        svc("web", on=["n1", "n2"]),
        nodes=[node("n1", suspicion=DEAD), node("n2")],
        ips=[rip(IP_A, "n1")],
    )
    moved = apply(observation, plan(observation))
    assert plan(moved).is_empty, "still suspected: nothing to do"
    cleared = replace(moved, nodes=nodes("n1", "n2"))
    settled, plans = converge(cleared)
    assert all(not p.assignments for p in plans), "cleared and healthy: the IP stays on n2"
    holder = next(ip.droplet_id for ip in settled.reserved_ips)
    assert holder == 102
