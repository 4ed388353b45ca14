"""The client's address is what this project is for: a Service whose traffic kube-proxy
masquerades (``externalTrafficPolicy`` not ``Local``; a ClusterIP Service cannot have it) is
placed all the same, and its status and one Warning say how to keep the address."""

from __future__ import annotations

from dataclasses import replace

import pytest

from floating_ip.core.exposure import masquerade_problem
from floating_ip.core.model import EventType, Reason, Service
from floating_ip.core.plan import plan
from floating_ip_common import contract
from tests.core.builders import IP_A, droplet, endpoint, lb, nodes, observe, rip, svc
from tests.core.simulator import converge


@pytest.mark.parametrize(
    ("service", "fix"),
    [
        pytest.param(
            svc("web", service_type="ClusterIP", traffic_policy="Cluster"),
            "use type NodePort, or LoadBalancer with loadBalancerClass",
            id="clusterip",
        ),
        pytest.param(
            svc("web", traffic_policy="Cluster"),
            "set externalTrafficPolicy: Local",
            id="nodeport-cluster",
        ),
        pytest.param(
            lb("web", traffic_policy="Cluster"),
            "set externalTrafficPolicy: Local",
            id="class-mode-cluster",
        ),
        pytest.param(svc("web"), None, id="nodeport-local"),
        pytest.param(lb("web"), None, id="class-mode-local"),
        pytest.param(
            lb("web", lb_class=None, traffic_policy="Cluster"),
            None,
            id="another-class-is-not-ours-to-judge",
        ),
    ],
)
def test_a_masquerading_service_is_told_how_to_keep_the_clients_address(
    service: Service, fix: str | None
) -> None:
    the_plan = plan(observe(service, nodes=nodes("n1"), ips=[rip(IP_A)]))
    warnings = [
        e
        for e in the_plan.events
        if e.type is EventType.WARNING and e.reason is Reason.CLIENT_ADDRESS_MASQUERADED
    ]
    [report] = the_plan.reports
    if fix is None:
        assert warnings == []
        assert "masquerades" not in report.status
        return
    [warning] = warnings
    assert "pods see the holder node's address, not the client's" in warning.message
    assert fix in warning.message
    assert fix in report.status, "the status says it too"
    assert [a.droplet_id for a in the_plan.assignments] == [droplet("n1")], "placed all the same"


def test_the_warning_is_given_once_not_at_every_resync() -> None:
    service = svc("web", service_type="ClusterIP", traffic_policy="Cluster")
    settled, plans = converge(observe(service, nodes=nodes("n1"), ips=[rip(IP_A)]))
    told = [
        e.reason for p in plans for e in p.events if e.reason is Reason.CLIENT_ADDRESS_MASQUERADED
    ]
    assert told == [Reason.CLIENT_ADDRESS_MASQUERADED]
    assert plan(settled).is_empty
    [web] = settled.services
    assert "masquerades" in (web.annotation(contract.STATUS) or "")


def test_the_message_says_why_for_each_kind_of_service() -> None:
    clusterip = masquerade_problem(svc("web", service_type="ClusterIP", traffic_policy="Cluster"))
    nodeport = masquerade_problem(svc("web", traffic_policy="Cluster"))
    assert clusterip is not None and nodeport is not None
    assert clusterip.message == (
        "the pods see the holder node's address, not the client's: kube-proxy masquerades "
        "traffic to the reserved IP because a ClusterIP Service cannot have "
        "externalTrafficPolicy: Local; use type NodePort, or LoadBalancer with "
        f"loadBalancerClass {contract.LOAD_BALANCER_CLASS}, with externalTrafficPolicy: Local "
        "to keep the client's address"
    )
    assert nodeport.message == (
        "the pods see the holder node's address, not the client's: kube-proxy masquerades "
        "traffic to the reserved IP because its externalTrafficPolicy is Cluster; set "
        "externalTrafficPolicy: Local to keep the client's address"
    )


def test_a_load_balancer_of_another_class_is_not_ours_to_judge() -> None:
    assert masquerade_problem(lb("web", lb_class=None, traffic_policy="Cluster")) is None


def test_a_move_does_not_repeat_the_warning_the_status_already_states() -> None:
    service = svc("web", service_type="ClusterIP", traffic_policy="Cluster")
    settled, _ = converge(observe(service, nodes=nodes("n1", "n2"), ips=[rip(IP_A)]))
    [web] = settled.services
    moved = replace(web, endpoints=(endpoint("web", "n2"),))
    the_plan = plan(replace(settled, services=(moved,)))
    reasons = [e.reason for e in the_plan.events]
    assert Reason.IP_MOVED in reasons
    assert Reason.CLIENT_ADDRESS_MASQUERADED not in reasons, "said once, still in the status"
    [report] = the_plan.reports
    assert "masquerades" in report.status
