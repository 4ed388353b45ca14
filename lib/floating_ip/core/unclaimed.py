"""Reserved IPs on this cluster's nodes that no Service names any more.

Such an IP stays assigned unless the user opted in to releasing it
(``Cluster.unassign_unclaimed``): it may serve something this function does not know about.
A locked IP is left alone (DigitalOcean would refuse the action), and so is an IP on a droplet
that is not a node of this cluster.
"""

from __future__ import annotations

from collections.abc import Iterable

from floating_ip.core.annotations import Intent
from floating_ip.core.model import Observation, Unclaimed
from floating_ip_common import contract


def named_addresses(intents: Iterable[Intent]) -> frozenset[str]:
    """Every address an opted-in Service names, placed, refused or in conflict alike; the raw
    text too, so a Service whose annotation does not parse still keeps what it meant."""
    named: set[str] = set()
    for intent in intents:
        raw = intent.service.annotation(contract.ADDRESS)
        named.update(text for text in (intent.address, raw and raw.strip()) if text)
    return frozenset(named)


def unclaimed_ips(observation: Observation, named: frozenset[str]) -> tuple[Unclaimed, ...]:
    """``named``: the addresses opted-in Services name (as parsed, and as written)."""
    nodes = {node.droplet_id: node for node in observation.nodes if node.droplet_id is not None}
    release = observation.cluster.unassign_unclaimed
    found: list[Unclaimed] = []
    for reserved in observation.reserved_ips:
        droplet = reserved.droplet_id
        if droplet is None or droplet not in nodes or reserved.ip in named or reserved.locked:
            continue
        found.append(Unclaimed(reserved.ip, droplet, nodes[droplet].name, release))
    return tuple(sorted(found, key=lambda item: item.ip))
