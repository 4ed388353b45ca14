"""Applying a plan and planning again plans nothing (as external-dns tests its planner)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from floating_ip.core.model import ConditionStatus, Observation
from floating_ip.core.plan import plan
from floating_ip_common import contract
from tests.core.builders import IP_A, IP_B, anchor, droplet, node, nodes, observe, rip, svc
from tests.core.scenarios import SCENARIOS, Scenario
from tests.core.simulator import apply, converge


def assert_consistent(observation: Observation) -> None:
    """Every managed Service lists its holder's anchor and says who holds its IP."""
    holders = {ip.ip: ip.droplet_id for ip in observation.reserved_ips}
    for service in observation.services:
        recorded = service.annotation(contract.ANCHOR_IP)
        address = service.annotation(contract.ADDRESS)
        if recorded is None or address is None:
            continue
        assert recorded in service.external_ips
        assert "," not in recorded, "a finished move records one anchor"
        assert service.annotation(contract.HOLDER_DROPLET) == str(holders[address])


@pytest.mark.parametrize("scenario", [pytest.param(s, id=s.id) for s in SCENARIOS])
def test_second_plan_is_empty(scenario: Scenario) -> None:
    settled, plans = converge(scenario.observation)
    assert len(plans) <= 2, "one plan applied settles every scenario"
    assert plans[-1].is_empty
    assert_consistent(settled)


def test_a_droplet_freed_by_one_move_is_used_by_the_next_run() -> None:
    """IP_A leaves n1 for n2; IP_B can only go to n1, which holds IP_A until then."""
    observation = observe(
        svc("a", IP_A, on=["n2"]),
        svc("b", IP_B, on=["n1"]),
        nodes=nodes("n1", "n2"),
        ips=[rip(IP_A, "n1"), rip(IP_B)],
    )
    first = plan(observation)
    assert {a.ip: a.node_name for a in first.assignments} == {IP_A: "n2"}
    settled, plans = converge(apply(observation, first))
    assert {a.ip: a.node_name for a in plans[0].assignments} == {IP_B: "n1"}
    assert plans[-1].is_empty
    assert_consistent(settled)


def test_failover_and_recovery_settle_each_time() -> None:
    """A node fails, comes back, and the IP stays where it went (no flapping back)."""
    healthy = observe(svc("web", on=["n1", "n2"]), nodes=nodes("n1", "n2"), ips=[rip(IP_A)])
    settled, _ = converge(healthy)
    first_holder = next(ip.droplet_id for ip in settled.reserved_ips)

    failed_name = "n1" if first_holder == droplet("n1") else "n2"
    survivor = "n2" if failed_name == "n1" else "n1"
    failed = replace(
        settled,
        nodes=(node(failed_name, ready=ConditionStatus.FALSE), node(survivor)),
    )
    after_failover, plans = converge(failed)
    assert [a.node_name for a in plans[0].assignments] == [survivor]
    web = after_failover.services[0]
    assert web.external_ips == (anchor(survivor),)

    recovered = replace(after_failover, nodes=nodes("n1", "n2"))
    _, plans = converge(recovered)
    assert plans[0].is_empty, "the fit holder keeps the IP when the old node returns"
