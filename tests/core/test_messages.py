"""The sentences people read, situation by situation: the Service's status annotation and
the Events' messages, word for word (they are what a user acts on)."""

from __future__ import annotations

import pytest

from floating_ip.core import own_writes
from floating_ip.core.exposure import (
    DO_LB_NETWORK,
    DO_LB_TYPE,
    desired_ingress,
    enforced_on_nodes,
    widened_firewall_problem,
)
from floating_ip.core.model import (
    ConditionStatus,
    EventType,
    Firewall,
    Ingress,
    IPMode,
    Observation,
    Plan,
    Reason,
    Suspicion,
)
from floating_ip.core.plan import plan
from floating_ip_common import contract
from tests.core.builders import CLUSTER, DEAD, IP_A, IP_B, lb, node, observe, rip, svc

SINCE = "2026-01-31T12:00:00Z"


def status_of(the_plan: Plan, name: str = "web") -> str | None:
    """The status the plan writes last on the Service."""
    written = [
        value
        for patch in (*the_plan.before_assign, *the_plan.after_assign)
        if patch.service.name == name
        for key, value in patch.annotations
        if key == contract.STATUS
    ]
    return written[-1] if written else None


def message_of(the_plan: Plan, reason: Reason) -> str:
    [message] = [e.message for e in the_plan.events if e.reason is reason]
    return message


@pytest.mark.parametrize(
    ("observation", "expected"),
    [
        pytest.param(
            observe(
                svc("web", on=["n2"]),
                nodes=[node("n1", ready=ConditionStatus.FALSE, unschedulable=True), node("n2")],
                ips=[rip(IP_A, "n1")],
            ),
            f"Reserved IP {IP_A} moved from node n1 (droplet 101) (NotReady, Cordoned, "
            "NoReadyEndpoint) to "
            "node n2 (droplet 102).",
            id="from-a-node-with-two-reasons",
        ),
        pytest.param(
            observe(
                svc("web", on=["n2"]),
                nodes=[node("n2")],
                ips=[rip(IP_A, "n9")],
            ),
            f"Reserved IP {IP_A} moved from droplet 109 (not a node of this cluster) to "
            "node n2 (droplet 102).",
            id="from-a-droplet-not-of-this-cluster",
        ),
    ],
)
def test_the_move_event_says_from_where_and_why(observation: Observation, expected: str) -> None:
    assert message_of(plan(observation), Reason.IP_MOVED) == expected


def test_a_suspicion_without_detail_adds_no_empty_brackets() -> None:
    bare = Suspicion("lease", SINCE)
    the_plan = plan(
        observe(
            svc("web", on=["n1", "n2"]),
            nodes=[node("n1", suspicion=bare), node("n2")],
            ips=[rip(IP_A, "n1")],
        )
    )
    assert message_of(the_plan, Reason.UNREACHABLE) == (
        f"Node n1 is unreachable: lease probe failed since {SINCE}; reserved IP {IP_A} moved "
        "to node n2 (droplet 102)."
    )


def test_the_status_names_the_suspected_holder_and_no_other_suspected_node() -> None:
    """The holder n1 is suspected (though no pod of web runs there) and so is n3, which
    matters to no one: only n1 is named."""
    the_plan = plan(
        observe(
            svc("web", on=["n2"]),
            nodes=[node("n1", suspicion=DEAD), node("n2"), node("n3", suspicion=DEAD)],
            ips=[rip(IP_A, "n1")],
        )
    )
    status = status_of(the_plan)
    assert status is not None
    assert status.startswith(f"Reserved IP {IP_A} is on node n2 (droplet 102)")
    assert "Node n1 is unreachable" in status
    assert "n3" not in status


def test_a_locked_ip_stays_until_digitalocean_finishes() -> None:
    the_plan = plan(
        observe(
            svc("web", on=["n2"]),
            nodes=[node("n1", ready=ConditionStatus.FALSE), node("n2")],
            ips=[rip(IP_A, "n1", locked=True)],
        )
    )
    assert status_of(the_plan) == (
        f"Reserved IP {IP_A} stays on node n1 (droplet 101) until DigitalOcean finishes a "
        "pending action on it."
    )


def test_a_load_balancer_without_a_class_is_told_which_class_to_use() -> None:
    status = status_of(plan(observe(lb("web", lb_class=None), nodes=[node("n1")], ips=[rip()])))
    assert status is not None
    assert status.startswith(
        "Service is type LoadBalancer with no loadBalancerClass: its reserved IP is not placed"
    )


@pytest.mark.parametrize(
    ("anchor", "expected"),
    [
        pytest.param("10.10.0.1", (Ingress(IP_A, IPMode.VIP), Ingress("10.10.0.1", IPMode.VIP))),
        pytest.param(None, (Ingress(IP_A, IPMode.VIP),), id="anchor-unknown"),
        pytest.param(IP_A, (Ingress(IP_A, IPMode.VIP),), id="anchor-is-the-address"),
    ],
)
def test_class_mode_lists_the_reserved_ip_then_a_known_anchor(
    anchor: str | None, expected: tuple[Ingress, ...]
) -> None:
    assert desired_ingress(IP_A, anchor) == expected


@pytest.mark.parametrize(
    ("ranges", "sources", "enforced"),
    [
        pytest.param(("10.1.0.0/16",), ("10.0.0.0/8",), True, id="within"),
        pytest.param(("10.1.2.3/16",), ("10.0.0.0/8",), True, id="host-bits-set-still-within"),
        pytest.param(("192.0.2.0/24",), ("10.0.0.0/8",), False, id="outside"),
        pytest.param(("not-a-cidr",), ("10.0.0.0/8",), False, id="unreadable-range"),
        pytest.param((), ("10.0.0.0/8",), False, id="no-ranges"),
    ],
)
def test_source_ranges_enforce_the_firewall_sources_only_within_them(
    ranges: tuple[str, ...], sources: tuple[str, ...], enforced: bool
) -> None:
    assert enforced_on_nodes(ranges, sources) is enforced


@pytest.mark.parametrize(
    ("annotations", "widened"),
    [
        pytest.param({}, True, id="regional-network-external-by-default"),
        pytest.param({DO_LB_TYPE: "regional_network "}, True, id="any-spelling"),
        pytest.param({DO_LB_TYPE: "REGIONAL"}, False, id="regional"),
        pytest.param({DO_LB_NETWORK: "INTERNAL"}, False, id="internal"),
    ],
)
def test_a_narrow_firewall_may_be_widened_by_the_cloud_controller(
    annotations: dict[str, str], widened: bool
) -> None:
    service = lb("web", annotations=annotations)
    problem = widened_firewall_problem(service, ("10.0.0.0/8",))
    assert (problem is not None) is widened
    if problem is not None:
        assert problem.reason is Reason.FIREWALL_WIDENED


@pytest.mark.parametrize(
    ("keys", "traces"),
    [
        pytest.param([], False, id="none"),
        pytest.param(["team", contract.ADDRESS], False, id="only-the-users"),
        pytest.param(["team", contract.STATUS], True, id="our-status"),
    ],
)
def test_which_annotations_are_traces_of_ours(keys: list[str], traces: bool) -> None:
    assert own_writes.has_traces(keys) is traces


def test_the_clean_up_event_is_a_normal_event_on_the_service() -> None:
    service = svc(
        "web",
        None,
        annotations={contract.STATUS: "x", contract.ANCHOR_IP: "10.10.0.1,10.10.0.2"},
        external_ips=["10.10.0.1", "10.10.0.2"],
    )
    the_plan = plan(observe(service, nodes=[node("n1")]))
    [patch] = the_plan.after_assign
    assert patch.ingress is None, "externalIPs mode: the ingress is not touched"
    [event] = the_plan.events
    assert (event.service, event.uid, event.type, event.reason) == (
        service.ref,
        service.uid,
        EventType.NORMAL,
        Reason.CLEANED_UP,
    )
    assert event.message.startswith("Removed anchor IP 10.10.0.1, 10.10.0.2 from externalIPs")


def test_a_users_own_dns_target_survives_the_clean_up() -> None:
    service = svc(
        "web",
        None,
        annotations={contract.STATUS: "x", contract.EXTERNAL_DNS_TARGET: "www.example.com"},
    )
    [patch] = plan(observe(service, nodes=[node("n1")])).after_assign
    assert dict(patch.annotations) == {contract.STATUS: None}


def test_a_suspected_holder_keeps_the_ip_when_every_fit_droplet_is_taken() -> None:
    the_plan = plan(
        observe(
            svc("web", on=["n1", "n2"]),
            svc("api", IP_B, on=["n2"]),
            nodes=[node("n1", suspicion=DEAD), node("n2")],
            ips=[rip(IP_A, "n1"), rip(IP_B, "n2")],
        )
    )
    assert the_plan.assignments == ()
    assert message_of(the_plan, Reason.UNREACHABLE) == (
        f"Reserved IP {IP_A} stays on node n1 (droplet 101): node n1 is unreachable: tcp probe "
        f"failed since {SINCE} (1 endpoint refused or timed out 2 times in a row), but every "
        "fit node already holds another reserved IP."
    )


def test_a_service_clashing_on_ports_is_told_who_has_the_ip_and_on_which_ports() -> None:
    the_plan = plan(
        observe(
            svc("web", on=["n1"], tcp=[80, 443], created="2025-01-01T00:00:00Z"),
            svc("api", on=["n1"], tcp=[80, 443], udp=[53], created="2025-01-02T00:00:00Z"),
            nodes=[node("n1")],
            ips=[rip(IP_A)],
        )
    )
    assert message_of(the_plan, Reason.IP_CONFLICT) == (
        f"Reserved IP {IP_A} is already used by Service default/web on TCP/443, TCP/80; "
        "this Service does not get it."
    )


def test_one_node_without_anchor_is_named_in_the_singular() -> None:
    the_plan = plan(
        observe(svc("web", on=["n1"]), nodes=[node("n1", with_anchor=False)], ips=[rip(IP_A, "n1")])
    )
    assert message_of(the_plan, Reason.MISSING_ANCHOR_IP) == (
        f"Reserved IP {IP_A} stays on node n1 (droplet 101): the anchor IP of node n1 is unknown "
        f"(no {contract.ANCHOR_IPV4} annotation on its Pod or Node)."
    )


@pytest.mark.parametrize(
    ("firewall", "tcp", "expected"),
    [
        pytest.param(
            None, [80, 443], "Firewall floating-ip-c0ffee created: 2 inbound rules.", id="created"
        ),
        pytest.param(
            Firewall("fw-1", "floating-ip-c0ffee", tags=(CLUSTER.cluster_tag,)),
            [80],
            "Firewall floating-ip-c0ffee updated: 1 inbound rule.",
            id="updated",
        ),
    ],
)
def test_the_firewall_event_says_what_was_written(
    firewall: Firewall | None, tcp: list[int], expected: str
) -> None:
    the_plan = plan(
        observe(svc("web", on=["n1"], tcp=tcp), nodes=[node("n1")], ips=[rip()], firewall=firewall)
    )
    assert message_of(the_plan, Reason.FIREWALL_UPDATED) == expected
    [event] = [e for e in the_plan.events if e.reason is Reason.FIREWALL_UPDATED]
    assert (event.type, event.after_ip) == (EventType.NORMAL, None), "told even if a move fails"


def test_deleting_the_firewall_tells_no_service() -> None:
    firewall = Firewall("fw-1", "floating-ip-c0ffee", tags=(CLUSTER.cluster_tag,))
    the_plan = plan(observe(svc("web", None), nodes=[node("n1")], firewall=firewall))
    assert the_plan.firewall is not None
    assert [e for e in the_plan.events if e.reason is Reason.FIREWALL_UPDATED] == []
