"""Named situations, shared by the plan tables and the idempotency test.

Rendezvous order over n1..n3 (pinned in test_plan): IP_A prefers n3, n2, n1; IP_B prefers
n2, n3, n1; IP_C prefers n1, n2, n3.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from floating_ip.core.model import ConditionStatus, Observation, Reason
from floating_ip_common import contract
from tests.core.builders import (
    DEAD,
    IP_A,
    IP_B,
    IP_C,
    USER_IP,
    anchor,
    node,
    nodes,
    observe,
    pod,
    rip,
    svc,
)

ALL = ("n1", "n2", "n3")
NOT_READY = ConditionStatus.FALSE


@dataclass(frozen=True)
class Scenario:
    id: str
    observation: Observation
    assigned: dict[str, str] = field(default_factory=dict)
    """IP → node name the plan assigns it to."""
    warnings: set[tuple[str, Reason]] = field(default_factory=set)
    """(Service name, reason) of every Warning Event."""


SCENARIOS = [
    Scenario(
        "unreachable-holder-loses-ip-before-kubernetes-notices",
        observe(
            svc("web", on=ALL),
            nodes=[node("n1"), node("n2"), node("n3", suspicion=DEAD)],
            ips=[rip(IP_A, "n3")],
        ),
        {IP_A: "n2"},
        warnings={("web", Reason.UNREACHABLE)},
    ),
    Scenario(
        "unreachable-holder-keeps-ip-when-no-other-node-is-fit",
        observe(
            svc("web", on=["n3"]),
            nodes=[node("n1"), node("n2"), node("n3", suspicion=DEAD)],
            ips=[rip(IP_A, "n3")],
        ),
        warnings={("web", Reason.UNREACHABLE)},
    ),
    Scenario(
        "unreachable-node-is-never-chosen",
        observe(
            svc("web", on=ALL),
            nodes=[node("n1"), node("n2"), node("n3", suspicion=DEAD)],
            ips=[rip(IP_A)],
        ),
        {IP_A: "n2"},
    ),
    Scenario(
        "fresh-ip-goes-to-rendezvous-winner",
        observe(svc("web", on=ALL), nodes=nodes(*ALL), ips=[rip(IP_A)]),
        {IP_A: "n3"},
    ),
    Scenario(
        "fit-holder-keeps-ip-though-rendezvous-prefers-another",
        observe(svc("web", on=ALL), nodes=nodes(*ALL), ips=[rip(IP_A, "n1")]),
    ),
    Scenario(
        "not-ready-holder-loses-ip-at-once",
        observe(
            svc("web", on=ALL),
            nodes=[node("n1"), node("n2"), node("n3", ready=NOT_READY)],
            ips=[rip(IP_A, "n3")],
        ),
        {IP_A: "n2"},
    ),
    Scenario(
        "cordoned-holder-loses-ip",
        observe(
            svc("web", on=ALL),
            nodes=[node("n1"), node("n2", unschedulable=True), node("n3")],
            ips=[rip(IP_A, "n2")],
        ),
        {IP_A: "n3"},
    ),
    Scenario(
        "draining-holder-loses-ip",
        observe(
            svc("web", on=ALL),
            nodes=[
                node("n1", taints=[("ToBeDeletedByClusterAutoscaler", "NoSchedule")]),
                node("n2"),
            ],
            ips=[rip(IP_A, "n1")],
        ),
        {IP_A: "n2"},
    ),
    Scenario(
        "ip-follows-the-pod",
        observe(svc("web", on=["n1"]), nodes=nodes(*ALL), ips=[rip(IP_A, "n3")]),
        {IP_A: "n1"},
    ),
    Scenario(
        "ip-on-a-droplet-outside-the-cluster-is-taken-back",
        observe(
            svc("web", on=ALL),
            nodes=nodes(*ALL),
            ips=[rip(IP_A, "n9")],
        ),
        {IP_A: "n3"},
    ),
    Scenario(
        "no-fit-node-ip-stays",
        observe(
            svc("web", on=["n1"], external_ips=[USER_IP, anchor("n1")]),
            nodes=[node("n1", ready=NOT_READY), node("n2")],
            ips=[rip(IP_A, "n1")],
        ),
        warnings={("web", Reason.NO_FIT_NODE)},
    ),
    Scenario(
        "two-ips-share-nodes-both-placed",
        observe(
            svc("web", IP_A, on=["n1", "n2"]),
            svc("dns", IP_B, on=["n2"]),
            nodes=nodes("n1", "n2"),
            ips=[rip(IP_A), rip(IP_B)],
        ),
        {IP_A: "n1", IP_B: "n2"},
    ),
    Scenario(
        "three-ips-two-droplets",
        observe(
            svc("a", IP_A, on=["n1", "n2"]),
            svc("b", IP_B, on=["n1", "n2"]),
            svc("c", IP_C, on=["n1", "n2"]),
            nodes=nodes("n1", "n2"),
            ips=[rip(IP_A), rip(IP_B), rip(IP_C)],
        ),
        {IP_A: "n2", IP_B: "n1"},
        {("c", Reason.NO_FIT_NODE)},
    ),
    Scenario(
        "droplet-holding-another-reserved-ip-is-skipped",
        observe(
            svc("web", on=ALL),
            nodes=nodes(*ALL),
            ips=[rip(IP_A), rip("192.0.2.99", "n3")],
        ),
        {IP_A: "n2"},
    ),
    Scenario(
        "shared-ip-needs-a-node-fit-for-both",
        observe(
            svc("web", on=ALL, tcp=[80]),
            svc("api", on=["n1"], tcp=[8080]),
            nodes=nodes(*ALL),
            ips=[rip(IP_A)],
        ),
        {IP_A: "n1"},
    ),
    Scenario(
        "port-conflict-younger-service-loses",
        observe(
            svc("old", on=ALL, created="2024-01-01T00:00:00Z"),
            svc("new", on=ALL, external_ips=[anchor("n2")]),
            nodes=nodes(*ALL),
            ips=[rip(IP_A)],
        ),
        {IP_A: "n3"},
        {("new", Reason.IP_CONFLICT)},
    ),
    Scenario(
        "ip-not-in-account",
        observe(svc("web", on=ALL), nodes=nodes(*ALL)),
        warnings={("web", Reason.IP_NOT_IN_ACCOUNT)},
    ),
    Scenario(
        "ip-in-another-region",
        observe(svc("web", on=ALL), nodes=nodes(*ALL), ips=[rip(IP_A, region="nyc1")]),
        warnings={("web", Reason.WRONG_REGION)},
    ),
    Scenario(
        "invalid-address",
        observe(
            svc("web", "203.0.113", on=ALL, external_ips=[USER_IP, anchor("n1")]),
            nodes=nodes(*ALL),
        ),
        warnings={("web", Reason.INVALID_ANNOTATION)},
    ),
    Scenario(
        "invalid-firewall-sources-ip-still-placed",
        observe(
            svc("web", on=ALL, annotations={contract.FIREWALL_SOURCES: "10.0.0.1/8"}),
            nodes=nodes(*ALL),
            ips=[rip(IP_A)],
        ),
        {IP_A: "n3"},
        {("web", Reason.INVALID_ANNOTATION)},
    ),
    Scenario(
        "missing-anchor-ip",
        observe(
            svc("web", on=["n1"]),
            nodes=[node("n1", with_anchor=False), node("n2")],
            ips=[rip(IP_A)],
        ),
        warnings={("web", Reason.MISSING_ANCHOR_IP)},
    ),
    Scenario(
        "anchor-from-pods-when-nodes-have-none",
        observe(
            svc("web", on=["n1", "n2"]),
            nodes=[node("n1", with_anchor=False), node("n2", with_anchor=False)],
            pods=[pod("web", "n1", "10.20.0.1"), pod("web", "n2", "10.20.0.2")],
            ips=[rip(IP_A)],
        ),
        {IP_A: "n2"},
    ),
    Scenario(
        "locked-ip-waits",
        observe(
            svc("web", on=ALL),
            nodes=[node("n1"), node("n2"), node("n3", ready=NOT_READY)],
            ips=[rip(IP_A, "n3", locked=True)],
        ),
    ),
    Scenario(
        "sctp-port-reported",
        observe(svc("web", on=ALL, sctp=[9899]), nodes=nodes(*ALL), ips=[rip(IP_A, "n3")]),
        warnings={("web", Reason.UNSUPPORTED_PROTOCOL)},
    ),
    Scenario(
        "firewall-over-the-rule-limit",
        observe(
            svc("web", on=ALL, tcp=range(1000, 1102, 2)),
            nodes=nodes(*ALL),
            ips=[rip(IP_A, "n3")],
        ),
        warnings={("web", Reason.FIREWALL_LIMIT)},
    ),
    Scenario(
        "service-without-opt-in-is-ignored",
        observe(
            svc(
                "plain",
                None,
                on=ALL,
                annotations={contract.ANCHOR_IP: anchor("n1"), contract.STATUS: "stale"},
                external_ips=[anchor("n1")],
            ),
            nodes=nodes(*ALL),
            ips=[rip(IP_A, "n1")],
        ),
    ),
]
