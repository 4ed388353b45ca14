"""Whether a node may hold a reserved IP for the Services that share it, and why not.

A node is fit when all of these hold:

- the event forwarder does not suspect it is dead (``Unreachable``: its endpoints stopped
  answering probes, or its kubelet stopped renewing its Lease; seconds before Kubernetes'
  ``NotReady``);
- its ``Ready`` condition is ``True`` (``False`` and ``Unknown`` both disqualify at once: the
  IP moves without waiting the five minutes Kubernetes takes to evict pods);
- it is not cordoned and not being deleted;
- it carries none of the well-known "this node is going away or broken" taints
  (``GOING_AWAY_TAINTS``) with effect ``NoSchedule`` or ``NoExecute``. Other taints are the
  user's own (a DOKS node pool dedicated to ingress, say): the Service's ready endpoint on the
  node already proves the user's pods tolerate them, so they do not disqualify the node;
- it runs a ready, non-terminating endpoint of EVERY Service sharing the IP, and matches the
  node selector (``contract.NODE_SELECTOR``) of every one of them that names one;
- it has a droplet id, sits in the IP's region, and its anchor IP is known (from an endpoint
  Pod's annotation first, as that was read on the droplet itself, else the Node's).
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable, Mapping
from typing import Final

from floating_ip.core.model import (
    ConditionStatus,
    Node,
    NodeVerdict,
    ObjectRef,
    Pod,
    Service,
    Unfit,
)
from floating_ip.core.node_selector import node_selector_of
from floating_ip_common import contract

GOING_AWAY_TAINTS: Final = frozenset(
    {
        "node.kubernetes.io/not-ready",
        "node.kubernetes.io/unreachable",
        "node.kubernetes.io/unschedulable",
        "node.kubernetes.io/out-of-service",
        "node.kubernetes.io/network-unavailable",
        "node.cloudprovider.kubernetes.io/uninitialized",
        "node.cloudprovider.kubernetes.io/shutdown",
        "ToBeDeletedByClusterAutoscaler",
    }
)
"""Taint keys that mean the node is unhealthy, draining or about to be removed."""

BLOCKING_EFFECTS: Final = frozenset({"NoSchedule", "NoExecute"})


def node_reasons(node: Node, ip_region: str, cluster_region: str) -> tuple[Unfit, ...]:
    """The reasons that concern the node alone, whatever Service asks."""
    reasons: list[Unfit] = []
    if node.suspicion is not None:
        reasons.append(Unfit.UNREACHABLE)
    if node.ready != ConditionStatus.TRUE:
        reasons.append(Unfit.NOT_READY)
    if node.unschedulable:
        reasons.append(Unfit.CORDONED)
    if node.deleting:
        reasons.append(Unfit.DELETING)
    if any(t.key in GOING_AWAY_TAINTS and t.effect in BLOCKING_EFFECTS for t in node.taints):
        reasons.append(Unfit.TAINTED)
    if node.droplet_id is None:
        reasons.append(Unfit.NO_DROPLET)
    if (node.region or cluster_region) != ip_region:
        reasons.append(Unfit.WRONG_REGION)
    return tuple(reasons)


def ready_pods_on(service: Service, node_name: str) -> tuple[ObjectRef | None, ...]:
    """The targets of the Service's ready, non-terminating endpoints on the node."""
    return tuple(
        endpoint.pod
        for endpoint in service.endpoints
        if endpoint.node_name == node_name and endpoint.ready and not endpoint.terminating
    )


@functools.lru_cache(maxsize=8192)
def valid_ipv4(text: str | None) -> str | None:
    """Canonical IPv4 text, or ``None`` for anything else (a garbled annotation is unknown).

    Cached: every node is checked once per Service and IP, with the same few anchors."""
    if text is None:
        return None
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    return str(address) if address.version == 4 else None


def anchor_of(node: Node, services: Iterable[Service], pods: Mapping[ObjectRef, Pod]) -> str | None:
    """The node's anchor IP: from a ready endpoint Pod on it (first by name), else the Node."""
    refs = sorted({ref for s in services for ref in ready_pods_on(s, node.name) if ref})
    for ref in refs:
        pod = pods.get(ref)
        anchor = valid_ipv4(pod.anchor_ipv4) if pod else None
        if anchor:
            return anchor
    return valid_ipv4(node.anchor_ipv4)


def selected(node: Node, services: Iterable[Service]) -> bool:
    """Whether every Service's node selector (none: every node) matches the node's labels."""
    return all(
        node_selector_of(service.annotation(contract.NODE_SELECTOR)).matches(node.labels)
        for service in services
    )


def verdict(
    node: Node,
    services: tuple[Service, ...],
    ip_region: str,
    cluster_region: str,
    pods: Mapping[ObjectRef, Pod],
) -> NodeVerdict:
    """Every reason the node may not hold an IP shared by ``services`` (empty: fit)."""
    reasons = list(node_reasons(node, ip_region, cluster_region))
    if not selected(node, services):
        reasons.append(Unfit.OUTSIDE_NODE_SELECTOR)
    if not all(ready_pods_on(service, node.name) for service in services):
        reasons.append(Unfit.NO_READY_ENDPOINT)
    if anchor_of(node, services, pods) is None:
        reasons.append(Unfit.NO_ANCHOR_IP)
    return NodeVerdict(node.name, tuple(reasons), node.suspicion)
