"""Small projections of the watched objects: only the inputs of the function's placement.

Each watched object is reduced, as soon as it is parsed, to a frozen value holding exactly
what the reconcile function reads. Two projections of the same object are equal exactly
when nothing that matters changed, so "did this update matter?" is ``old != new``: a kubelet
heartbeat, a status annotation the function wrote, a new ``spec.externalIPs`` or
``status.loadBalancer`` (the function's own writes, echoed back) leave the projection
unchanged. Keeping only these values is also what keeps memory small.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, NamedTuple

from floating_ip_common import contract

JSON = Mapping[str, Any]
"""A Kubernetes object as decoded from the API's JSON."""

ServiceKey = tuple[str, str]
"""``(namespace, name)`` of a Service."""
ObjectKey = tuple[str, str]
"""``(namespace, name)`` of a namespaced object (EndpointSlice, Pod)."""


class Kind(Enum):
    SERVICE = "service"
    ENDPOINT_SLICE = "endpointslice"
    NODE = "node"
    POD = "pod"
    NODE_LEASE = "nodelease"


@dataclass(frozen=True, slots=True)
class ServiceInputs:
    """What an opted-in Service contributes to placement."""

    address: str
    firewall: str | None
    firewall_sources: str | None
    ports: tuple[tuple[int, str], ...]
    """``(port, protocol)`` pairs, sorted."""
    external_traffic_policy: str
    service_type: str
    """``spec.type``: LoadBalancer or not decides how the Service is exposed."""
    load_balancer_class: str | None
    """``spec.loadBalancerClass``: ours, another or none (a Warning)."""
    source_ranges: tuple[str, ...]
    """``spec.loadBalancerSourceRanges``, sorted: they decide a firewall Warning."""
    node_selector: str | None = None
    """Which nodes may hold the IP."""
    deleting: bool = False
    """``metadata.deletionTimestamp`` is set: the function's finalizer waits for its cleanup."""


@dataclass(frozen=True, slots=True)
class ServiceView:
    key: ServiceKey
    inputs: ServiceInputs | None
    """``None`` when the Service has not opted in (no ``contract.ADDRESS``)."""
    holder: str | None
    """``contract.HOLDER_NODE``: written by the function, so it only feeds the node index and
    is deliberately left out of ``inputs``."""


class EndpointView(NamedTuple):
    node: str | None
    pod: str | None
    """``targetRef.name`` when the target is a Pod (same namespace as the slice)."""
    ready: bool
    serving: bool
    terminating: bool


@dataclass(frozen=True, slots=True)
class SliceView:
    key: ObjectKey
    service: str | None
    """The ``kubernetes.io/service-name`` label."""
    endpoints: tuple[EndpointView, ...]
    """Sorted, so a controller reordering endpoints changes nothing."""
    probed: tuple[tuple[str, str], ...] = field(default=(), compare=False)
    """``(node, address)`` of each ready, non-terminating endpoint: where the leader's probes
    connect. Not compared: a new pod IP alone does not change placement."""
    tcp_ports: tuple[int, ...] = field(default=(), compare=False)
    """The slice's TCP target ports, sorted (not compared, as ``probed``)."""


@dataclass(frozen=True, slots=True)
class NodeView:
    key: str
    ready: str | None
    """The Ready condition's status (never its heartbeat or transition times)."""
    unschedulable: bool
    deleting: bool
    taints: tuple[tuple[str, str, str], ...]
    """``(key, effect, value)``, sorted."""
    provider_id: str | None
    region: str | None
    anchor: str | None
    labels: tuple[tuple[str, str], ...] = ()
    """Every label, sorted: a Service's node selector may name any of them."""
    kubelet_version: str | None = None
    """Which nodes an upgrade keeps: an IP that moves prefers the newest."""
    uid: str | None = field(default=None, compare=False)
    """For the Events about the node to name it exactly; not a placement input."""


@dataclass(frozen=True, slots=True)
class PodView:
    """A Pod as the forwarder watches it: metadata only, so only its anchor annotation.

    Its ``spec.nodeName`` is not needed: a Pod is bound once, before it can back a ready
    endpoint, and the EndpointSlice carries the node of every endpoint.
    """

    key: ObjectKey
    anchor: str | None


@dataclass(frozen=True, slots=True)
class NodeLeaseView:
    """A kubelet's Lease in ``kube-node-lease``: only whether it was renewed matters."""

    key: str
    """The Lease's name: the node's name."""
    renew_time: str | None


Indexed = ServiceView | SliceView | NodeView | PodView
"""What ``ClusterIndex`` keeps."""
View = Indexed | NodeLeaseView


def _meta(obj: JSON) -> JSON:
    meta = obj.get("metadata")
    return meta if isinstance(meta, Mapping) else {}


def _strings(value: object) -> Mapping[str, str]:
    return value if isinstance(value, Mapping) else {}


def _mapping(value: object) -> JSON:
    return value if isinstance(value, Mapping) else {}


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _name(obj: JSON) -> str:
    return sys.intern(str(_meta(obj).get("name", "")))


def _namespaced_key(obj: JSON) -> ObjectKey:
    meta = _meta(obj)
    return (sys.intern(str(meta.get("namespace", ""))), str(meta.get("name", "")))


def service(obj: JSON) -> ServiceView:
    annotations = _strings(_meta(obj).get("annotations"))
    spec = obj.get("spec")
    spec = spec if isinstance(spec, Mapping) else {}
    address = annotations.get(contract.ADDRESS)
    if address is None and (
        spec.get("type") == "LoadBalancer"
        and spec.get("loadBalancerClass") == contract.LOAD_BALANCER_CLASS
    ):
        address = contract.AUTO  # a LoadBalancer of our class asks for one unasked
    inputs = None
    if address is not None:
        ports = sorted(
            (int(p.get("port", 0)), str(p.get("protocol") or "TCP"))
            for p in spec.get("ports") or ()
            if isinstance(p, Mapping)
        )
        inputs = ServiceInputs(
            address=address,
            firewall=annotations.get(contract.FIREWALL),
            firewall_sources=annotations.get(contract.FIREWALL_SOURCES),
            ports=tuple(ports),
            # The apiserver fills in "Cluster" once a Service has externalIPs (the function's
            # own write): absent and "Cluster" are the same policy.
            external_traffic_policy=_text(spec.get("externalTrafficPolicy")) or "Cluster",
            service_type=_text(spec.get("type")) or "ClusterIP",
            load_balancer_class=_text(spec.get("loadBalancerClass")),
            source_ranges=tuple(sorted(str(r) for r in spec.get("loadBalancerSourceRanges") or ())),
            node_selector=annotations.get(contract.NODE_SELECTOR),
            deleting=_meta(obj).get("deletionTimestamp") is not None,
        )
    holder = annotations.get(contract.HOLDER_NODE)
    return ServiceView(_namespaced_key(obj), inputs, sys.intern(holder) if holder else None)


def _endpoint(raw: JSON) -> EndpointView:
    conditions = _mapping(raw.get("conditions"))
    # Kubernetes: a missing ready condition means ready; serving defaults to ready.
    ready = conditions.get("ready") is not False
    serving = conditions.get("serving", ready) is not False
    terminating = conditions.get("terminating") is True
    target = _mapping(raw.get("targetRef"))
    pod = _text(target.get("name")) if target.get("kind") == "Pod" else None
    node = _text(raw.get("nodeName"))
    return EndpointView(sys.intern(node) if node else None, pod, ready, serving, terminating)


def _probed(raw: JSON) -> tuple[str, str] | None:
    """``(node, address)`` of a ready, non-terminating endpoint, else ``None``."""
    conditions = _mapping(raw.get("conditions"))
    node = _text(raw.get("nodeName"))
    addresses = raw.get("addresses")
    address = _text(addresses[0]) if isinstance(addresses, list) and addresses else None
    if conditions.get("ready") is False or conditions.get("terminating") is True:
        return None
    return (sys.intern(node), address) if node and address else None


def endpoint_slice(obj: JSON) -> SliceView:
    labels = _strings(_meta(obj).get("labels"))
    owner = labels.get(contract.SERVICE_NAME_LABEL)
    endpoints = sorted(
        (_endpoint(e) for e in obj.get("endpoints") or () if isinstance(e, Mapping)),
        key=lambda e: (e.node or "", e.pod or "", e.ready, e.serving, e.terminating),
    )
    probed = sorted(
        {p for e in obj.get("endpoints") or () if isinstance(e, Mapping) and (p := _probed(e))}
    )
    tcp_ports = sorted(
        {
            p["port"]
            for p in obj.get("ports") or ()
            if isinstance(p, Mapping)
            and isinstance(p.get("port"), int)
            and (p.get("protocol") or "TCP") == "TCP"
        }
    )
    return SliceView(_namespaced_key(obj), owner, tuple(endpoints), tuple(probed), tuple(tcp_ports))


def node(obj: JSON) -> NodeView:
    meta = _meta(obj)
    spec = obj.get("spec")
    spec = spec if isinstance(spec, Mapping) else {}
    status = obj.get("status")
    status = status if isinstance(status, Mapping) else {}
    ready = next(
        (
            _text(c.get("status"))
            for c in status.get("conditions") or ()
            if isinstance(c, Mapping) and c.get("type") == "Ready"
        ),
        None,
    )
    taints = sorted(
        (str(t.get("key", "")), str(t.get("effect", "")), str(t.get("value") or ""))
        for t in spec.get("taints") or ()
        if isinstance(t, Mapping)
    )
    return NodeView(
        key=_name(obj),
        ready=ready,
        unschedulable=spec.get("unschedulable") is True,
        deleting=meta.get("deletionTimestamp") is not None,
        taints=tuple(taints),
        provider_id=_text(spec.get("providerID")),
        region=_strings(meta.get("labels")).get(contract.REGION_LABEL),
        anchor=_strings(meta.get("annotations")).get(contract.ANCHOR_IPV4),
        labels=tuple(
            sorted((sys.intern(str(k)), str(v)) for k, v in _strings(meta.get("labels")).items())
        ),
        kubelet_version=_text(_mapping(status.get("nodeInfo")).get("kubeletVersion")),
        uid=_text(meta.get("uid")),
    )


def pod(obj: JSON) -> PodView:
    anchor = _strings(_meta(obj).get("annotations")).get(contract.ANCHOR_IPV4)
    return PodView(_namespaced_key(obj), anchor)


def node_lease(obj: JSON) -> NodeLeaseView:
    spec = _mapping(obj.get("spec"))
    return NodeLeaseView(_name(obj), _text(spec.get("renewTime")))
