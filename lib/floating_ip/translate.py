"""Raw API objects (JSON dicts) to the core's plain data, and the core's firewall back to JSON.

Pure functions: no I/O. Kubernetes' and DigitalOcean's quirks (missing fields, nil
conditions, ``providerID`` formats) are absorbed here so the core never sees a raw dict.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from floating_ip.core import own_writes
from floating_ip.core.model import (
    LOAD_BALANCER,
    ConditionStatus,
    Endpoint,
    Firewall,
    FirewallBody,
    FirewallRule,
    Ingress,
    IPMode,
    Node,
    ObjectRef,
    Pod,
    Protocol,
    ReservedIP,
    Service,
    ServicePort,
    Sources,
    Suspicion,
    Taint,
    annotations_from,
)
from floating_ip_common import contract

JSON = dict[str, Any]


def is_managed(service: JSON) -> bool:
    """Opted in: the address annotation, or a LoadBalancer of this project's class (which
    asks for ``auto`` without it)."""
    if contract.ADDRESS in (service.get("metadata", {}).get("annotations") or {}):
        return True
    spec = service.get("spec") or {}
    return (
        spec.get("type") == LOAD_BALANCER
        and spec.get("loadBalancerClass") == contract.LOAD_BALANCER_CLASS
    )


def has_our_traces(service: JSON) -> bool:
    """Carries an annotation the function writes (so possibly our externalIPs entries)."""
    return own_writes.has_traces(service.get("metadata", {}).get("annotations") or {})


def has_our_finalizer(service: JSON) -> bool:
    return contract.FINALIZER in (service.get("metadata", {}).get("finalizers") or ())


def is_ours(service: JSON) -> bool:
    """Opted in, or still carrying what the function wrote (to be cleaned) or its finalizer
    (to be removed once cleaned up)."""
    return is_managed(service) or has_our_traces(service) or has_our_finalizer(service)


def services(raw_services: Iterable[JSON], raw_slices: Iterable[JSON]) -> tuple[Service, ...]:
    endpoints: dict[tuple[str, str], list[Endpoint]] = defaultdict(list)
    for raw in raw_slices:
        meta = raw.get("metadata", {})
        owner = (meta.get("labels") or {}).get(contract.SERVICE_NAME_LABEL)
        if owner:
            key = (meta.get("namespace", ""), owner)
            endpoints[key].extend(endpoint(e) for e in raw.get("endpoints") or [])
    return tuple(
        service(raw, endpoints[(raw["metadata"]["namespace"], raw["metadata"]["name"])])
        for raw in raw_services
    )


def service(raw: JSON, endpoints: Iterable[Endpoint]) -> Service:
    meta, spec = raw.get("metadata", {}), raw.get("spec", {})
    return Service(
        namespace=meta.get("namespace", ""),
        name=meta.get("name", ""),
        uid=meta.get("uid", ""),
        annotations=annotations_from(meta.get("annotations")),
        ports=tuple(
            ServicePort(int(p["port"]), _protocol(p.get("protocol")))
            for p in spec.get("ports") or []
        ),
        external_ips=tuple(spec.get("externalIPs") or ()),
        type=spec.get("type") or "ClusterIP",
        load_balancer_class=spec.get("loadBalancerClass"),
        ingress=ingress((raw.get("status") or {}).get("loadBalancer") or {}),
        source_ranges=tuple(r.strip() for r in spec.get("loadBalancerSourceRanges") or ()),
        external_traffic_policy=spec.get("externalTrafficPolicy") or "Cluster",
        endpoints=tuple(endpoints),
        resource_version=meta.get("resourceVersion", ""),
        creation_timestamp=meta.get("creationTimestamp", ""),
        finalizers=tuple(meta.get("finalizers") or ()),
        deleting=bool(meta.get("deletionTimestamp")),
    )


def ingress(load_balancer: JSON) -> tuple[Ingress, ...]:
    """``status.loadBalancer``'s IP entries (hostname-only entries are never ours)."""
    return tuple(
        Ingress(entry["ip"], _ip_mode(entry.get("ipMode")))
        for entry in load_balancer.get("ingress") or []
        if entry.get("ip")
    )


def ingress_json(entries: Iterable[Ingress]) -> list[JSON]:
    """``status.loadBalancer.ingress`` as a status patch sends it."""
    return [
        {"ip": entry.ip, **({"ipMode": str(entry.ip_mode)} if entry.ip_mode else {})}
        for entry in entries
    ]


def endpoint(raw: JSON) -> Endpoint:
    conditions = raw.get("conditions") or {}
    ready = conditions.get("ready") is not False  # nil means ready, says the API
    target = raw.get("targetRef") or {}
    pod = (
        ObjectRef(target.get("namespace", ""), target["name"])
        if target.get("kind") == "Pod" and target.get("name")
        else None
    )
    return Endpoint(
        node_name=raw.get("nodeName"),
        ready=ready,
        serving=conditions.get("serving", ready) is not False,
        terminating=conditions.get("terminating") is True,
        pod=pod,
        address=(raw.get("addresses") or [""])[0],
    )


def pod(raw: JSON) -> Pod:
    meta = raw.get("metadata", {})
    return Pod(
        namespace=meta.get("namespace", ""),
        name=meta.get("name", ""),
        node_name=(raw.get("spec") or {}).get("nodeName"),
        anchor_ipv4=(meta.get("annotations") or {}).get(contract.ANCHOR_IPV4),
    )


def node(raw: JSON) -> Node:
    meta, spec, status = raw.get("metadata", {}), raw.get("spec", {}), raw.get("status", {})
    ready = next(
        (c.get("status") for c in status.get("conditions") or [] if c.get("type") == "Ready"),
        "Unknown",
    )
    return Node(
        name=meta.get("name", ""),
        droplet_id=droplet_id(spec.get("providerID", "")),
        ready=_condition(ready),
        unschedulable=bool(spec.get("unschedulable")),
        deleting=bool(meta.get("deletionTimestamp")),
        taints=tuple(
            Taint(t.get("key", ""), t.get("effect", ""), t.get("value") or "")
            for t in spec.get("taints") or []
        ),
        region=(meta.get("labels") or {}).get(contract.REGION_LABEL),
        anchor_ipv4=(meta.get("annotations") or {}).get(contract.ANCHOR_IPV4),
        labels=annotations_from(meta.get("labels")),
        kubelet_version=(status.get("nodeInfo") or {}).get("kubeletVersion"),
    )


def suspicions(data: dict[str, str]) -> dict[str, Suspicion]:
    """The forwarder's ``contract.SUSPICIONS_CONFIGMAP`` data: node name -> its suspicion.
    An entry that does not parse still suspects its node (``probe`` "unknown"): the
    forwarder wrote it, and a doubtful node should not receive an IP."""
    found: dict[str, Suspicion] = {}
    for node_name, text in data.items():
        try:
            entry = json.loads(text)
        except ValueError:
            entry = None
        if not isinstance(entry, dict):
            entry = {}
        found[node_name] = Suspicion(
            probe=str(entry.get("probe") or "unknown"),
            since=str(entry.get("since") or "an unknown time"),
            detail=str(entry.get("detail") or ""),
        )
    return found


def with_suspicions(nodes: Iterable[Node], suspected: dict[str, Suspicion]) -> tuple[Node, ...]:
    return tuple(
        replace(node, suspicion=suspected[node.name]) if node.name in suspected else node
        for node in nodes
    )


def droplet_id(provider_id: str) -> int | None:
    """``digitalocean://123`` to 123; anything else (not a DOKS node) to ``None``."""
    if not provider_id.startswith(contract.PROVIDER_ID_PREFIX):
        return None
    text = provider_id.removeprefix(contract.PROVIDER_ID_PREFIX)
    return int(text) if text.isdigit() else None


def reserved_ip(raw: JSON) -> ReservedIP:
    droplet = raw.get("droplet") or {}
    return ReservedIP(
        ip=raw["ip"],
        region=(raw.get("region") or {}).get("slug", ""),
        droplet_id=droplet.get("id"),
        locked=bool(raw.get("locked")),
    )


def firewall(raw: JSON) -> Firewall:
    return Firewall(
        id=raw["id"],
        name=raw.get("name", ""),
        inbound_rules=tuple(_rule(r, "sources") for r in raw.get("inbound_rules") or []),
        outbound_rules=tuple(_rule(r, "destinations") for r in raw.get("outbound_rules") or []),
        tags=tuple(raw.get("tags") or ()),
        droplet_ids=tuple(raw.get("droplet_ids") or ()),
    )


def firewall_body(body: FirewallBody) -> JSON:
    """The JSON a create or full-replace PUT sends."""
    return {
        "name": body.name,
        "inbound_rules": [_rule_json(r, "sources") for r in body.inbound_rules],
        "outbound_rules": [_rule_json(r, "destinations") for r in body.outbound_rules],
        "tags": list(body.tags),
        "droplet_ids": list(body.droplet_ids),
    }


def _rule(raw: JSON, side: str) -> FirewallRule:
    sources = raw.get(side) or {}
    return FirewallRule(
        protocol=raw.get("protocol", ""),
        ports=str(raw.get("ports", "")),
        sources=Sources(
            addresses=tuple(sources.get("addresses") or ()),
            droplet_ids=tuple(sources.get("droplet_ids") or ()),
            load_balancer_uids=tuple(sources.get("load_balancer_uids") or ()),
            kubernetes_ids=tuple(sources.get("kubernetes_ids") or ()),
            tags=tuple(sources.get("tags") or ()),
        ),
    )


def _rule_json(rule: FirewallRule, side: str) -> JSON:
    fields = {
        "addresses": list(rule.sources.addresses),
        "droplet_ids": list(rule.sources.droplet_ids),
        "load_balancer_uids": list(rule.sources.load_balancer_uids),
        "kubernetes_ids": list(rule.sources.kubernetes_ids),
        "tags": list(rule.sources.tags),
    }
    result: JSON = {"protocol": rule.protocol, side: {k: v for k, v in fields.items() if v}}
    if rule.protocol != "icmp":
        result["ports"] = rule.ports
    return result


def _condition(value: str | None) -> ConditionStatus:
    try:
        return ConditionStatus(value or "Unknown")
    except ValueError:
        return ConditionStatus.UNKNOWN


def _ip_mode(value: str | None) -> IPMode | None:
    try:
        return IPMode(value) if value else None
    except ValueError:
        return None


def _protocol(value: str | None) -> Protocol:
    try:
        return Protocol(value or "TCP")
    except ValueError:
        return Protocol.TCP
