"""Raw API objects to the core's plain data: the quirks of Kubernetes' and DigitalOcean's
JSON (missing fields, nil conditions, providerID forms) are absorbed here, and the firewall
goes back to the JSON the API accepts."""

from __future__ import annotations

from typing import Any

import pytest

from floating_ip import translate
from floating_ip.core.model import (
    ConditionStatus,
    Endpoint,
    FirewallBody,
    FirewallRule,
    Node,
    ObjectRef,
    Pod,
    Protocol,
    ReservedIP,
    ServicePort,
    Sources,
    Taint,
)
from floating_ip_common import contract

JSON = dict[str, Any]


def test_is_managed_means_the_address_annotation_is_present() -> None:
    assert translate.is_managed({"metadata": {"annotations": {contract.ADDRESS: ""}}})
    assert not translate.is_managed({"metadata": {"annotations": None}})
    assert not translate.is_managed({"metadata": {}})


def test_a_service_with_its_endpoints_from_slices_of_its_own_namespace_only() -> None:
    raw_service = {
        "metadata": {
            "namespace": "ingress",
            "name": "traefik",
            "uid": "u1",
            "resourceVersion": "9",
            "creationTimestamp": "2026-01-01T00:00:00Z",
            "annotations": {contract.ADDRESS: "203.0.113.10", "b": "2", "a": "1"},
        },
        "spec": {
            "ports": [
                {"port": 443},
                {"port": 443, "protocol": "UDP"},
                {"port": 9, "protocol": "SCTP"},
            ],
            "externalIPs": ["10.20.0.5"],
        },
    }

    def slice_of(namespace: str, owner: str | None, node: str) -> JSON:
        labels = {contract.SERVICE_NAME_LABEL: owner} if owner else {}
        return {
            "metadata": {"namespace": namespace, "name": f"s-{node}", "labels": labels},
            "endpoints": [{"nodeName": node}],
        }

    slices = [
        slice_of("ingress", "traefik", "a"),
        slice_of("other", "traefik", "b"),  # same name, other namespace
        slice_of("ingress", None, "c"),  # unowned
        slice_of("ingress", "traefik", "d"),
    ]
    [service] = translate.services([raw_service], slices)
    assert service.ref == ObjectRef("ingress", "traefik")
    assert service.annotations == (("a", "1"), ("b", "2"), (contract.ADDRESS, "203.0.113.10"))
    assert service.ports == (
        ServicePort(443, Protocol.TCP),
        ServicePort(443, Protocol.UDP),
        ServicePort(9, Protocol.SCTP),
    )
    assert service.external_ips == ("10.20.0.5",)
    assert [e.node_name for e in service.endpoints] == ["a", "d"]
    assert (service.uid, service.resource_version, service.creation_timestamp) == (
        "u1",
        "9",
        "2026-01-01T00:00:00Z",
    )


def test_a_bare_service_reads_as_empty() -> None:
    service = translate.service({"metadata": {"namespace": "n", "name": "s"}}, ())
    assert (service.annotations, service.ports, service.external_ips) == ((), (), ())


@pytest.mark.parametrize(
    ("conditions", "ready", "serving", "terminating"),
    [
        (None, True, True, False),  # nil conditions: ready, says the API
        ({}, True, True, False),
        ({"ready": False}, False, False, False),  # serving defaults to ready
        ({"ready": False, "serving": True, "terminating": True}, False, True, True),
        ({"ready": True, "serving": False}, True, False, False),
        ({"ready": None, "terminating": None}, True, True, False),
    ],
)
def test_endpoint_conditions(
    conditions: JSON | None, ready: bool, serving: bool, terminating: bool
) -> None:
    endpoint = translate.endpoint({"conditions": conditions, "addresses": ["10.244.0.2"]})
    assert (endpoint.ready, endpoint.serving, endpoint.terminating) == (ready, serving, terminating)
    assert endpoint.address == "10.244.0.2"


@pytest.mark.parametrize(
    ("target", "pod"),
    [
        ({"kind": "Pod", "name": "web-1", "namespace": "apps"}, ObjectRef("apps", "web-1")),
        ({"kind": "Pod"}, None),
        ({"kind": "Node", "name": "x"}, None),
        (None, None),
    ],
)
def test_endpoint_target(target: JSON | None, pod: ObjectRef | None) -> None:
    assert translate.endpoint({"targetRef": target, "nodeName": "n"}) == Endpoint(
        node_name="n", ready=True, serving=True, terminating=False, pod=pod, address=""
    )


def test_pod() -> None:
    raw = {
        "metadata": {
            "namespace": "apps",
            "name": "web-1",
            "annotations": {contract.ANCHOR_IPV4: "10.0.0.9"},
        },
        "spec": {"nodeName": "a"},
    }
    assert translate.pod(raw) == Pod("apps", "web-1", "a", "10.0.0.9")
    assert translate.pod({"metadata": {"namespace": "apps", "name": "p"}}) == Pod("apps", "p")


def test_a_full_node() -> None:
    raw = {
        "metadata": {
            "name": "a",
            "labels": {contract.REGION_LABEL: "nyc3"},
            "annotations": {contract.ANCHOR_IPV4: "10.0.0.5"},
            "deletionTimestamp": "2026-01-01T00:00:00Z",
        },
        "spec": {
            "providerID": "digitalocean://101",
            "unschedulable": True,
            "taints": [
                {"key": "k", "effect": "NoExecute"},
                {"key": "j", "effect": "NoSchedule", "value": "v"},
            ],
        },
        "status": {
            "conditions": [
                {"type": "MemoryPressure", "status": "True"},
                {"type": "Ready", "status": "False"},
            ]
        },
    }
    assert translate.node(raw) == Node(
        name="a",
        droplet_id=101,
        ready=ConditionStatus.FALSE,
        unschedulable=True,
        deleting=True,
        taints=(Taint("k", "NoExecute", ""), Taint("j", "NoSchedule", "v")),
        region="nyc3",
        anchor_ipv4="10.0.0.5",
        labels=((contract.REGION_LABEL, "nyc3"),),
    )


@pytest.mark.parametrize(
    ("conditions", "ready"),
    [
        (None, ConditionStatus.UNKNOWN),
        ([{"type": "MemoryPressure", "status": "False"}], ConditionStatus.UNKNOWN),
        ([{"type": "Ready", "status": "True"}], ConditionStatus.TRUE),
        ([{"type": "Ready", "status": "Maybe"}], ConditionStatus.UNKNOWN),
        ([{"type": "Ready"}], ConditionStatus.UNKNOWN),
    ],
)
def test_node_readiness(conditions: list[JSON] | None, ready: ConditionStatus) -> None:
    node = translate.node({"metadata": {"name": "a"}, "status": {"conditions": conditions}})
    assert node.ready is ready
    assert (node.droplet_id, node.unschedulable, node.deleting, node.taints) == (
        None,
        False,
        False,
        (),
    )


@pytest.mark.parametrize(
    ("provider_id", "droplet_id"),
    [
        ("digitalocean://101", 101),
        ("digitalocean://", None),
        ("digitalocean://12ab", None),
        ("aws:///eu-west-1a/i-0abc", None),
        ("", None),
    ],
)
def test_droplet_id_from_provider_id(provider_id: str, droplet_id: int | None) -> None:
    assert translate.droplet_id(provider_id) == droplet_id


def test_reserved_ip() -> None:
    raw = {"ip": "203.0.113.10", "region": {"slug": "nyc3"}, "droplet": {"id": 101}, "locked": True}
    assert translate.reserved_ip(raw) == ReservedIP("203.0.113.10", "nyc3", 101, True)
    assert translate.reserved_ip(
        {"ip": "203.0.113.11", "droplet": None, "region": None}
    ) == ReservedIP("203.0.113.11", "")


def test_a_firewall_goes_back_as_the_api_takes_it() -> None:
    raw = {
        "id": "fw-1",
        "name": "floating-ip-c0ffee",
        "inbound_rules": [
            {"protocol": "tcp", "ports": "443", "sources": {"addresses": ["0.0.0.0/0", "::/0"]}},
            {"protocol": "icmp", "sources": {"tags": ["k8s:c0ffee"]}},
        ],
        "outbound_rules": [
            {"protocol": "udp", "ports": "all", "destinations": {"addresses": ["0.0.0.0/0"]}}
        ],
        "tags": ["k8s:c0ffee"],
        "droplet_ids": [],
    }
    firewall = translate.firewall(raw)
    assert firewall.inbound_rules[0] == FirewallRule(
        "tcp", "443", Sources(addresses=("0.0.0.0/0", "::/0"))
    )
    assert firewall.inbound_rules[1] == FirewallRule("icmp", "", Sources(tags=("k8s:c0ffee",)))
    body = FirewallBody(
        firewall.name,
        firewall.inbound_rules,
        firewall.outbound_rules,
        firewall.tags,
        firewall.droplet_ids,
    )
    assert translate.firewall_body(body) == {
        "name": "floating-ip-c0ffee",
        "inbound_rules": [
            {"protocol": "tcp", "ports": "443", "sources": {"addresses": ["0.0.0.0/0", "::/0"]}},
            {"protocol": "icmp", "sources": {"tags": ["k8s:c0ffee"]}},  # icmp has no ports
        ],
        "outbound_rules": [
            {"protocol": "udp", "ports": "all", "destinations": {"addresses": ["0.0.0.0/0"]}}
        ],
        "tags": ["k8s:c0ffee"],
        "droplet_ids": [],
    }
