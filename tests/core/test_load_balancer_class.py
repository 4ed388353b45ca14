"""LoadBalancer-class mode: ``status.loadBalancer.ingress`` instead of ``spec.externalIPs``,
with the same make-before-break order and stickiness, and clean switches between the modes."""

from __future__ import annotations

from dataclasses import replace

import pytest

from floating_ip.core.exposure import DO_LB_TYPE
from floating_ip.core.model import (
    ConditionStatus,
    EventType,
    Ingress,
    IPMode,
    Observation,
    Reason,
    Service,
)
from floating_ip.core.plan import plan
from floating_ip_common import contract
from tests.core.builders import (
    IP_A,
    USER_IP,
    anchor,
    droplet,
    lb,
    node,
    nodes,
    observe,
    rip,
    svc,
    vip,
)
from tests.core.simulator import apply, converge

HELD_ON_N1 = {
    contract.ANCHOR_IP: anchor("n1"),
    contract.HOLDER_NODE: "n1",
    contract.HOLDER_DROPLET: str(droplet("n1")),
}


def only(observation: Observation) -> Service:
    [service] = observation.services
    return service


def test_a_class_service_gets_the_reserved_ip_then_the_anchor_in_its_ingress() -> None:
    the_plan = plan(observe(lb("web", on=["n1"]), nodes=nodes("n1"), ips=[rip(IP_A)]))

    [before] = the_plan.before_assign
    assert before.ingress == vip(IP_A, anchor("n1"))
    assert before.external_ips is None
    assert before.annotations == (), "one status call before the assignment, nothing else"
    [assignment] = the_plan.assignments
    assert assignment.droplet_id == droplet("n1")
    [after] = the_plan.after_assign
    assert after.ingress is None, "already written before the assignment"
    assert after.external_ips is None
    assert after.after_ip == IP_A
    assert dict(after.annotations)[contract.EXTERNAL_DNS_TARGET] == IP_A


def test_the_anchor_and_the_reserved_ip_are_both_vip_mode() -> None:
    # kube-proxy and Cilium program only unset/VIP entries: the anchor must be one of them.
    [before] = plan(observe(lb("web"), nodes=nodes("n1"), ips=[rip(IP_A)])).before_assign
    assert before.ingress is not None
    assert [entry.ip_mode for entry in before.ingress] == [IPMode.VIP, IPMode.VIP]


def test_an_idle_class_service_costs_no_writes() -> None:
    settled, plans = converge(observe(lb("web"), nodes=nodes("n1"), ips=[rip(IP_A)]))
    assert len(plans) == 2 and plans[-1].is_empty
    service = only(settled)
    assert service.ingress == vip(IP_A, anchor("n1"))
    assert service.external_ips == ()


def test_a_move_in_class_mode_is_make_before_break() -> None:
    observation = observe(
        lb("web", on=["n1", "n2"], ingress=vip(IP_A, anchor("n1")), annotations=HELD_ON_N1),
        nodes=[node("n1", ready=ConditionStatus.FALSE), node("n2")],
        ips=[rip(IP_A, "n1")],
    )
    the_plan = plan(observation)
    [before] = the_plan.before_assign
    assert before.ingress == vip(IP_A, anchor("n1"), anchor("n2"))
    assert before.annotations == (), "the whole ingress is ours: no record needed"
    [assignment] = the_plan.assignments
    assert assignment.droplet_id == droplet("n2")
    [after] = the_plan.after_assign
    assert after.ingress == vip(IP_A, anchor("n2"))
    assert after.after_ip == IP_A
    assert after.external_ips is None
    assert plan(apply(observation, the_plan)).is_empty


def test_class_mode_is_sticky_like_external_ips_mode() -> None:
    observation = observe(
        lb("web", on=["n1", "n2"], ingress=vip(IP_A, anchor("n1"))),
        nodes=nodes("n1", "n2"),
        ips=[rip(IP_A, "n1")],
    )
    settled, _ = converge(observation)
    assert settled.reserved_ips == observation.reserved_ips
    assert only(settled).ingress == vip(IP_A, anchor("n1"))


@pytest.mark.parametrize(
    ("service", "expected_ips"),
    [
        pytest.param(
            svc("web", external_ips=[USER_IP, anchor("n1")], annotations=HELD_ON_N1),
            (USER_IP, anchor("n1")),
            id="cluster-ip",
        ),
        pytest.param(
            svc(
                "web",
                external_ips=[anchor("n1")],
                annotations=HELD_ON_N1,
                service_type="NodePort",
                lb_class=None,
            ),
            (anchor("n1"),),
            id="node-port",
        ),
    ],
)
def test_other_types_keep_external_ips_mode(
    service: Service, expected_ips: tuple[str, ...]
) -> None:
    settled, _ = converge(observe(service, nodes=nodes("n1"), ips=[rip(IP_A, "n1")]))
    assert only(settled).external_ips == expected_ips
    assert only(settled).ingress == ()
    assert contract.EXTERNAL_DNS_TARGET not in dict(only(settled).annotations)


def test_switching_to_class_mode_adds_the_ingress_before_dropping_the_anchor() -> None:
    observation = observe(
        lb("web", external_ips=[USER_IP, anchor("n1")], annotations=HELD_ON_N1),
        nodes=nodes("n1"),
        ips=[rip(IP_A, "n1")],
    )
    the_plan = plan(observation)
    assert the_plan.assignments == ()
    [before] = the_plan.before_assign
    assert before.ingress == vip(IP_A, anchor("n1"))
    assert before.external_ips is None
    [after] = the_plan.after_assign
    assert after.external_ips == (USER_IP,), "our anchor goes, the user's entry stays"
    assert after.ingress is None
    settled, _ = converge(apply(observation, the_plan))
    assert only(settled).external_ips == (USER_IP,)
    assert only(settled).ingress == vip(IP_A, anchor("n1"))


def test_switching_back_lists_the_anchor_before_clearing_the_ingress() -> None:
    observation = observe(
        svc(
            "web",
            external_ips=[USER_IP],
            ingress=vip(IP_A, anchor("n1")),
            annotations={**HELD_ON_N1, contract.EXTERNAL_DNS_TARGET: IP_A},
        ),
        nodes=nodes("n1"),
        ips=[rip(IP_A, "n1")],
    )
    the_plan = plan(observation)
    [before] = the_plan.before_assign
    assert before.external_ips == (USER_IP, anchor("n1"))
    assert before.ingress is None
    [after] = the_plan.after_assign
    assert after.ingress == ()
    assert dict(after.annotations)[contract.EXTERNAL_DNS_TARGET] is None
    settled, _ = converge(apply(observation, the_plan))
    assert only(settled).ingress == ()
    assert contract.EXTERNAL_DNS_TARGET not in dict(only(settled).annotations)


def test_only_our_entries_leave_the_ingress_of_a_service_that_left_our_class() -> None:
    foreign = Ingress("192.0.2.99")
    settled, _ = converge(
        observe(
            svc("web", ingress=(*vip(IP_A, anchor("n1")), foreign), annotations=HELD_ON_N1),
            nodes=nodes("n1"),
            ips=[rip(IP_A, "n1")],
        )
    )
    assert only(settled).ingress == (foreign,)


@pytest.mark.parametrize(
    ("lb_class", "named"),
    [
        pytest.param(None, "no loadBalancerClass", id="no-class"),
        pytest.param("example.com/lb", "loadBalancerClass example.com/lb", id="other-class"),
    ],
)
def test_a_load_balancer_of_another_class_is_warned_about_and_not_exposed(
    lb_class: str | None, named: str
) -> None:
    theirs = Ingress("192.0.2.99")
    dns = {contract.EXTERNAL_DNS_TARGET: IP_A}  # set by the user: not ours to remove
    observation = observe(
        lb(
            "web",
            lb_class=lb_class,
            ingress=[theirs],
            annotations={**dns, **HELD_ON_N1},
            external_ips=[anchor("n1")],  # from before: left alone, as everything but status
        ),
        nodes=nodes("n1"),
        ips=[rip(IP_A)],
    )
    the_plan = plan(observation)
    assert the_plan.assignments == ()
    assert the_plan.firewall is None, "no ports opened for a Service we do not expose"
    assert the_plan.before_assign == ()
    [after] = the_plan.after_assign
    assert after.ingress is None and after.external_ips is None
    [warning] = [e for e in the_plan.events if e.type is EventType.WARNING]
    assert warning.reason is Reason.WRONG_LOAD_BALANCER_CLASS
    assert named in warning.message and contract.LOAD_BALANCER_CLASS in warning.message
    settled, plans = converge(observation)
    assert only(settled).ingress == (theirs,)
    assert only(settled).external_ips == (anchor("n1"),)
    assert dict(only(settled).annotations)[contract.EXTERNAL_DNS_TARGET] == IP_A
    assert plans[-1].events == (), "the Warning is not repeated"


def test_a_class_service_without_a_usable_ip_lists_nothing_of_ours() -> None:
    settled, _ = converge(
        observe(
            lb("web", ingress=vip(IP_A, anchor("n1")), annotations=HELD_ON_N1),
            nodes=nodes("n1"),
            ips=[],  # the address is not in the account (any more)
        )
    )
    assert only(settled).ingress == ()


def test_a_users_own_external_dns_target_is_kept() -> None:
    mine = {contract.EXTERNAL_DNS_TARGET: "web.example.com"}
    settled, _ = converge(observe(lb("web", annotations=mine), nodes=nodes("n1"), ips=[rip()]))
    assert dict(only(settled).annotations)[contract.EXTERNAL_DNS_TARGET] == "web.example.com"


@pytest.mark.parametrize(
    ("service", "warned"),
    [
        pytest.param(lb("web", annotations={contract.FIREWALL_SOURCES: "192.0.2.0/24"}), True),
        pytest.param(
            lb(
                "web",
                annotations={contract.FIREWALL_SOURCES: "192.0.2.0/24", DO_LB_TYPE: "REGIONAL"},
            ),
            False,
            id="regional-type-keeps-do-out",
        ),
        pytest.param(lb("web"), False, id="default-sources-are-the-world-anyway"),
        pytest.param(
            lb(
                "web",
                annotations={contract.FIREWALL_SOURCES: "192.0.2.0/24"},
                source_ranges=["192.0.2.128/25"],
            ),
            False,
            id="source-ranges-enforced-on-the-node",
        ),
        pytest.param(
            lb(
                "web",
                annotations={contract.FIREWALL_SOURCES: "192.0.2.0/24"},
                source_ranges=["0.0.0.0/0"],
            ),
            True,
            id="wider-source-ranges-do-not-help",
        ),
        pytest.param(
            svc("web", annotations={contract.FIREWALL_SOURCES: "192.0.2.0/24"}),
            False,
            id="external-ips-mode",
        ),
    ],
)
def test_firewall_sources_digitalocean_may_widen_are_reported(
    service: Service, warned: bool
) -> None:
    the_plan = plan(observe(service, nodes=nodes("n1"), ips=[rip()]))
    reasons = {e.reason for e in the_plan.events if e.type is EventType.WARNING}
    assert (Reason.FIREWALL_WIDENED in reasons) is warned


def test_opting_out_in_class_mode_removes_the_ingress_and_dns_target_we_wrote() -> None:
    settled, _ = converge(observe(lb("web"), nodes=nodes("n1"), ips=[rip(IP_A)]))
    mine = Ingress("192.0.2.99")
    service = only(settled)
    annotations = {k: v for k, v in service.annotations if k != contract.ADDRESS}
    # A LoadBalancer of our class asks for an IP even without the annotation (``auto``):
    # it opts out by leaving the class.
    opted_out = replace(
        service,
        annotations=tuple(sorted(annotations.items())),
        ingress=(*service.ingress, mine),
        type="ClusterIP",
        load_balancer_class=None,
    )
    cleaned, _ = converge(replace(settled, services=(opted_out,)))
    assert only(cleaned).ingress == (mine,)
    assert contract.EXTERNAL_DNS_TARGET not in dict(only(cleaned).annotations)
