"""The whole decision: situations in, assignments, patches, firewall and Events out."""

from __future__ import annotations

from dataclasses import replace

import pytest

from floating_ip.core.model import (
    ConditionStatus,
    EventType,
    FirewallAction,
    Observation,
    Plan,
    Reason,
    ReservedIP,
    Service,
    Unfit,
)
from floating_ip.core.plan import plan
from floating_ip.core.rendezvous import rendezvous_order
from floating_ip_common import contract
from tests.core.builders import (
    CLUSTER,
    IP_A,
    IP_B,
    IP_C,
    USER_IP,
    anchor,
    droplet,
    endpoint,
    node,
    nodes,
    observe,
    pod,
    rip,
    svc,
)
from tests.core.scenarios import ALL, SCENARIOS, Scenario
from tests.core.simulator import apply


def assigned(the_plan: Plan) -> dict[str, str]:
    return {a.ip: a.node_name for a in the_plan.assignments}


def warnings(the_plan: Plan) -> set[tuple[str, Reason]]:
    return {(e.service.name, e.reason) for e in the_plan.events if e.type is EventType.WARNING}


def service(observation: Observation, name: str) -> Service:
    return next(s for s in observation.services if s.name == name)


def test_rendezvous_order_the_scenarios_rely_on() -> None:
    assert rendezvous_order(IP_A, ALL) == ("n3", "n2", "n1")
    assert rendezvous_order(IP_B, ALL) == ("n2", "n3", "n1")
    assert rendezvous_order(IP_C, ALL) == ("n1", "n2", "n3")


@pytest.mark.parametrize("scenario", [pytest.param(s, id=s.id) for s in SCENARIOS])
def test_scenario(scenario: Scenario) -> None:
    the_plan = plan(scenario.observation)
    assert assigned(the_plan) == scenario.assigned
    assert warnings(the_plan) == scenario.warnings


@pytest.mark.parametrize("scenario", [pytest.param(s, id=s.id) for s in SCENARIOS])
def test_user_external_ips_survive(scenario: Scenario) -> None:
    after = apply(scenario.observation, plan(scenario.observation))
    for before in scenario.observation.services:
        users = [ip for ip in before.external_ips if not ip.startswith("10.")]
        assert [ip for ip in service(after, before.name).external_ips if ip in users] == users


def test_a_move_is_make_before_break() -> None:
    observation = observe(
        svc(
            "web",
            on=["n1", "n2"],
            external_ips=[USER_IP, anchor("n1")],
            annotations={contract.ANCHOR_IP: anchor("n1")},
        ),
        nodes=[node("n1", ready=ConditionStatus.FALSE), node("n2")],
        ips=[rip(IP_A, "n1")],
    )
    the_plan = plan(observation)
    [before] = the_plan.before_assign
    assert before.external_ips == (USER_IP, anchor("n1"), anchor("n2"))
    assert dict(before.annotations) == {
        contract.ANCHOR_IP: f"{anchor('n1')},{anchor('n2')}",
        contract.WRITTEN: f'{{"externalIPs":["{anchor("n1")}","{anchor("n2")}"]}}',
    }
    assert before.after_ip is None
    assert before.resource_version == "1"

    [assignment] = the_plan.assignments
    assert (assignment.ip, assignment.droplet_id, assignment.from_droplet_id) == (
        IP_A,
        droplet("n2"),
        droplet("n1"),
    )

    [after] = the_plan.after_assign
    assert after.external_ips == (USER_IP, anchor("n2"))
    assert after.after_ip == IP_A
    assert after.resource_version == "", "follows the first patch: no stale precondition"
    assert dict(after.annotations) == {
        contract.HOLDER_NODE: "n2",
        contract.HOLDER_DROPLET: str(droplet("n2")),
        contract.ANCHOR_IP: anchor("n2"),
        contract.STATUS: f"Reserved IP {IP_A} is on node n2 (droplet 102), anchor IP 10.10.0.2.",
        contract.WRITTEN: '{"externalIPs":["10.10.0.2"]}',
    }

    [moved] = [e for e in the_plan.events if e.reason is Reason.IP_MOVED]
    assert moved.after_ip == IP_A
    assert "node n1 (droplet 101) (NotReady)" in moved.message
    assert "to node n2 (droplet 102)" in moved.message


def test_a_first_assignment_is_announced_as_assigned() -> None:
    the_plan = plan(observe(svc("web", on=["n1"]), nodes=nodes("n1"), ips=[rip(IP_A)]))
    [event] = [e for e in the_plan.events if e.type is EventType.NORMAL and e.after_ip]
    assert (event.reason, event.message) == (
        Reason.IP_ASSIGNED,
        f"Reserved IP {IP_A} assigned to node n1 (droplet 101).",
    )


def test_when_no_node_is_fit_the_holders_anchor_stays_listed() -> None:
    observation = observe(
        svc("web", on=["n1"], external_ips=[USER_IP, anchor("n1")]),
        nodes=[node("n1", ready=ConditionStatus.FALSE), node("n2")],
        ips=[rip(IP_A, "n1")],
    )
    the_plan = plan(observation)
    assert the_plan.assignments == ()
    after = apply(observation, the_plan)
    web = service(after, "web")
    assert web.external_ips == (USER_IP, anchor("n1"))
    assert web.annotation(contract.HOLDER_NODE) == "n1"
    assert web.annotation(contract.STATUS) == (
        f"Reserved IP {IP_A} stays on node n1 (droplet 101): "
        "no node is fit (n1: NotReady; n2: NoReadyEndpoint)."
    )


@pytest.mark.parametrize(
    ("reserved", "expected"),
    [
        pytest.param(rip(IP_A), (USER_IP,), id="unassigned-ip-lists-no-anchor"),
        pytest.param(None, (USER_IP,), id="ip-not-in-account-lists-no-anchor"),
    ],
)
def test_without_a_holder_only_our_anchors_go(
    reserved: ReservedIP | None, expected: tuple[str, ...]
) -> None:
    observation = observe(
        svc("web", on=[], external_ips=[anchor("n1"), USER_IP, anchor("n2")]),
        nodes=nodes("n1", "n2"),
        ips=[reserved] if reserved else [],
    )
    after = apply(observation, plan(observation))
    assert service(after, "web").external_ips == expected


def test_an_anchor_recorded_by_us_is_ours_even_when_its_node_is_gone() -> None:
    observation = observe(
        svc(
            "web",
            on=["n1"],
            external_ips=["10.10.9.9", USER_IP],
            annotations={contract.ANCHOR_IP: f"10.10.9.9,{anchor('n1')}"},
        ),
        nodes=nodes("n1"),
        ips=[rip(IP_A, "n1")],
    )
    after = apply(observation, plan(observation))
    assert service(after, "web").external_ips == (USER_IP, anchor("n1"))
    assert service(after, "web").annotation(contract.ANCHOR_IP) == anchor("n1")


def test_a_restarting_pod_does_not_make_the_remembered_anchor_flap() -> None:
    """Anchors known from Pods only: while no Pod is ready, the recorded anchor is kept."""
    running = observe(
        svc("web", on=["n1"]),
        nodes=[node("n1", with_anchor=False)],
        pods=[pod("web", "n1", "10.20.0.1")],
        ips=[rip(IP_A)],
    )
    placed = apply(running, plan(running))
    assert service(placed, "web").external_ips == ("10.20.0.1",)
    restarting = replace(
        placed,
        services=(
            replace(service(placed, "web"), endpoints=(endpoint("web", "n1", ready=False),)),
        ),
        pods=(),
    )
    after = apply(restarting, plan(restarting))
    assert service(after, "web").external_ips == ("10.20.0.1",)
    assert service(after, "web").annotation(contract.ANCHOR_IP) == "10.20.0.1"


def test_services_without_opt_in_are_never_written() -> None:
    plain = svc("plain", None, on=ALL, external_ips=[anchor("n1")])
    the_plan = plan(observe(plain, svc("web", on=ALL), nodes=nodes(*ALL), ips=[rip(IP_A, "n3")]))
    touched = {p.service.name for p in (*the_plan.before_assign, *the_plan.after_assign)}
    assert "plain" not in touched
    assert "plain" not in {e.service.name for e in the_plan.events}
    assert [r.service.name for r in the_plan.reports] == ["web"]


def test_warnings_are_not_repeated_while_the_status_stays_the_same() -> None:
    observation = observe(svc("web", on=ALL), nodes=nodes(*ALL))
    first = plan(observation)
    assert warnings(first) == {("web", Reason.IP_NOT_IN_ACCOUNT)}
    second = plan(apply(observation, first))
    assert second.is_empty


def test_warnings_come_back_when_the_problem_changes() -> None:
    observation = observe(svc("web", on=ALL), nodes=nodes(*ALL))
    settled = apply(observation, plan(observation))
    wrong_region = replace(settled, reserved_ips=(rip(IP_A, region="nyc1"),))
    assert warnings(plan(wrong_region)) == {("web", Reason.WRONG_REGION)}


def test_invalid_address_status_names_the_annotation_and_clears_holder() -> None:
    observation = observe(
        svc(
            "web",
            "nope",
            annotations={contract.HOLDER_NODE: "n1", contract.HOLDER_DROPLET: "101"},
        ),
        nodes=nodes("n1"),
    )
    [patch] = plan(observation).after_assign
    changes = dict(patch.annotations)
    assert changes[contract.HOLDER_NODE] is None
    assert changes[contract.HOLDER_DROPLET] is None
    assert contract.ADDRESS in (changes[contract.STATUS] or "")


def test_firewall_opens_every_enabled_services_ports() -> None:
    observation = observe(
        svc("web", IP_A, on=["n1"], tcp=[80, 443]),
        svc("dns", IP_B, on=["n2"], tcp=[], udp=[53]),
        svc(
            "admin",
            IP_C,
            on=["n3"],
            tcp=[22],
            annotations={contract.FIREWALL: "false"},
        ),
        nodes=nodes(*ALL),
        ips=[rip(IP_A, "n1"), rip(IP_B, "n2"), rip(IP_C, "n3")],
    )
    the_plan = plan(observation)
    change = the_plan.firewall
    assert change is not None and change.body is not None
    assert change.action is FirewallAction.CREATE
    assert change.body.name == CLUSTER.firewall_name
    opened = {(r.protocol, r.ports) for r in change.body.inbound_rules}
    assert opened == {("tcp", "80"), ("tcp", "443"), ("udp", "53")}
    updated = {e.service.name for e in the_plan.events if e.reason is Reason.FIREWALL_UPDATED}
    assert updated == {"web", "dns"}


def test_firewall_is_deleted_when_the_last_service_goes() -> None:
    observation = observe(svc("web", on=["n1"]), nodes=nodes("n1"), ips=[rip(IP_A)])
    with_firewall = apply(observation, plan(observation))
    assert with_firewall.firewall is not None
    gone = replace(with_firewall, services=())
    change = plan(gone).firewall
    assert change is not None and change.action is FirewallAction.DELETE


def test_unusable_ips_open_no_ports() -> None:
    the_plan = plan(observe(svc("web", on=ALL), nodes=nodes(*ALL)))
    assert the_plan.firewall is None


def test_report_explains_each_node() -> None:
    observation = observe(
        svc("web", on=["n1", "n2"]),
        nodes=[node("n1"), node("n2", unschedulable=True), node("n3")],
        ips=[rip(IP_A)],
    )
    [report] = plan(observation).reports
    assert (report.address, report.holder_node, report.holder_droplet, report.anchor_ip) == (
        IP_A,
        "n1",
        101,
        anchor("n1"),
    )
    assert {v.node_name: v.reasons for v in report.nodes} == {
        "n1": (),
        "n2": (Unfit.CORDONED,),
        "n3": (Unfit.NO_READY_ENDPOINT,),
    }


@pytest.mark.parametrize("scenario", [pytest.param(s, id=s.id) for s in SCENARIOS])
def test_input_order_does_not_matter(scenario: Scenario) -> None:
    observation = scenario.observation
    shuffled = replace(
        observation,
        services=observation.services[::-1],
        nodes=observation.nodes[::-1],
        reserved_ips=observation.reserved_ips[::-1],
        pods=observation.pods[::-1],
    )
    assert plan(shuffled) == plan(observation)


def test_an_ip_left_without_a_droplet_says_why() -> None:
    scenario = next(s for s in SCENARIOS if s.id == "three-ips-two-droplets")
    statuses = {r.service.name: r.status for r in plan(scenario.observation).reports}
    assert statuses["c"] == (
        f"Reserved IP {IP_C} stays unassigned: "
        "every fit node (n1, n2) already holds another reserved IP."
    )


def test_a_cluster_without_nodes_says_so() -> None:
    [report] = plan(observe(svc("web", on=[]), ips=[rip(IP_A)])).reports
    assert report.status == (
        f"Reserved IP {IP_A} stays unassigned: no node is fit (the cluster has no nodes)."
    )


def test_an_ip_whose_holder_anchor_is_unknown_lists_no_anchor() -> None:
    """Anchors from Pods only, none ready, nothing recorded: nothing of ours to list."""
    observation = observe(
        svc("web", on=[], external_ips=[USER_IP]),
        nodes=[node("n1", with_anchor=False)],
        ips=[rip(IP_A, "n1")],
    )
    [report] = plan(observation).reports
    assert (report.holder_node, report.anchor_ip) == ("n1", None)
    assert service(apply(observation, plan(observation)), "web").external_ips == (USER_IP,)


def test_missing_anchor_names_the_nodes_and_the_annotation() -> None:
    observation = observe(
        svc("web", on=["n1", "n2"]),
        nodes=[node("n1", with_anchor=False), node("n2", with_anchor=False)],
        ips=[rip(IP_A)],
    )
    [report] = plan(observation).reports
    assert report.status == (
        f"Reserved IP {IP_A} stays unassigned: the anchor IP of nodes n1, n2 is unknown "
        f"(no {contract.ANCHOR_IPV4} annotation on its Pod or Node)."
    )
