"""The Service patches that bring ``spec.externalIPs`` and the status annotations in line.

A patch is planned only for what differs, so a second run over the result plans none. When
the Service's IP moves, a first patch adds the new anchor IP (make-before-break) and a
second one, applied only after the assignment has completed, drops the old one.
"""

from __future__ import annotations

from collections.abc import Mapping

from floating_ip import contract
from floating_ip.core import external_ips, written
from floating_ip.core.model import ServicePatch
from floating_ip.core.outcomes import ServiceOutcome

StatusAnnotations = dict[str, str | None]
AnnotationChanges = tuple[tuple[str, str | None], ...]


def desired_status(outcome: ServiceOutcome, ours: tuple[str, ...]) -> StatusAnnotations:
    """Our annotations as they should read once the plan is applied (``None``: absent);
    ``ours``: the externalIPs entries that are ours then."""
    droplet = outcome.droplet_id
    return {
        contract.HOLDER_NODE: outcome.node_name,
        contract.HOLDER_DROPLET: str(droplet) if droplet is not None else None,
        contract.ANCHOR_IP: outcome.anchor,
        contract.STATUS: outcome.status,
        contract.WRITTEN: written.render(ours),
    }


def differences(current: Mapping[str, str], desired: StatusAnnotations) -> AnnotationChanges:
    """The entries of ``desired`` that ``current`` does not already read."""
    return tuple((key, value) for key, value in desired.items() if current.get(key) != value)


def service_patches(
    outcome: ServiceOutcome, known_anchors: frozenset[str]
) -> tuple[ServicePatch | None, ServicePatch | None]:
    """``(before the assignment, after it)``; either may be ``None`` (nothing to write)."""
    service = outcome.intent.service
    anchor = outcome.anchor
    ours = known_anchors | written.ours_on(service)
    ours |= {anchor} if anchor else set()
    ips = service.external_ips
    annotations = dict(service.annotations)
    assignment = outcome.assignment
    before = None
    bridged = external_ips.bridge(ips, anchor) if assignment and anchor else None
    if bridged is not None:
        listed = external_ips.ours_in(bridged, ours)
        record = {contract.ANCHOR_IP: external_ips.record(listed)}
        record[contract.WRITTEN] = written.render(listed)
        changes = differences(annotations, record)
        before = ServicePatch(service.ref, service.uid, service.resource_version, bridged, changes)
        ips = bridged
        annotations.update({key: value for key, value in changes if value is not None})
    final = external_ips.final(ips, ours, anchor)
    changes = differences(annotations, desired_status(outcome, external_ips.ours_in(final, ours)))
    if final == ips and not changes:
        return before, None
    after = ServicePatch(
        service.ref,
        service.uid,
        "" if before else service.resource_version,
        final if final != ips else None,
        changes,
        assignment.ip if assignment else None,
    )
    return before, after
