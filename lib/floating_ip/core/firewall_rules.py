"""Firewall rules in one canonical shape, so equal rule sets compare equal.

The API is loose about spelling: all ports may read back as ``"0"``, ``"all"``, ``""`` or
``"1-65535"``; a single port may be ``"80-80"``; an address may be ``1.2.3.4`` or
``1.2.3.4/32``, IPv6 in any case or expansion; rules and addresses come in any order. Every
rule set is normalised the same way before comparing, and the desired rules are built in
this form to begin with.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from floating_ip.core.model import FirewallRule, Sources

ALL_PORTS = "0"
"""How the API writes "every port"."""
_ALL_PORTS_SPELLINGS = frozenset({"", "0", "all"})


def normal_ports(protocol: str, ports: str) -> str:
    """``"0"`` for all ports (and for ICMP, which has none), else ``"80"`` or ``"80-90"``."""
    text = ports.strip().lower()
    if protocol == "icmp" or text in _ALL_PORTS_SPELLINGS:
        return ALL_PORTS
    low, _, high = text.partition("-")
    try:
        first, last = int(low), int(high or low)
    except ValueError:
        return text  # unknown spelling: compare it as it is
    if (first, last) == (1, 65535):
        return ALL_PORTS
    return str(first) if first == last else f"{first}-{last}"


def _address_key(text: str) -> tuple[int, int, int, str]:
    try:
        network = ipaddress.ip_network(text)
    except ValueError:
        return (9, 0, 0, text)
    return (network.version, int(network.network_address), network.prefixlen, text)


def normal_address(text: str) -> str:
    """Canonical CIDR text (``1.2.3.4`` → ``1.2.3.4/32``); unparsable text kept as it is."""
    try:
        return ipaddress.ip_network(text.strip(), strict=False).with_prefixlen
    except ValueError:
        return text.strip()


def sorted_addresses(addresses: Iterable[str]) -> tuple[str, ...]:
    """Canonical, de-duplicated, IPv4 before IPv6, in numeric order."""
    return tuple(sorted({normal_address(a) for a in addresses}, key=_address_key))


def normal_sources(sources: Sources) -> Sources:
    return Sources(
        addresses=sorted_addresses(sources.addresses),
        droplet_ids=tuple(sorted(set(sources.droplet_ids))),
        load_balancer_uids=tuple(sorted(set(sources.load_balancer_uids))),
        kubernetes_ids=tuple(sorted(set(sources.kubernetes_ids))),
        tags=tuple(sorted(set(sources.tags))),
    )


def normal_rule(rule: FirewallRule) -> FirewallRule:
    protocol = rule.protocol.strip().lower()
    return FirewallRule(protocol, normal_ports(protocol, rule.ports), normal_sources(rule.sources))


def _rule_key(rule: FirewallRule) -> tuple[str, int, str, tuple[str, ...]]:
    first = rule.ports.partition("-")[0]
    return (
        rule.protocol,
        int(first) if first.isdigit() else -1,
        rule.ports,
        rule.sources.addresses,
    )


def normal_rules(rules: Iterable[FirewallRule]) -> tuple[FirewallRule, ...]:
    """Normalised, de-duplicated and sorted by protocol, then port."""
    unique = {normal_rule(rule) for rule in rules}
    return tuple(sorted(unique, key=lambda rule: (_rule_key(rule), repr(rule))))


def port_ranges(ports: Iterable[int]) -> tuple[str, ...]:
    """Sorted ports with neighbours merged: ``80, 81, 82, 443`` → ``"80-82", "443"``."""
    ranges: list[list[int]] = []
    for port in sorted(set(ports)):
        if ranges and port == ranges[-1][1] + 1:
            ranges[-1][1] = port
        else:
            ranges.append([port, port])
    return tuple(normal_ports("tcp", f"{first}-{last}") for first, last in ranges)


def inbound_rules(openings: Iterable[tuple[str, int, tuple[str, ...]]]) -> tuple[FirewallRule, ...]:
    """Rules for ``(protocol, port, sources)`` openings: sources of one port are merged, and
    ports with identical sources share a rule as ranges, to stay far from the rule limit."""
    sources_of: dict[tuple[str, int], set[str]] = {}
    for protocol, port, sources in openings:
        sources_of.setdefault((protocol.lower(), port), set()).update(sources)
    ports_of: dict[tuple[str, tuple[str, ...]], list[int]] = {}
    for (protocol, port), merged in sources_of.items():
        ports_of.setdefault((protocol, sorted_addresses(merged)), []).append(port)
    rules = (
        FirewallRule(protocol, ports, Sources(addresses=addresses))
        for (protocol, addresses), ports_list in ports_of.items()
        for ports in port_ranges(ports_list)
    )
    return normal_rules(rules)
