"""Reading the user's Service annotations: one small parser per key, each naming its key.

=====================================  ==========================  ==============================
Annotation                             Default                     Valid values
=====================================  ==========================  ==============================
``floating-ip.doks.dev/address``       none (required to opt in)   one IPv4 address, or ``auto``
                                                                   (the function creates one)
``floating-ip.doks.dev/firewall``      ``true``                    ``true`` or ``false`` (any case)
``floating-ip.doks.dev/firewall-``     ``0.0.0.0/0,::/0``          comma-separated IPv4/IPv6 CIDRs
``sources``                                                        (a bare address means /32 or
                                                                   /128); host bits must be zero
``floating-ip.doks.dev/node-selector``  none (every node)           a label selector, as
                                                                   ``kubectl -l`` takes it
                                                                   (``node_selector``)
=====================================  ==========================  ==============================

Host bits set (``10.0.0.1/8``) are rejected rather than silently widened or narrowed: the user
meant one of two things and only they know which. A bad firewall annotation closes that
Service's ports (fail closed) rather than opening them to the world.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from floating_ip.core.exposure import Exposure, exposure_of
from floating_ip.core.model import Problem, Reason, Service
from floating_ip.core.node_selector import SelectorError, parse_node_selector
from floating_ip_common import contract


class AnnotationError(ValueError):
    """A Service annotation's value is unusable; the message names the key."""

    def __init__(self, key: str, value: str, why: str) -> None:
        super().__init__(f"Annotation {key}: {value!r} {why}")


@dataclass(frozen=True, slots=True)
class Intent:
    """What one opted-in Service asks for, after parsing."""

    service: Service
    address: str | None
    """The canonical IPv4 text, or ``None`` when the address annotation is invalid."""
    firewall: bool
    """Open the Service's ports; ``False`` also when a firewall annotation is invalid."""
    sources: tuple[str, ...]
    """Canonical CIDRs, sorted and de-duplicated."""
    problems: tuple[Problem, ...] = ()
    auto: bool = False
    """``address: auto``: the IP is the one the function created (``address``, once
    recorded in ``contract.OWNED_ADDRESS``) and releases."""


def parse_address(value: str) -> str:
    """``contract.ADDRESS``: exactly one IPv4 address, returned in canonical form (``auto``
    is read by ``read_intent``)."""
    try:
        address = ipaddress.ip_address(value.strip())
    except ValueError:
        raise AnnotationError(contract.ADDRESS, value, "is not an IP address") from None
    if address.version != 4:
        raise AnnotationError(contract.ADDRESS, value, "is not IPv4 (reserved IPs are IPv4)")
    return str(address)


def parse_firewall(value: str | None) -> bool:
    """``contract.FIREWALL``: ``true`` (default when absent) or ``false``."""
    if value is None:
        return True
    text = value.strip().lower()
    if text in ("true", "false"):
        return text == "true"
    raise AnnotationError(contract.FIREWALL, value, 'must be "true" or "false"')


def parse_cidr(text: str, value: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """One entry of ``contract.FIREWALL_SOURCES``; ``value`` is the whole annotation."""
    try:
        return ipaddress.ip_network(text)
    except ValueError:
        pass
    try:
        meant = ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise AnnotationError(
            contract.FIREWALL_SOURCES, value, f"has {text!r}, which is not a CIDR"
        ) from None
    raise AnnotationError(
        contract.FIREWALL_SOURCES,
        value,
        f"has {text!r} with host bits set (the network is {meant.with_prefixlen})",
    )


def parse_sources(value: str | None) -> tuple[str, ...]:
    """``contract.FIREWALL_SOURCES``: comma-separated CIDRs, canonical, sorted, unique."""
    if value is None:
        return tuple(contract.DEFAULT_FIREWALL_SOURCES)
    networks: set[ipaddress.IPv4Network | ipaddress.IPv6Network] = set()
    for item in value.split(","):
        text = item.strip()
        if not text:
            raise AnnotationError(contract.FIREWALL_SOURCES, value, "has an empty entry")
        networks.add(parse_cidr(text, value))
    ordered = sorted(networks, key=lambda net: (net.version, net))
    return tuple(net.with_prefixlen for net in ordered)


def owned_address(service: Service) -> str | None:
    """The reserved IP the function created for the Service (``contract.OWNED_ADDRESS``);
    a garbled record names none."""
    try:
        return parse_address(service.annotation(contract.OWNED_ADDRESS) or "")
    except AnnotationError:
        return None


def requested_address(service: Service) -> str | None:
    """``contract.ADDRESS`` as written; for a LoadBalancer of this project's class without
    it, ``auto`` (a LoadBalancer implementation gives an address unasked); ``None``: the
    Service has not opted in."""
    written = service.annotation(contract.ADDRESS)
    if written is None and exposure_of(service) is Exposure.LOAD_BALANCER_STATUS:
        return contract.AUTO
    return written


def read_intent(service: Service) -> Intent | None:
    """The Service's parsed request, or ``None`` when it has not opted in."""
    raw_address = requested_address(service)
    if raw_address is None:
        return None
    problems: list[Problem] = []
    address: str | None = None
    auto = raw_address.strip().lower() == contract.AUTO
    if auto:
        address = owned_address(service)
    else:
        try:
            address = parse_address(raw_address)
        except AnnotationError as error:
            problems.append(Problem(Reason.INVALID_ANNOTATION, str(error)))
    try:
        firewall = parse_firewall(service.annotation(contract.FIREWALL))
        sources = parse_sources(service.annotation(contract.FIREWALL_SOURCES))
    except AnnotationError as error:
        problems.append(Problem(Reason.INVALID_ANNOTATION, f"{error}; its ports stay closed"))
        firewall, sources = False, ()
    selector = service.annotation(contract.NODE_SELECTOR)
    if selector is not None:
        try:
            parse_node_selector(selector)
        except SelectorError as error:
            # fitness.selected then selects no node: the IP stays where it is until fixed.
            why = "; no node is selected until it is fixed"
            problems.append(Problem(Reason.INVALID_ANNOTATION, f"{error}{why}"))
    return Intent(service, address, firewall, sources, tuple(problems), auto)
