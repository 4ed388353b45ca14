"""What the function wrote on a Service, and removing exactly that once the Service opts out.

The ``contract.WRITTEN`` annotation is the function's own record, written in the same patch as
the entries it lists: ``{"externalIPs": [...]}`` for the anchor IPs it added to
``spec.externalIPs`` (and ``"ingress"`` for ``status.loadBalancer.ingress`` entries). It is
never an input of placement: a Service without ``contract.ADDRESS`` is only ever cleaned.
Services written by a version without the marker are recognised by our status annotations,
and their ``contract.ANCHOR_IP`` record stands in for it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

from floating_ip.core import external_ips
from floating_ip.core.annotations import requested_address
from floating_ip.core.model import Event, EventType, Reason, Service, ServicePatch
from floating_ip_common import contract

EXTERNAL_IPS = "externalIPs"
INGRESS = "ingress"


@dataclass(frozen=True, slots=True)
class Written:
    external_ips: frozenset[str] = frozenset()
    ingress: frozenset[str] = frozenset()


def render(external: Iterable[str] = (), ingress: Iterable[str] = ()) -> str:
    """The marker's value: compact JSON with sorted keys and entries (stable, so comparable)."""
    record: dict[str, list[str]] = {EXTERNAL_IPS: sorted(set(external))}
    entries = sorted(set(ingress))
    if entries:
        record[INGRESS] = entries
    return json.dumps(record, sort_keys=True, separators=(",", ":"))


def _strings(value: object) -> frozenset[str]:
    if not isinstance(value, list):
        return frozenset()
    return frozenset(item for item in value if isinstance(item, str))


def parse(value: str | None) -> Written:
    """The marker's entries; a garbled marker lists none (so nothing of the user's goes)."""
    try:
        record = json.loads(value) if value else {}
    except ValueError:
        return Written()
    if not isinstance(record, dict):
        return Written()
    return Written(_strings(record.get(EXTERNAL_IPS)), _strings(record.get(INGRESS)))


def has_traces(annotations: Iterable[str]) -> bool:
    """Whether any annotation the function writes is among these keys."""
    return any(key in contract.STATUS_ANNOTATIONS for key in annotations)


def ours_on(service: Service) -> frozenset[str]:
    """The ``spec.externalIPs`` entries the function recorded as its own on this Service."""
    written = parse(service.annotation(contract.WRITTEN))
    recorded = external_ips.recorded_anchors(service.annotation(contract.ANCHOR_IP))
    return written.external_ips | recorded


def cleanup_patch(service: Service) -> ServicePatch | None:
    """For a Service that has opted out: drop our externalIPs entries and our annotations."""
    # The records of an IP the function created stay until that IP is released.
    keys = [
        key
        for key, _ in service.annotations
        if key in contract.STATUS_ANNOTATIONS and key not in contract.KEPT_UNTIL_RELEASED
    ]
    if not keys:
        return None
    ours = ours_on(service)
    kept = tuple(ip for ip in service.external_ips if ip not in ours)
    # LoadBalancer-class mode: the ingress entries the marker lists, and the external-dns
    # target the function set to one of them.
    ours_in_ingress = parse(service.annotation(contract.WRITTEN)).ingress
    ingress = tuple(entry for entry in service.ingress if entry.ip not in ours_in_ingress)
    target = service.annotation(contract.EXTERNAL_DNS_TARGET)
    if target is not None and target in ours_in_ingress:
        keys.append(contract.EXTERNAL_DNS_TARGET)
    return ServicePatch(
        service.ref,
        service.uid,
        service.resource_version,
        kept if kept != service.external_ips else None,
        tuple((key, None) for key in sorted(keys)),
        ingress=ingress if ingress != service.ingress else None,
    )


def cleanup_event(service: Service, patch: ServicePatch) -> Event:
    removed = [ip for ip in service.external_ips if ip not in (patch.external_ips or ())]
    entries = (
        f"anchor IP {', '.join(removed)} from externalIPs and "
        if patch.external_ips is not None
        else ""
    )
    message = (
        f"Removed {entries}the floating-ip annotations: the {contract.ADDRESS} annotation is gone."
    )
    return Event(service.ref, service.uid, EventType.NORMAL, Reason.CLEANED_UP, message)


def cleanups(services: Iterable[Service]) -> tuple[tuple[ServicePatch, ...], tuple[Event, ...]]:
    """Clean-up patches (and their Events) for the Services that opted out, by name."""
    patches: list[ServicePatch] = []
    events: list[Event] = []
    for service in sorted(services, key=lambda service: service.ref):
        if requested_address(service) is not None:
            continue
        patch = cleanup_patch(service)
        if patch is not None:
            patches.append(patch)
            events.append(cleanup_event(service, patch))
    return tuple(patches), tuple(events)
