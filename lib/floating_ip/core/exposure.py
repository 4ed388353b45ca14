"""How a Service is reached on its reserved IP: the holder's anchor in ``spec.externalIPs``,
or ``status.loadBalancer.ingress`` of a LoadBalancer Service of our class.

DigitalOcean delivers a reserved IP's traffic to the holder's anchor IP, so the node's proxy
must accept packets addressed to the anchor. kube-proxy programs ``spec.externalIPs`` and
every ingress IP whose ``ipMode`` is unset or ``VIP`` alike; Cilium's kube-proxy replacement
does the same (sources cited in docs/loadbalancer-class.md). In LoadBalancer-class mode the
ingress therefore lists the reserved IP first (what ``kubectl get svc`` shows under
EXTERNAL-IP) and the anchor after it, both ``VIP``. The class is ours, so the whole status is
ours: nothing else is kept in it.

A LoadBalancer Service of another class (or none) belongs to another controller; on DOKS the
cloud controller would create a paid Load Balancer for it. Such a Service is not placed, and
neither its ``spec.externalIPs`` nor its status is touched (only our status annotations, so
the Warning that says why is not repeated).
"""

from __future__ import annotations

import ipaddress
from enum import StrEnum

from floating_ip.core.model import LOAD_BALANCER, Ingress, IPMode, Problem, Reason, Service
from floating_ip_common import contract

DO_LB_TYPE = "service.beta.kubernetes.io/do-loadbalancer-type"
DO_LB_NETWORK = "service.beta.kubernetes.io/do-loadbalancer-network"


class Exposure(StrEnum):
    EXTERNAL_IPS = "externalIPs"
    """Any type but LoadBalancer: the anchor in ``spec.externalIPs``."""
    LOAD_BALANCER_STATUS = "loadBalancerStatus"
    """``type: LoadBalancer`` of ``contract.LOAD_BALANCER_CLASS``: ``status.loadBalancer``."""
    FOREIGN_LOAD_BALANCER = "foreignLoadBalancer"
    """``type: LoadBalancer`` of another class or none: not ours to expose."""


def exposure_of(service: Service) -> Exposure:
    if service.type != LOAD_BALANCER:
        return Exposure.EXTERNAL_IPS
    if service.load_balancer_class == contract.LOAD_BALANCER_CLASS:
        return Exposure.LOAD_BALANCER_STATUS
    return Exposure.FOREIGN_LOAD_BALANCER


def foreign_class_problem(service: Service) -> Problem:
    found = service.load_balancer_class
    what = f"loadBalancerClass {found}" if found else "no loadBalancerClass"
    return Problem(
        Reason.WRONG_LOAD_BALANCER_CLASS,
        f"Service is type LoadBalancer with {what}: its reserved IP is not placed and nothing "
        f"of it is written (the cloud controller may create a paid Load Balancer for it); "
        f"use spec.loadBalancerClass {contract.LOAD_BALANCER_CLASS}, or another type",
    )


def desired_ingress(address: str, anchor: str | None) -> tuple[Ingress, ...]:
    """The reserved IP (EXTERNAL-IP, DNS), then the anchor DigitalOcean delivers to."""
    entries = [Ingress(address, IPMode.VIP)]
    if anchor is not None and anchor != address:
        entries.append(Ingress(anchor, IPMode.VIP))
    return tuple(entries)


def bridge_ingress(
    current: tuple[Ingress, ...], wanted: tuple[Ingress, ...]
) -> tuple[Ingress, ...]:
    """Everything listed now plus what is wanted (make-before-break)."""
    return (*current, *(entry for entry in wanted if entry not in current))


def without_ours(current: tuple[Ingress, ...], ours: frozenset[str]) -> tuple[Ingress, ...]:
    """The ingress of a Service that left our class: our entries go, others stay."""
    return tuple(entry for entry in current if entry.ip not in ours)


def enforced_on_nodes(ranges: tuple[str, ...], sources: tuple[str, ...]) -> bool:
    """``loadBalancerSourceRanges`` that lie within ``sources``: the node's proxy then drops
    what the firewall-sources would have, whatever the Cloud Firewalls allow."""
    try:
        allowed = [ipaddress.ip_network(source) for source in sources]
        narrowed = [ipaddress.ip_network(text, strict=False) for text in ranges]
    except ValueError:
        return False
    return bool(narrowed) and all(
        any(net.version == ok.version and net.subnet_of(ok) for ok in allowed)  # type: ignore[arg-type]
        for net in narrowed
    )


def widened_firewall_problem(service: Service, sources: tuple[str, ...]) -> Problem | None:
    """DigitalOcean's cloud controller opens every port of a LoadBalancer Service, whatever
    its class, to the world on the cluster's worker firewall when the Service would be a
    REGIONAL_NETWORK, EXTERNAL load balancer (its default). Firewalls add up, so narrower
    ``firewall-sources`` of ours cannot hold then unless the node enforces them: say so."""
    if set(sources) == set(contract.DEFAULT_FIREWALL_SOURCES) or not sources:
        return None
    if enforced_on_nodes(service.source_ranges, sources):
        return None
    lb_type = (service.annotation(DO_LB_TYPE) or "REGIONAL_NETWORK").strip().upper()
    network = (service.annotation(DO_LB_NETWORK) or "EXTERNAL").strip().upper()
    if lb_type != "REGIONAL_NETWORK" or network != "EXTERNAL":
        return None
    return Problem(
        Reason.FIREWALL_WIDENED,
        f"{contract.FIREWALL_SOURCES} may not hold: DigitalOcean's cloud controller can open "
        f"this LoadBalancer Service's ports to 0.0.0.0/0 on the cluster's worker firewall; "
        f"set spec.loadBalancerSourceRanges to the same CIDRs (the node then enforces them) "
        f'or annotate it {DO_LB_TYPE}: "REGIONAL" to keep that controller out',
    )


LOCAL = "Local"
"""The ``externalTrafficPolicy`` under which kube-proxy delivers the client's own address."""


def masquerade_problem(service: Service) -> Problem | None:
    """A Service we expose whose traffic kube-proxy masquerades: its pods see the holder's
    address instead of the client's, the first thing this project is for. Under
    ``externalTrafficPolicy: Cluster`` kube-proxy (iptables and nftables) marks traffic to
    an external IP or a load-balancer IP for masquerade; a ClusterIP Service cannot have
    another policy. Reported, never refused: the IP works all the same."""
    exposure = exposure_of(service)
    if exposure is Exposure.FOREIGN_LOAD_BALANCER or service.external_traffic_policy == LOCAL:
        return None
    if service.type == "ClusterIP":
        fix = (
            f"use type NodePort, or LoadBalancer with loadBalancerClass "
            f"{contract.LOAD_BALANCER_CLASS}, with externalTrafficPolicy: {LOCAL}"
        )
        why = "a ClusterIP Service cannot have externalTrafficPolicy: Local"
    else:
        fix = f"set externalTrafficPolicy: {LOCAL}"
        why = f"its externalTrafficPolicy is {service.external_traffic_policy}"
    return Problem(
        Reason.CLIENT_ADDRESS_MASQUERADED,
        f"the pods see the holder node's address, not the client's: kube-proxy masquerades "
        f"traffic to the reserved IP because {why}; {fix} to keep the client's address",
    )
