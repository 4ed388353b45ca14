"""Which ports each Service asks the firewall to open, from which sources.

DigitalOcean Cloud Firewalls know TCP, UDP and ICMP only: an SCTP port cannot be opened and
is reported on its Service instead.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from floating_ip.core.annotations import Intent
from floating_ip.core.model import ObjectRef, Problem, Protocol, Reason

Opening = tuple[str, int, tuple[str, ...]]
"""``(protocol, port, sources)`` with the firewall's lower-case protocol name."""


@dataclass(frozen=True, slots=True)
class Openings:
    openings: tuple[Opening, ...]
    contributors: frozenset[ObjectRef]
    """The Services that asked for at least one opening."""
    problems: tuple[tuple[ObjectRef, Problem], ...]


def unsupported(port: int) -> Problem:
    return Problem(
        Reason.UNSUPPORTED_PROTOCOL,
        f"Cloud firewalls cannot open SCTP port {port}; open it another way",
    )


def collect_openings(intents: Iterable[Intent]) -> Openings:
    """Every opening the firewall-enabled Services ask for, and the SCTP ports refused."""
    openings: list[Opening] = []
    contributors: set[ObjectRef] = set()
    problems: list[tuple[ObjectRef, Problem]] = []
    for intent in intents:
        if not intent.firewall:
            continue
        ref = intent.service.ref
        for port in intent.service.ports:
            if port.protocol == Protocol.SCTP:
                problems.append((ref, unsupported(port.port)))
                continue
            openings.append((port.protocol.lower(), port.port, intent.sources))
            contributors.add(ref)
    return Openings(tuple(openings), frozenset(contributors), tuple(problems))
