"""Short builders for observations, so each test table row reads like the situation it is.

Nodes are named ``n1``..``n9``: node ``nK`` is droplet ``100+K`` with anchor ``10.10.0.K``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from floating_ip.core.model import (
    Cluster,
    ConditionStatus,
    Endpoint,
    Firewall,
    Ingress,
    IPMode,
    Node,
    ObjectRef,
    Observation,
    Pod,
    Protocol,
    ReservedIP,
    Service,
    ServicePort,
    Suspicion,
    Taint,
    annotations_from,
)
from floating_ip_common import contract

CLUSTER = Cluster(cluster_id="c0ffee", region="ams3")
IP_A = "203.0.113.10"
IP_B = "203.0.113.11"
IP_C = "203.0.113.12"
DEAD = Suspicion("tcp", "2026-01-31T12:00:00Z", "1 endpoint refused or timed out 2 times in a row")
"""The forwarder's suspicion of a node that lost power."""
USER_IP = "198.51.100.7"
"""An externalIP the user wrote by hand: it must survive every plan."""


def droplet(name: str) -> int:
    return 100 + int(name.removeprefix("n"))


def anchor(name: str) -> str:
    return f"10.10.0.{int(name.removeprefix('n'))}"


def node(
    name: str,
    *,
    ready: ConditionStatus = ConditionStatus.TRUE,
    unschedulable: bool = False,
    deleting: bool = False,
    taints: Iterable[tuple[str, str]] = (),
    region: str | None = "ams3",
    with_droplet: bool = True,
    with_anchor: bool = True,
    anchor_text: str | None = None,
    suspicion: Suspicion | None = None,
) -> Node:
    return Node(
        name=name,
        droplet_id=droplet(name) if with_droplet else None,
        ready=ready,
        unschedulable=unschedulable,
        deleting=deleting,
        taints=tuple(Taint(key, effect) for key, effect in taints),
        region=region,
        anchor_ipv4=anchor_text
        if anchor_text is not None
        else (anchor(name) if with_anchor else None),
        suspicion=suspicion,
    )


def nodes(*names: str) -> tuple[Node, ...]:
    return tuple(node(name) for name in names)


def endpoint(
    service: str,
    on: str,
    *,
    ready: bool = True,
    terminating: bool = False,
    namespace: str = "default",
) -> Endpoint:
    return Endpoint(
        node_name=on,
        ready=ready,
        serving=ready or terminating,
        terminating=terminating,
        pod=ObjectRef(namespace, f"{service}-{on}"),
        address="10.244.0.1",
    )


def svc(
    name: str,
    ip: str | None = IP_A,
    *,
    on: Iterable[str] = ("n1",),
    tcp: Iterable[int] = (80,),
    udp: Iterable[int] = (),
    sctp: Iterable[int] = (),
    annotations: Mapping[str, str] | None = None,
    external_ips: Iterable[str] = (),
    endpoints: Iterable[Endpoint] | None = None,
    created: str = "2025-01-01T00:00:00Z",
    namespace: str = "default",
    service_type: str = "NodePort",
    lb_class: str | None = None,
    ingress: Iterable[Ingress] = (),
    source_ranges: Iterable[str] = (),
    traffic_policy: str = "Local",
) -> Service:
    """A Service opted in to ``ip`` (``None``: not opted in) with ready pods on ``on``; by
    default as the docs advise for externalIPs mode (``NodePort``, ``Local``: the client's
    address kept)."""
    given = dict(annotations or {})
    if ip is not None:
        given.setdefault(contract.ADDRESS, ip)
    ports = (
        *(ServicePort(port, Protocol.TCP) for port in tcp),
        *(ServicePort(port, Protocol.UDP) for port in udp),
        *(ServicePort(port, Protocol.SCTP) for port in sctp),
    )
    return Service(
        namespace=namespace,
        name=name,
        uid=f"uid-{name}",
        annotations=annotations_from(given),
        ports=ports,
        external_ips=tuple(external_ips),
        type=service_type,
        load_balancer_class=lb_class,
        ingress=tuple(ingress),
        source_ranges=tuple(source_ranges),
        external_traffic_policy=traffic_policy,
        endpoints=tuple(endpoints)
        if endpoints is not None
        else tuple(endpoint(name, n, namespace=namespace) for n in on),
        resource_version="1",
        creation_timestamp=created,
    )


def vip(*ips: str) -> tuple[Ingress, ...]:
    """Ingress entries in ``VIP`` mode, as the function writes them."""
    return tuple(Ingress(ip, IPMode.VIP) for ip in ips)


def lb(
    name: str,
    ip: str | None = IP_A,
    *,
    lb_class: str | None = contract.LOAD_BALANCER_CLASS,
    **kwargs: Any,
) -> Service:
    """A ``type: LoadBalancer`` Service, of our class unless told (LoadBalancer-class mode)."""
    return svc(name, ip, service_type="LoadBalancer", lb_class=lb_class, **kwargs)


def rip(
    ip: str = IP_A, on: str | None = None, *, region: str = "ams3", locked: bool = False
) -> ReservedIP:
    """A reserved IP, assigned to node ``on``'s droplet (or unassigned)."""
    return ReservedIP(ip, region, droplet(on) if on else None, locked)


def pod(service: str, on: str, anchor_text: str | None, namespace: str = "default") -> Pod:
    return Pod(namespace, f"{service}-{on}", on, anchor_text)


def observe(
    *services: Service,
    nodes: Iterable[Node] = (),
    ips: Iterable[ReservedIP] = (),
    pods: Iterable[Pod] = (),
    firewall: Firewall | None = None,
) -> Observation:
    return Observation(
        cluster=CLUSTER,
        services=services,
        nodes=tuple(nodes),
        pods=tuple(pods),
        reserved_ips=tuple(ips),
        firewall=firewall,
    )
