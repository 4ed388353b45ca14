"""What the demo looks at, as plain data, and what changed between two looks (pure)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum


@dataclass(frozen=True)
class Droplet:
    """A worker of the cluster: its Node, its droplet and the anchor IP only it knows."""

    node: str
    droplet_id: int
    anchor: str


@dataclass(frozen=True, order=True)
class Opening:
    """An inbound rule's port and protocol, e.g. 443/udp."""

    port: int
    protocol: str

    def __str__(self) -> str:
        return f"{self.port}/{self.protocol}"


@dataclass(frozen=True)
class IpState:
    ip: str
    droplet_id: int | None
    locked: bool
    """An action is in progress for the IP."""
    target: int | None = None
    """The droplet the action in progress assigns the IP to, when known."""


@dataclass(frozen=True)
class ServiceState:
    ref: str
    """``namespace/name``."""
    address: str | None
    """The reserved IP the Service asks for (its address annotation), if any."""
    external_ips: tuple[str, ...]
    owned: str | None = None
    """The reserved IP created for it (``address: auto``), if any."""


@dataclass(frozen=True)
class Snapshot:
    ips: tuple[IpState, ...]
    services: tuple[ServiceState, ...]
    openings: frozenset[Opening]
    """The project firewall's inbound openings (empty when there is no firewall)."""

    def ip(self, ip: str) -> IpState:
        return next(state for state in self.ips if state.ip == ip)

    def service(self, ref: str) -> ServiceState | None:
        return next((state for state in self.services if state.ref == ref), None)

    def claimant(self, ip: str) -> str | None:
        """The Service whose annotation asks for ``ip``."""
        return next((s.ref for s in self.services if ip in (s.address, s.owned)), None)


@dataclass(frozen=True)
class StepResult:
    number: int
    summary: str
    reached: bool
    took: float | None
    """Seconds from the cluster change to the whole expected state."""
    landed: float | None = None
    """Seconds from the cluster change to the moment a reserved IP reached its new droplet."""


class Kind(StrEnum):
    """What a change concerns (the narration colours by it)."""

    ACTION = "action"
    HOLDER = "holder"
    SERVICE = "service"
    FIREWALL = "firewall"


@dataclass(frozen=True)
class Change:
    kind: Kind
    subject: str
    text: str


def diff(
    before: Snapshot,
    after: Snapshot,
    droplets: Mapping[int, Droplet],
    *,
    now: float,
    locked_since: Mapping[str, float],
) -> list[Change]:
    """What changed from ``before`` to ``after``, one short sentence each.

    ``locked_since`` says when each IP's action was first seen in progress, so that a holder
    change can say how long the action took.
    """
    changes: list[Change] = []
    previous = {state.ip: state for state in before.ips}
    for new in after.ips:
        old = previous.pop(new.ip, None)
        if old is None:
            changes.append(Change(Kind.ACTION, new.ip, "created in the account"))
            old = IpState(new.ip, None, False)
        changes += _ip_changes(old, new, droplets, now - locked_since.get(new.ip, now))
    for gone in previous:
        changes.append(Change(Kind.ACTION, gone, "released: deleted from the account"))
    old_services = {s.ref: s for s in before.services}
    for service in after.services:
        old_ips = old_services[service.ref].external_ips if service.ref in old_services else ()
        if service.external_ips != old_ips:
            text = f"externalIPs {ip_list(old_ips)} → {ip_list(service.external_ips)}"
            changes.append(Change(Kind.SERVICE, service.ref, text))
    opened = sorted(after.openings - before.openings)
    closed = sorted(before.openings - after.openings)
    if opened:
        changes.append(Change(Kind.FIREWALL, "firewall", "opened " + port_list(opened)))
    if closed:
        changes.append(Change(Kind.FIREWALL, "firewall", "closed " + port_list(closed)))
    return changes


def _ip_changes(
    old: IpState, new: IpState, droplets: Mapping[int, Droplet], took: float
) -> list[Change]:
    changes: list[Change] = []
    if new.locked and not old.locked:
        where = f" to {name_of(new.target, droplets)}" if new.target is not None else ""
        changes.append(Change(Kind.ACTION, new.ip, f"assign{where}: action in progress"))
    if new.droplet_id != old.droplet_id:
        if new.droplet_id is None:
            text = "unassigned"
        elif new.droplet_id in droplets:
            text = f"now on {droplets[new.droplet_id].node} (droplet {new.droplet_id})"
        else:
            text = f"now on droplet {new.droplet_id}, outside the cluster"
        if old.locked and not new.locked:
            text += f", the action took {took:.1f} s"
        changes.append(Change(Kind.HOLDER, new.ip, text))
    return changes


def name_of(droplet_id: int | None, droplets: Mapping[int, Droplet]) -> str:
    if droplet_id is None:
        return "—"
    found = droplets.get(droplet_id)
    return found.node if found else f"droplet {droplet_id}"


def ip_list(ips: tuple[str, ...]) -> str:
    return "[" + ", ".join(ips) + "]"


def port_list(openings: list[Opening] | frozenset[Opening]) -> str:
    return " ".join(str(o) for o in sorted(openings)) or "nothing"
