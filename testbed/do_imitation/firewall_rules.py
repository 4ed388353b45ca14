"""Reading firewall request bodies into rules, with the API's checks and normalisations.

Malformed JSON shapes answer 400 (``bad_request``); well-formed but unacceptable values
answer 422 (``unprocessable_entity``), as the real API did for an invalid address.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Any, cast

from testbed.do_imitation.model import (
    TARGET_KEYS,
    Direction,
    Rule,
    Targets,
    bad_request,
    unprocessable,
)

MAX_RULES = 50  # inbound and outbound together
MAX_TAGS = 5
MAX_DROPLETS = 10
NAME_PATTERN = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9\.-]+$")
_PORT_RANGE = re.compile(r"^(\d{1,5})(?:-(\d{1,5}))?$")
_TARGETS_KEY: dict[Direction, str] = {"inbound": "sources", "outbound": "destinations"}


@dataclass(frozen=True)
class FirewallSpec:
    name: str
    inbound_rules: list[Rule]
    outbound_rules: list[Rule]
    droplet_ids: list[int]
    tags: list[str]


def parse_firewall(body: Any, *, creating: bool) -> FirewallSpec:
    """A full firewall from a create (POST) or replace (PUT) body."""
    fields = _object(body, "request body")
    name = fields.get("name")
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise unprocessable(
            "name must start with a letter or digit and contain only letters, digits, "
            "'.' and '-' (at least 2 characters)"
        )
    inbound, outbound = parse_rule_lists(fields)
    if creating and not (inbound or outbound):
        raise unprocessable("a firewall needs at least one inbound or outbound rule")
    check_rule_count(len(inbound) + len(outbound))
    droplet_ids = _int_list(fields.get("droplet_ids"), "droplet_ids")
    if len(droplet_ids) > MAX_DROPLETS:
        raise unprocessable(f"a firewall can be applied to at most {MAX_DROPLETS} droplets")
    tags = parse_tag_list(fields.get("tags"), "tags")
    check_tag_count(len(tags))
    return FirewallSpec(name, inbound, outbound, droplet_ids, tags)


def parse_rule_lists(fields: dict[str, Any]) -> tuple[list[Rule], list[Rule]]:
    return (
        _rules(fields.get("inbound_rules"), "inbound"),
        _rules(fields.get("outbound_rules"), "outbound"),
    )


def parse_rules_body(body: Any) -> tuple[list[Rule], list[Rule]]:
    """The rules of an add-rules or delete-rules body."""
    return parse_rule_lists(_object(body, "request body"))


def parse_tags_body(body: Any) -> list[str]:
    fields = _object(body, "request body")
    if "tags" not in fields:
        raise bad_request("tags is required")
    return parse_tag_list(fields["tags"], "tags")


def parse_tag_list(value: Any, what: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(tag, str) for tag in value):
        raise bad_request(f"{what} must be a list of strings")
    return list(dict.fromkeys(cast(list[str], value)))


def check_rule_count(count: int) -> None:
    if count > MAX_RULES:
        raise unprocessable(
            f"a firewall can have at most {MAX_RULES} rules (inbound and outbound together); "
            f"this request would make {count}"
        )


def check_tag_count(count: int) -> None:
    if count > MAX_TAGS:
        raise unprocessable(f"a firewall can have at most {MAX_TAGS} tags")


def rule_json(rule: Rule, direction: Direction) -> dict[str, Any]:
    targets = {
        key: list(getattr(rule.targets, key)) for key in TARGET_KEYS if getattr(rule.targets, key)
    }
    return {"protocol": rule.protocol, "ports": rule.ports, _TARGETS_KEY[direction]: targets}


def normalise_ports(protocol: str, ports: str) -> str:
    """``"0"`` and ``"all"`` mean every port and read back as ``"0"``; ICMP has no ports."""
    if protocol == "icmp" or ports in ("0", "all"):
        return "0"
    found = _PORT_RANGE.fullmatch(ports)
    if found is None:
        raise unprocessable(f"invalid ports {ports!r}: use a port, a range 'low-high' or '0'")
    low = int(found.group(1))
    high = int(found.group(2) or low)
    if not 1 <= low <= high <= 65535:
        raise unprocessable(f"invalid ports {ports!r}: ports run from 1 to 65535, low first")
    return str(low) if found.group(2) is None else f"{low}-{high}"


def _rules(value: Any, direction: Direction) -> list[Rule]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise bad_request(f"{direction}_rules must be a list")
    return [_rule(item, direction) for item in value]


def _rule(value: Any, direction: Direction) -> Rule:
    fields = _object(value, f"an {direction} rule")
    protocol = fields.get("protocol")
    if protocol not in ("tcp", "udp", "icmp"):
        raise unprocessable(f"invalid protocol {protocol!r}: use tcp, udp or icmp")
    ports = fields.get("ports")
    if not isinstance(ports, str):
        raise bad_request("ports must be a string")
    targets_key = _TARGETS_KEY[direction]
    targets = _targets(fields.get(targets_key), targets_key)
    return Rule(protocol, normalise_ports(protocol, ports), targets)


def _targets(value: Any, what: str) -> Targets:
    fields = _object(value, what)
    addresses = _str_list(fields.get("addresses"), f"{what}.addresses")
    for address in addresses:
        try:
            ipaddress.ip_network(address, strict=False)
        except ValueError:
            raise unprocessable(f"invalid address {address!r}") from None
    targets = Targets(
        addresses=tuple(addresses),
        droplet_ids=tuple(_int_list(fields.get("droplet_ids"), f"{what}.droplet_ids")),
        load_balancer_uids=tuple(
            _str_list(fields.get("load_balancer_uids"), f"{what}.load_balancer_uids")
        ),
        kubernetes_ids=tuple(_str_list(fields.get("kubernetes_ids"), f"{what}.kubernetes_ids")),
        tags=tuple(parse_tag_list(fields.get("tags"), f"{what}.tags")),
    )
    if not any(getattr(targets, key) for key in TARGET_KEYS):
        raise unprocessable(f"a rule needs at least one entry in {what}")
    return targets


def _object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise bad_request(f"{what} must be a JSON object")
    return cast(dict[str, Any], value)


def _str_list(value: Any, what: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise bad_request(f"{what} must be a list of strings")
    return list(cast(list[str], value))


def _int_list(value: Any, what: str) -> list[int]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(
        isinstance(item, int) and not isinstance(item, bool) for item in value
    ):
        raise bad_request(f"{what} must be a list of integers")
    return list(dict.fromkeys(cast(list[int], value)))
