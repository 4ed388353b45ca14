"""Which Services share which reserved IP, and which of them may have it.

Several Services may share one reserved IP: the IP then needs a node fit for all of them,
and their firewall settings simply add up. They conflict only when two of them claim the same
port and protocol, because both would then list the same anchor IP and port in
``spec.externalIPs`` and the proxy could route that traffic to either. The older Service
(``creationTimestamp``, then namespace/name) keeps the IP; the younger one is left without it
and reported, so a new Service can never take traffic away from a running one.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from floating_ip.core.annotations import Intent
from floating_ip.core.model import Problem, Reason, Service, ServicePort


@dataclass(frozen=True, slots=True)
class Claim:
    """One reserved IP and the Services that may use it together (oldest first)."""

    ip: str
    intents: tuple[Intent, ...]

    @property
    def services(self) -> tuple[Service, ...]:
        return tuple(intent.service for intent in self.intents)


@dataclass(frozen=True, slots=True)
class Rejection:
    """A Service that names an IP another Service already uses on the same port."""

    intent: Intent
    problem: Problem


def seniority(intent: Intent) -> tuple[str, str, str]:
    service = intent.service
    return (service.creation_timestamp, service.namespace, service.name)


def ip_order(ip: str) -> int:
    """Numeric order of IPv4 text, so every run processes IPs in the same order."""
    return int(ipaddress.IPv4Address(ip))


def describe(port: ServicePort) -> str:
    return f"{port.protocol}/{port.port}"


def claim_one(ip: str, intents: list[Intent]) -> tuple[Claim, tuple[Rejection, ...]]:
    """Accept Services oldest first; reject each one whose ports overlap an accepted one's."""
    accepted: list[Intent] = []
    rejected: list[Rejection] = []
    owners: dict[ServicePort, Service] = {}
    for intent in sorted(intents, key=seniority):
        clashes = [port for port in intent.service.ports if port in owners]
        if clashes:
            owner = owners[clashes[0]]
            message = (
                f"Reserved IP {ip} is already used by Service {owner.ref} on "
                f"{', '.join(sorted({describe(port) for port in clashes}))}; "
                "this Service does not get it"
            )
            rejected.append(Rejection(intent, Problem(Reason.IP_CONFLICT, message)))
            continue
        accepted.append(intent)
        owners.update(dict.fromkeys(intent.service.ports, intent.service))
    return Claim(ip, tuple(accepted)), tuple(rejected)


def claim_all(intents: Iterable[Intent]) -> tuple[tuple[Claim, ...], tuple[Rejection, ...]]:
    """Group valid intents by IP (in numeric IP order) and settle port conflicts."""
    by_ip: dict[str, list[Intent]] = {}
    for intent in intents:
        if intent.address is not None:
            by_ip.setdefault(intent.address, []).append(intent)
    claims: list[Claim] = []
    rejections: list[Rejection] = []
    for ip in sorted(by_ip, key=ip_order):
        claim, rejected = claim_one(ip, by_ip[ip])
        claims.append(claim)
        rejections.extend(rejected)
    return tuple(claims), tuple(rejections)
