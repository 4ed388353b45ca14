"""The Service patches that bring the Service's exposure and status annotations in line.

A Service is exposed either by the holder's anchor in ``spec.externalIPs`` or, in
LoadBalancer-class mode, by ``status.loadBalancer.ingress`` (``exposure``). A patch is
planned only for what differs, so a second run over the result plans none.

Make-before-break: when the IP moves, or the Service switches between the two modes, a first
patch only adds (the new anchor next to the old one, the new mode's entries next to the old
mode's) and a second one, applied once the assignment has completed, removes what is stale.
"""

from __future__ import annotations

from collections.abc import Mapping

from floating_ip.core import external_ips
from floating_ip.core import own_writes as written
from floating_ip.core.exposure import (
    Exposure,
    bridge_ingress,
    desired_ingress,
    exposure_of,
    without_ours,
)
from floating_ip.core.model import Ingress, ServicePatch
from floating_ip.core.outcomes import ServiceOutcome
from floating_ip_common import contract

StatusAnnotations = dict[str, str | None]
AnnotationChanges = tuple[tuple[str, str | None], ...]


def desired_status(
    outcome: ServiceOutcome, ours: tuple[str, ...], ingress: tuple[Ingress, ...] = ()
) -> StatusAnnotations:
    """Our annotations as they should read once the plan is applied (``None``: absent);
    ``ours``: the externalIPs entries that are ours then; ``ingress``: the ingress we wrote."""
    droplet = outcome.droplet_id
    return {
        contract.HOLDER_NODE: outcome.node_name,
        contract.HOLDER_DROPLET: str(droplet) if droplet is not None else None,
        contract.ANCHOR_IP: outcome.anchor,
        contract.STATUS: outcome.status,
        contract.WRITTEN: written.render(ours, (entry.ip for entry in ingress)),
    }


def desired_dns_target(outcome: ServiceOutcome, current: str | None) -> StatusAnnotations:
    """external-dns's target: the reserved IP while the ingress lists it, unless the user
    chose another value; removed when it names the reserved IP and the ingress does not."""
    address = outcome.intent.address
    exposure = exposure_of(outcome.intent.service)
    if exposure is Exposure.FOREIGN_LOAD_BALANCER:
        return {}  # another controller's Service: its DNS settings are not ours
    if exposure is Exposure.LOAD_BALANCER_STATUS and outcome.holding is not None:
        return {contract.EXTERNAL_DNS_TARGET: current or address}
    if current is not None and current == address:
        return {contract.EXTERNAL_DNS_TARGET: None}
    return {}


def differences(current: Mapping[str, str], desired: StatusAnnotations) -> AnnotationChanges:
    """The entries of ``desired`` that ``current`` does not already read."""
    return tuple((key, value) for key, value in desired.items() if current.get(key) != value)


def final_ingress(outcome: ServiceOutcome, ours: frozenset[str]) -> tuple[Ingress, ...]:
    """The ingress once the plan is applied: ours in our class, the others' elsewhere."""
    service = outcome.intent.service
    exposure = exposure_of(service)
    if exposure is Exposure.FOREIGN_LOAD_BALANCER:
        return service.ingress
    address = outcome.intent.address
    if exposure is Exposure.EXTERNAL_IPS or address is None or outcome.holding is None:
        return without_ours(service.ingress, ours | ({address} if address else set()))
    return desired_ingress(address, outcome.anchor)


def service_patches(
    outcome: ServiceOutcome, known_anchors: frozenset[str]
) -> tuple[ServicePatch | None, ServicePatch | None]:
    """``(before the assignment, after it)``; either may be ``None`` (nothing to write)."""
    service = outcome.intent.service
    exposure = exposure_of(service)
    listed = exposure is Exposure.EXTERNAL_IPS
    anchor = outcome.anchor
    ours = known_anchors | written.ours_on(service)
    ours |= {anchor} if anchor else set()
    ips, ingress = service.external_ips, service.ingress
    annotations = dict(service.annotations)
    final_ips = external_ips.final(ips, ours, anchor if listed else None)
    if exposure is Exposure.FOREIGN_LOAD_BALANCER:
        final_ips = ips  # another controller's Service: only our status annotations change
    wanted_ingress = final_ingress(outcome, ours)

    bridged_ips = (external_ips.bridge(ips, anchor) or ips) if listed and anchor else ips
    bridged_ingress = bridge_ingress(ingress, wanted_ingress)
    adds = bridged_ips != ips or bridged_ingress != ingress
    removes = final_ips != bridged_ips or wanted_ingress != bridged_ingress
    assignment = outcome.assignment
    before = None
    if adds and (assignment or removes):
        # The record lets a later run tell our externalIPs entries from the user's. The
        # ingress needs none (all of it is ours), so class mode adds no call before the move.
        kept = external_ips.ours_in(bridged_ips, ours)
        record = {
            contract.ANCHOR_IP: external_ips.record(kept),
            contract.WRITTEN: written.render(kept),
        }
        changes = differences(annotations, record) if listed else ()
        before = ServicePatch(
            service.ref,
            service.uid,
            service.resource_version,
            external_ips=bridged_ips if bridged_ips != ips else None,
            annotations=changes,
            ingress=bridged_ingress if bridged_ingress != ingress else None,
        )
        ips, ingress = bridged_ips, bridged_ingress
        annotations.update({key: value for key, value in changes if value is not None})

    in_class = exposure is Exposure.LOAD_BALANCER_STATUS
    desired = desired_status(
        outcome, external_ips.ours_in(final_ips, ours), wanted_ingress if in_class else ()
    )
    desired |= desired_dns_target(outcome, annotations.get(contract.EXTERNAL_DNS_TARGET))
    changes = differences(annotations, desired)
    if final_ips == ips and wanted_ingress == ingress and not changes:
        return before, None
    after = ServicePatch(
        service.ref,
        service.uid,
        "" if before else service.resource_version,
        external_ips=final_ips if final_ips != ips else None,
        annotations=changes,
        ingress=wanted_ingress if wanted_ingress != ingress else None,
        after_ip=assignment.ip if assignment else None,
    )
    return before, after
