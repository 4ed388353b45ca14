"""Firewall: normalisation of the API's spellings, the desired rules, and the one write."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from floating_ip.core.firewall import MAX_RULES, decide_firewall
from floating_ip.core.firewall_rules import (
    inbound_rules,
    normal_ports,
    normal_rules,
    sorted_addresses,
)
from floating_ip.core.model import (
    Firewall,
    FirewallAction,
    FirewallRule,
    Protocol,
    Reason,
    Service,
    ServicePort,
    Sources,
)
from floating_ip.core.plan import plan
from floating_ip_common import contract
from tests.core.builders import CLUSTER, nodes, observe, rip, svc

EVERYONE = ("0.0.0.0/0", "::/0")
OURS = CLUSTER.firewall_name


def rule(protocol: str, ports: str, *addresses: str) -> FirewallRule:
    return FirewallRule(protocol, ports, Sources(addresses=addresses))


def firewall(*inbound: FirewallRule, **fields: Any) -> Firewall:
    """Our firewall holding ``inbound``; ``fields`` override any other attribute."""
    ours = Firewall("fw-1", OURS, inbound, tags=(CLUSTER.cluster_tag,))
    return replace(ours, **fields)


@pytest.mark.parametrize(
    ("protocol", "ports", "expected"),
    [
        pytest.param("tcp", "0", "0", id="zero"),
        pytest.param("tcp", "all", "0", id="all"),
        pytest.param("tcp", "ALL", "0", id="all-upper"),
        pytest.param("tcp", "", "0", id="empty"),
        pytest.param("tcp", "1-65535", "0", id="full-range"),
        pytest.param("tcp", "1 - 65535", "0", id="full-range-spaced"),
        pytest.param("udp", "80-80", "80", id="one-port-range"),
        pytest.param("tcp", " 8000-9000 ", "8000-9000", id="range"),
        pytest.param("icmp", "", "0", id="icmp-has-no-ports"),
        pytest.param("tcp", "eighty", "eighty", id="unknown-kept-as-is"),
        pytest.param("tcp", "080", "80", id="leading-zero"),
    ],
)
def test_ports_normalised(protocol: str, ports: str, expected: str) -> None:
    assert normal_ports(protocol, ports) == expected


@pytest.mark.parametrize(
    ("current", "desired"),
    [
        pytest.param(
            [rule("tcp", "443", "::/0", "0.0.0.0/0"), rule("tcp", "80", "0.0.0.0/0")],
            [rule("tcp", "80", "0.0.0.0/0"), rule("tcp", "443", *EVERYONE)],
            id="order",
        ),
        pytest.param(
            [rule("TCP", "80", "192.0.2.7")], [rule("tcp", "80", "192.0.2.7/32")], id="spelling"
        ),
        pytest.param(
            [rule("udp", "53", "2001:DB8:0:0::/64")],
            [rule("udp", "53", "2001:db8::/64")],
            id="ipv6",
        ),
        pytest.param(
            [rule("tcp", "all", "10.0.0.0/8")], [rule("tcp", "1-65535", "10.0.0.0/8")], id="all"
        ),
        pytest.param(
            [rule("tcp", "80", "10.0.0.0/8"), rule("tcp", "80", "10.0.0.0/8")],
            [rule("tcp", "80", "10.0.0.0/8")],
            id="duplicate",
        ),
        pytest.param(
            [rule("tcp", "80", "10.1.2.3/8")], [rule("tcp", "80", "10.0.0.0/8")], id="host-bits"
        ),
        pytest.param([rule("icmp", "80")], [rule("icmp", "0")], id="icmp-has-no-ports"),
    ],
)
def test_same_rules_in_other_shapes_compare_equal(
    current: list[FirewallRule], desired: list[FirewallRule]
) -> None:
    assert normal_rules(current) == normal_rules(desired)
    assert decide_firewall(firewall(*current), normal_rules(desired), CLUSTER).change is None


@pytest.mark.parametrize(
    ("openings", "expected"),
    [
        pytest.param(
            [("tcp", 80, EVERYONE), ("tcp", 443, EVERYONE)],
            [rule("tcp", "80", *EVERYONE), rule("tcp", "443", *EVERYONE)],
            id="one-rule-per-port",
        ),
        pytest.param(
            [("tcp", 80, ("10.0.0.0/8",)), ("tcp", 80, ("192.0.2.0/24",))],
            [rule("tcp", "80", "10.0.0.0/8", "192.0.2.0/24")],
            id="sources-of-one-port-merged",
        ),
        pytest.param(
            [("tcp", 8001, EVERYONE), ("tcp", 8000, EVERYONE), ("tcp", 8002, EVERYONE)],
            [rule("tcp", "8000-8002", *EVERYONE)],
            id="neighbouring-ports-become-a-range",
        ),
        pytest.param(
            [("tcp", 80, EVERYONE), ("tcp", 81, ("10.0.0.0/8",))],
            [rule("tcp", "80", *EVERYONE), rule("tcp", "81", "10.0.0.0/8")],
            id="different-sources-stay-apart",
        ),
        pytest.param(
            [("udp", 53, EVERYONE), ("tcp", 53, EVERYONE)],
            [rule("tcp", "53", *EVERYONE), rule("udp", "53", *EVERYONE)],
            id="protocols-apart",
        ),
        pytest.param(
            [("tcp", 8001, EVERYONE), ("tcp", 443, EVERYONE), ("tcp", 8000, EVERYONE)],
            [rule("tcp", "443", *EVERYONE), rule("tcp", "8000-8001", *EVERYONE)],
            id="rules-by-first-port",
        ),
        pytest.param([], [], id="nothing"),
    ],
)
def test_inbound_rules(
    openings: list[tuple[str, int, tuple[str, ...]]], expected: list[FirewallRule]
) -> None:
    assert inbound_rules(openings) == tuple(expected)


def test_unknown_sources_are_compared_as_written() -> None:
    odd = [rule("tcp", "80", "not-an-address", "10.0.0.0/8", " zone-b ")]
    assert normal_rules(odd)[0].sources.addresses == ("10.0.0.0/8", "not-an-address", "zone-b")
    desired = normal_rules([rule("tcp", "80", "10.0.0.0/8")])
    change = decide_firewall(firewall(*odd), desired, CLUSTER).change
    assert change is not None and change.action is FirewallAction.UPDATE


WEB = (rule("tcp", "80", *EVERYONE),)
OUTBOUND = (rule("tcp", "0", "0.0.0.0/0"),)


@pytest.mark.parametrize(
    ("current", "desired", "action"),
    [
        pytest.param(None, WEB, FirewallAction.CREATE, id="missing-created"),
        pytest.param(None, (), None, id="missing-and-not-needed"),
        pytest.param(firewall(*WEB), WEB, None, id="unchanged"),
        pytest.param(firewall(), WEB, FirewallAction.UPDATE, id="rule-added"),
        pytest.param(
            firewall(*WEB), (rule("tcp", "443", *EVERYONE),), FirewallAction.UPDATE, id="changed"
        ),
        pytest.param(firewall(*WEB, tags=("k8s",)), WEB, FirewallAction.UPDATE, id="tags-repaired"),
        pytest.param(firewall(*WEB), (), FirewallAction.DELETE, id="no-rules-deleted"),
        pytest.param(
            firewall(*WEB, name="k8s-c0ffee-worker"), (), None, id="not-ours-never-deleted"
        ),
        pytest.param(
            firewall(name="k8s-public-access-c0ffee"), WEB, None, id="not-ours-never-updated"
        ),
    ],
)
def test_firewall_write(
    current: Firewall | None, desired: tuple[FirewallRule, ...], action: FirewallAction | None
) -> None:
    change = decide_firewall(current, desired, CLUSTER).change
    assert (change.action if change else None) == action


def test_update_is_a_full_body_keeping_outbound_rules_and_droplets() -> None:
    current = firewall(outbound_rules=OUTBOUND, droplet_ids=(7,), tags=())
    change = decide_firewall(current, WEB, CLUSTER).change
    assert change is not None and change.body is not None
    assert change.firewall_id == "fw-1"
    assert change.body.name == OURS
    assert change.body.inbound_rules == WEB
    assert change.body.outbound_rules == OUTBOUND
    assert change.body.droplet_ids == (7,)
    assert change.body.tags == ("k8s:c0ffee",)


def test_create_has_no_outbound_rules() -> None:
    change = decide_firewall(None, WEB, CLUSTER).change
    assert change is not None and change.body is not None
    assert change.firewall_id is None
    assert (change.body.outbound_rules, change.body.droplet_ids) == ((), ())


def many(count: int) -> tuple[FirewallRule, ...]:
    return tuple(rule("tcp", str(1000 + 2 * i), *EVERYONE) for i in range(count))


@pytest.mark.parametrize(
    ("inbound", "outbound", "allowed"),
    [
        pytest.param(MAX_RULES, 0, True, id="exactly-the-limit"),
        pytest.param(MAX_RULES + 1, 0, False, id="one-over"),
        pytest.param(MAX_RULES - 1, 2, False, id="outbound-counts"),
    ],
)
def test_rule_limit(inbound: int, outbound: int, allowed: bool) -> None:
    current = firewall(
        outbound_rules=tuple(rule("udp", str(p), "0.0.0.0/0") for p in range(outbound))
    )
    decision = decide_firewall(current, many(inbound), CLUSTER)
    assert (decision.change is not None) is allowed
    assert (decision.problem is None) is allowed
    if decision.problem:
        assert decision.problem.reason is Reason.FIREWALL_LIMIT
        assert str(MAX_RULES) in decision.problem.message


# --- the firewall opens exactly what the opted-in Services ask for ---------------------------

SOURCE_POOL = ("10.0.0.0/8", "192.0.2.0/24", "2001:db8::/32")
Opened = set[tuple[str, int, str]]
"""``(protocol, port, source)``: one thing the firewall lets in."""


@st.composite
def firewall_services(draw: st.DrawFn) -> list[Service]:
    """Up to four Services, each on its own reserved IP, with neighbouring and repeated
    ports (so that ranges form, and gaps between them), some with the firewall off, some
    with their own sources, some with SCTP ports the firewall cannot open."""
    ports = st.lists(st.integers(min_value=79, max_value=85), max_size=4, unique=True)
    services = []
    for number in range(draw(st.integers(min_value=0, max_value=4))):
        annotations = {contract.FIREWALL: draw(st.sampled_from(["true", "false"]))}
        sources = draw(st.lists(st.sampled_from(SOURCE_POOL), max_size=2, unique=True))
        if sources:
            annotations[contract.FIREWALL_SOURCES] = ",".join(sources)
        services.append(
            svc(
                f"s{number}",
                f"203.0.113.{20 + number}",
                tcp=draw(ports),
                udp=draw(ports),
                sctp=draw(ports),
                annotations=annotations,
            )
        )
    return services


def asked_for(services: list[Service]) -> Opened:
    """The union, over the Services with the firewall on, of their TCP and UDP ports, each
    from the Service's sources (everyone when it names none)."""
    opened: Opened = set()
    for service in services:
        if service.annotation(contract.FIREWALL) != "true":
            continue
        named = service.annotation(contract.FIREWALL_SOURCES)
        sources = named.split(",") if named else contract.DEFAULT_FIREWALL_SOURCES
        opened |= {
            (port.protocol.lower(), port.port, source)
            for port in service.ports
            if port.protocol.lower() in {"tcp", "udp"}
            for source in sources
        }
    return opened


def let_in(rules: tuple[FirewallRule, ...]) -> Opened:
    """Everything the rules let in, ranges spelled out (``"0"``: every port)."""
    opened: Opened = set()
    for each in rules:
        first, _, last = each.ports.partition("-")
        ports = range(1, 65536) if each.ports == "0" else range(int(first), int(last or first) + 1)
        opened |= {(each.protocol, p, s) for p in ports for s in each.sources.addresses}
    return opened


@settings(max_examples=300, derandomize=True, database=None)
@given(firewall_services())
def test_the_firewall_opens_exactly_the_services_ports(services: list[Service]) -> None:
    observation = observe(
        *services,
        nodes=nodes("n1", "n2", "n3", "n4"),
        ips=[rip(s.annotation(contract.ADDRESS) or "") for s in services],
    )
    change = plan(observation).firewall
    wanted = asked_for(services)
    if not wanted:
        assert change is None, "no Service asks for a port: no firewall is created"
        return
    assert change is not None and change.body is not None
    assert change.action is FirewallAction.CREATE
    assert let_in(change.body.inbound_rules) == wanted, "no port more, and none less"


def test_addresses_are_canonical_ipv4_then_ipv6_in_numeric_order() -> None:
    assert sorted_addresses(["::/0", "10.0.0.0/8", "9.0.0.0/8", "zone-b", "2001:db8::/32"]) == (
        "9.0.0.0/8",
        "10.0.0.0/8",
        "::/0",
        "2001:db8::/32",
        "zone-b",
    )


def test_rules_in_canonical_order_unknown_spellings_first() -> None:
    rules = [rule("tcp", "80"), rule("tcp", "0"), rule("tcp", "eighty"), rule("tcp", "8000-9000")]
    assert [r.ports for r in normal_rules(rules)] == ["eighty", "0", "80", "8000-9000"]


def test_every_kind_of_source_is_kept_sorted_and_once() -> None:
    sources = Sources(
        addresses=("10.0.0.0/8",),
        droplet_ids=(102, 101, 102),
        load_balancer_uids=("lb-b", "lb-a"),
        kubernetes_ids=("k-b", "k-a", "k-a"),
        tags=("web", "k8s"),
    )
    [normal] = normal_rules([FirewallRule("tcp", "80", sources)])
    assert normal.sources == Sources(
        addresses=("10.0.0.0/8",),
        droplet_ids=(101, 102),
        load_balancer_uids=("lb-a", "lb-b"),
        kubernetes_ids=("k-a", "k-b"),
        tags=("k8s", "web"),
    )


def test_an_sctp_port_is_refused_by_number_and_the_ports_after_it_still_open() -> None:
    web = replace(
        svc("web", tcp=()),
        ports=(ServicePort(9899, Protocol.SCTP), ServicePort(443, Protocol.TCP)),
    )
    the_plan = plan(observe(web, nodes=nodes("n1"), ips=[rip()]))
    assert the_plan.firewall is not None and the_plan.firewall.body is not None
    assert let_in(the_plan.firewall.body.inbound_rules) == {
        ("tcp", 443, source) for source in contract.DEFAULT_FIREWALL_SOURCES
    }
    [report] = the_plan.reports
    assert [p.message for p in report.problems] == [
        "Cloud firewalls cannot open SCTP port 9899; open it another way"
    ]


def test_a_service_over_the_rule_limit_keeps_its_other_problems() -> None:
    """51 Services, each opening a port of its own (no two neighbours): over the limit of 50
    rules. The first also has two SCTP ports: it is told all three problems."""
    services = [svc(f"s{i:02}", f"203.0.113.{100 + i}", tcp=[1000 + 2 * i]) for i in range(51)]
    sctp = (ServicePort(9899, Protocol.SCTP), ServicePort(9900, Protocol.SCTP))
    services[0] = replace(services[0], ports=(*services[0].ports, *sctp))
    the_plan = plan(
        observe(
            *services,
            nodes=nodes("n1"),
            ips=[rip(s.annotation(contract.ADDRESS) or "") for s in services],
        )
    )
    first = next(r for r in the_plan.reports if r.service == services[0].ref)
    assert [p.reason for p in first.problems] == [
        Reason.UNSUPPORTED_PROTOCOL,
        Reason.UNSUPPORTED_PROTOCOL,
        Reason.FIREWALL_LIMIT,
    ]


def test_rules_alike_but_for_their_targets_come_out_in_one_order() -> None:
    """Outbound rules often differ only in their tags: the canonical form still orders them
    fully, so the same rules read twice, in any order, compare equal."""
    tagged = [
        FirewallRule("tcp", "0", Sources(tags=(f"team-{i}",))) for i in (5, 2, 7, 0, 3, 6, 1, 4)
    ]
    assert [r.sources.tags for r in normal_rules(tagged)] == [(f"team-{i}",) for i in range(8)]
