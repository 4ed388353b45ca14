"""Reserved IPs created on demand (``address: auto``) and given back: never two for one
Service, never one left behind.

A reserved IP carries no name, tag or creation time, so what is ours is recorded on the
Service: ``contract.ALLOCATION`` (``droplet <id>; existing: <ips>``: the droplet, and every
reserved IP of the cluster's region at that moment) is written BEFORE the create call, and the
IP is created already assigned to that droplet; ``contract.OWNED_ADDRESS`` records it once the
call answered. Whatever step a crash interrupts, the next run knows what to do:

- marker but no record, and an IP on the marked droplet that no Service names: that IP is the
  one created; it is adopted (recorded), not created again;
- marker but no record, and an unassigned, unlocked IP of the region that no Service names
  or records and that is not among the marker's ``existing``: the one created, which its
  droplet lost (deleted by an upgrade or the autoscaler: DigitalOcean unassigns its IP; or
  the assign action errored). It is adopted too, not created again and left to cost money;
- marker and record: the marker stays until the IP is assigned (DigitalOcean shows an IP
  being assigned on no droplet; the marker keeps any other IP off that droplet meanwhile);
- marker, and an unassigned, locked IP no Service names in the region: a creation may still
  be assigning it; wait (no new creation while it could be ours);
- marker and nothing of the kind: the call never created one; create again (the marker is
  written anew, with the region's IPs of now);
- ``refused …`` marker: DigitalOcean refused; one Warning via the status, and no new attempt
  until the user removes the marker. The Warning says what to do for the refusal's kind
  (``Refusal``): free an IP for the account's limit, fix the token's scope for a 401/403,
  and only what DigitalOcean's answer says for any other.

An owned IP is released (unassigned, deleted, then forgotten) once its Service is deleted,
opts out, or names another address; one that another Service names is only forgotten, so an
address a user wrote is never deleted. A deleted Service keeps its finalizer until then.

**A user's own address is never released.** The rule that keeps it: an IP is taken for a
creation (adopted, or released with its Service) only if no Service names or records it and
either it sits on the marked droplet, or it is unassigned in the region and was not in the
account when the marker was written. So a user's IP that some Service names is never taken
(only forgotten), nor one named by none that existed before the marker (it is in
``existing``). What no rule can tell apart, since no field of a reserved IP says who made it
or when: an IP the user reserves, unassigned in the cluster's region and named by no Service,
while a creation is unresolved (from the run that lost the create call's answer to the next
run, at the latest the resync). A marker written without ``existing`` (``droplet <id>``
alone) is taken to list every IP: it adopts only on its droplet.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from floating_ip.core.annotations import Intent, owned_address
from floating_ip.core.fitness import verdict
from floating_ip.core.model import (
    Allocation,
    NodeVerdict,
    ObjectRef,
    Observation,
    Problem,
    Reason,
    Release,
    ReservedIP,
    Service,
    ServicePatch,
)
from floating_ip.core.rendezvous import rendezvous_order
from floating_ip.core.status import unfit_summary
from floating_ip.core.upgrades import newest_first
from floating_ip_common import contract

ON_DROPLET = "droplet "
EXISTING = "; existing:"
NONE = "none"


class Refusal(StrEnum):
    """Why DigitalOcean refused a creation, as the apply step classified its answer: what
    the user must do differs."""

    LIMIT = "limit"
    """The account's limit on reserved IPs."""
    ACCESS = "token"
    """The token is not valid (401) or lacks the scope (403)."""
    OTHER = ""
    """Anything else (and every refusal recorded before the kinds were)."""


ADVICE = {
    Refusal.LIMIT: "free one (or raise the account's limit)",
    Refusal.ACCESS: (
        "give the function's DigitalOcean token (DIGITALOCEAN_TOKEN) the scope "
        "reserved_ip:create (beside reserved_ip:update and reserved_ip:delete), or a valid "
        "token if it expired"
    ),
    Refusal.OTHER: "fix what the answer names",
}


def refused(answer: str, why: Refusal) -> str:
    """``refused: <answer>``, or ``refused (limit): …`` / ``refused (token): …``."""
    return f"refused ({why}): {answer}" if why else f"refused: {answer}"


def refusal_message(answer: str, why: Refusal) -> str:
    return (
        f"DigitalOcean refused to create a reserved IP for this Service: {answer}; "
        f"{ADVICE[why]}, then remove the annotation {contract.ALLOCATION} to try again"
    )


@dataclass(frozen=True, slots=True)
class Marker:
    """``contract.ALLOCATION`` as read: a creation in flight, refused, or none."""

    droplet_id: int | None = None
    refused: str | None = None
    """DigitalOcean's answer to a refused creation."""
    why: Refusal = Refusal.OTHER
    existing: frozenset[str] | None = None
    """The region's reserved IPs before the create call; ``None``: not recorded."""


def read_marker(text: str | None) -> Marker:
    if text is None:
        return Marker()
    for why in Refusal:
        prefix = refused("", why)
        if text.startswith(prefix):
            return Marker(refused=text.removeprefix(prefix), why=why)
    target, separator, listed = text.removeprefix(ON_DROPLET).partition(EXISTING)
    if not target.isdigit():
        return Marker()
    if not separator:
        return Marker(droplet_id=int(target))
    ips = listed.split()
    return Marker(droplet_id=int(target), existing=frozenset(() if ips == [NONE] else ips))


def in_flight(droplet_id: int, existing: Iterable[str]) -> str:
    listed = " ".join(sorted(existing)) or NONE
    return f"{ON_DROPLET}{droplet_id}{EXISTING} {listed}"


@dataclass(frozen=True, slots=True)
class Waiting:
    """An ``address: auto`` Service without an IP yet: why, in its status."""

    status: str
    problem: Problem | None = None


@dataclass
class Decisions:
    allocations: list[Allocation] = field(default_factory=list)
    records: list[ServicePatch] = field(default_factory=list)
    """Our records on Services changed without a cloud write: an adopted IP, a dropped
    marker."""
    waiting: dict[ObjectRef, Waiting] = field(default_factory=dict)
    releases: list[Release] = field(default_factory=list)
    held: set[ObjectRef] = field(default_factory=set)
    """Leaving Services whose IP cannot be released yet (locked): their finalizer stays."""
    spoken_for: set[str] = field(default_factory=set)
    """IPs that are ours though no intent names them yet (adopted or being released): never
    reported as unclaimed, so never unassigned as such."""


def recorded_ips(services: Iterable[Service]) -> frozenset[str]:
    return frozenset(ip for service in services if (ip := owned_address(service)))


def on_droplet(droplet_id: int, ips: Iterable[ReservedIP], named: frozenset[str]) -> str | None:
    """An IP on the droplet that no Service names or records: one created for a marker."""
    return next((r.ip for r in ips if r.droplet_id == droplet_id and r.ip not in named), None)


def lost_by_its_droplet(
    marker: Marker, observation: Observation, named: frozenset[str], spoken_for: set[str]
) -> str | None:
    """An unassigned, unlocked IP of the region that no Service names or records, that is no
    other marker's, and that the account did not have when the marker was written: the one
    created for it, which its droplet no longer holds (deleted, or the assign errored)."""
    if marker.existing is None:
        return None
    region = observation.cluster.region
    return next(
        (
            r.ip
            for r in sorted(observation.reserved_ips, key=lambda r: r.ip)
            if r.droplet_id is None
            and not r.locked
            and r.region == region
            and r.ip not in named
            and r.ip not in spoken_for
            and r.ip not in marker.existing
        ),
        None,
    )


def region_ips(observation: Observation) -> tuple[str, ...]:
    region = observation.cluster.region
    return tuple(sorted(r.ip for r in observation.reserved_ips if r.region == region))


def maybe_assigning(observation: Observation, named: frozenset[str]) -> bool:
    """An unassigned, locked IP of the region that no Service names: possibly one created
    for a marker whose assign action is still running."""
    region = observation.cluster.region
    return any(
        r.locked and r.droplet_id is None and r.region == region and r.ip not in named
        for r in observation.reserved_ips
    )


def patch_of(service: Service, changes: Mapping[str, str | None]) -> ServicePatch:
    return ServicePatch(
        service.ref, service.uid, service.resource_version, annotations=tuple(changes.items())
    )


def choose_droplet(
    service: Service, observation: Observation, taken: set[int]
) -> tuple[tuple[str, int] | None, tuple[NodeVerdict, ...]]:
    """The fit node (newest kubelet first, then by rendezvous order of the Service's uid)
    whose droplet holds no reserved IP and is no other IP's target in this plan; and every
    node's verdict."""
    pods = {pod.ref: pod for pod in observation.pods}
    region = observation.cluster.region
    nodes = sorted(observation.nodes, key=lambda node: node.name)
    verdicts = tuple(verdict(node, (service,), region, region, pods) for node in nodes)
    droplets = {node.name: node.droplet_id for node in nodes}
    versions = {node.name: node.kubelet_version for node in nodes}
    fit = [v.node_name for v in verdicts if not v.reasons]
    # Newest kubelet first, as for a move (``upgrades``): mid-upgrade, a node that stays.
    for name in newest_first(rendezvous_order(service.uid, fit), versions):
        droplet = droplets[name]
        if droplet is not None and droplet not in taken:
            return (name, droplet), verdicts
    return None, verdicts


def marked_droplets(services: Iterable[Service]) -> frozenset[int]:
    """Droplets a creation in flight targets: no other IP may be planned onto them."""
    return frozenset(
        droplet
        for service in services
        if (droplet := read_marker(service.annotation(contract.ALLOCATION)).droplet_id)
    )


def allocate(
    intents: Iterable[Intent],
    observation: Observation,
    named: frozenset[str],
    taken: set[int],
    decided: Decisions,
) -> None:
    """For each ``address: auto`` Service without a recorded IP: adopt, wait or create."""
    held = {ip.droplet_id for ip in observation.reserved_ips if ip.droplet_id is not None}
    for intent in intents:
        if not intent.auto:
            continue
        service = intent.service
        marker = read_marker(service.annotation(contract.ALLOCATION))
        if intent.address is not None:
            drop_settled_marker(service, intent.address, marker, observation, decided)
            continue
        if marker.refused is not None:
            message = refusal_message(marker.refused, marker.why)
            decided.waiting[service.ref] = Waiting(message, Problem(Reason.IP_NOT_CREATED, message))
            continue
        if marker.droplet_id is not None:
            found = on_droplet(marker.droplet_id, observation.reserved_ips, named)
            lost = None
            if found is None:
                lost = lost_by_its_droplet(marker, observation, named, decided.spoken_for)
            if (adopted := found or lost) is not None:
                decided.records.append(
                    patch_of(service, {contract.OWNED_ADDRESS: adopted, contract.ALLOCATION: None})
                )
                decided.spoken_for.add(adopted)
                how = (
                    ""
                    if lost is None
                    else f", found unassigned (not on droplet {marker.droplet_id})"
                )
                decided.waiting[service.ref] = Waiting(
                    f"Reserved IP {adopted} was created for this Service{how}; placing it"
                )
                continue
            if maybe_assigning(observation, named):
                decided.waiting[service.ref] = Waiting(
                    f"Creating a reserved IP on droplet {marker.droplet_id}: waiting for "
                    "DigitalOcean to finish assigning it"
                )
                continue
        # Its own marker's droplet, empty, is free for it (the earlier attempt created none).
        own = {marker.droplet_id} - held if marker.droplet_id is not None else set()
        chosen, verdicts = choose_droplet(service, observation, taken - own)
        if chosen is None:
            fit = [v.node_name for v in verdicts if not v.reasons]
            why = (
                f"every fit node ({', '.join(fit)}) already holds a reserved IP"
                if fit
                else f"no node is fit ({unfit_summary(verdicts)})"
            )
            message = f"No reserved IP is created for this Service yet: {why}"
            decided.waiting[service.ref] = Waiting(message, Problem(Reason.NO_FIT_NODE, message))
            continue
        node_name, droplet = chosen
        taken.add(droplet)
        decided.allocations.append(
            Allocation(
                service.ref,
                service.uid,
                service.resource_version,
                droplet,
                node_name,
                region_ips(observation),
                marked=marker.droplet_id == droplet,
            )
        )
        decided.waiting[service.ref] = Waiting(
            f"Creating a reserved IP for this Service on node {node_name} (droplet {droplet})"
        )


def drop_settled_marker(
    service: Service, ip: str, marker: Marker, observation: Observation, decided: Decisions
) -> None:
    """The marker stays until the recorded IP is assigned (or its action ended): while it
    is assigning, DigitalOcean shows it on no droplet, and the marker is what keeps another
    IP off that droplet."""
    if marker.droplet_id is None:
        return
    current = next((r for r in observation.reserved_ips if r.ip == ip), None)
    if current is None or not current.locked:
        decided.records.append(patch_of(service, {contract.ALLOCATION: None}))


def keeps(service: Service, asking: Mapping[ObjectRef, Intent], ip: str) -> bool:
    intent = asking.get(service.ref)
    return intent is not None and intent.auto and intent.address == ip


def release(
    services: Iterable[Service],
    asking: Mapping[ObjectRef, Intent],
    observation: Observation,
    named: frozenset[str],
    decided: Decisions,
) -> None:
    """Release each owned IP no longer asked for, and settle markers of leaving Services."""
    reserved = {r.ip: r for r in observation.reserved_ips}
    for service in sorted(services, key=lambda service: service.ref):
        ip = owned_address(service)
        if ip is not None and not keeps(service, asking, ip):
            # Named by another Service, or now by this one explicitly (it switched from auto
            # to the IP it was given): only the ownership record goes, never the IP.
            own = asking.get(service.ref)
            named_here = own is not None and own.address == ip
            elsewhere = named_here or ip in named_by_others(service, asking)
            current = reserved.get(ip)
            if current is not None and current.locked and not elsewhere:
                decided.held.add(service.ref)  # DigitalOcean is busy with it: next run
                decided.spoken_for.add(ip)
                continue
            decided.spoken_for.add(ip)
            decided.releases.append(
                Release(
                    service.ref,
                    service.uid,
                    ip,
                    current.droplet_id if current is not None and not elsewhere else None,
                    delete=current is not None and not elsewhere,
                    forget=None
                    if service.deleting
                    else patch_of(service, {contract.OWNED_ADDRESS: None}),
                )
            )
        settle_marker(service, asking, observation, named, decided)


def named_by_others(service: Service, asking: Mapping[ObjectRef, Intent]) -> frozenset[str]:
    return frozenset(
        intent.address
        for ref, intent in asking.items()
        if ref != service.ref and intent.address is not None
    )


def settle_marker(
    service: Service,
    asking: Mapping[ObjectRef, Intent],
    observation: Observation,
    named: frozenset[str],
    decided: Decisions,
) -> None:
    """A creation marker on a Service that no longer waits for it (deleted, opted out,
    another address): release what it may have created, then drop the marker."""
    marker = read_marker(service.annotation(contract.ALLOCATION))
    intent = asking.get(service.ref)
    if marker == Marker() or (intent is not None and intent.auto):
        return  # still asked for: ``allocate`` settles it
    forget = None if service.deleting else patch_of(service, {contract.ALLOCATION: None})
    found = (
        on_droplet(marker.droplet_id, observation.reserved_ips, named)
        if (marker.droplet_id is not None)
        else None
    )
    # With a record, the creation answered: what it made is the recorded IP, released above.
    unanswered = owned_address(service) is None
    lost = (
        lost_by_its_droplet(marker, observation, named, decided.spoken_for) if unanswered else None
    )
    if found is not None:
        decided.spoken_for.add(found)
        decided.releases.append(
            Release(service.ref, service.uid, found, marker.droplet_id, True, forget)
        )
    elif lost is not None:
        decided.spoken_for.add(lost)
        decided.releases.append(Release(service.ref, service.uid, lost, None, True, forget))
    elif marker.droplet_id is not None and maybe_assigning(observation, named):
        decided.held.add(service.ref)
    elif forget is not None:
        decided.records.append(forget)
