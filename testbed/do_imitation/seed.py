"""Seed documents: a whole account described in JSON, for demos and other processes.

    {
      "tokens": ["dop_v1_..."],
      "tags": ["env:prod"],
      "clusters": [{"id": "<uuid>", "name": "prod", "region": "nyc3",
                    "nodes": [{"pool": "pool-1", "id": 101, "name": "pool-1-a",
                               "public_ipv4": "203.0.113.10", "private_ipv4": "10.110.0.2"}]}],
      "droplets": [{"id": 7, "name": "web", "region": "nyc3", "tags": ["web"],
                    "public_ipv4": "203.0.113.7", "private_ipv4": "10.110.0.7"}],
      "reserved_ips": [{"ip": "192.0.2.10", "region": "nyc3", "droplet_id": 101}],
      "firewalls": [{"name": "web", "inbound_rules": [...], "tags": ["web"]}]
    }

Every key is optional; they are applied in this order, so later items may refer to earlier.
"""

from __future__ import annotations

from typing import Any

from testbed.do_imitation.app import ImitationApp

_DROPLET_FIELDS = {"id", "name", "region", "tags", "public_ipv4", "private_ipv4", "size_slug"}
_NODE_FIELDS = {"pool", "id", "name", "public_ipv4", "private_ipv4"}
_CLUSTER_FIELDS = {"id", "name", "region", "version"}
_RESERVED_FIELDS = {"ip", "region", "droplet_id"}
_KEYS = ("tokens", "tags", "clusters", "droplets", "reserved_ips", "firewalls")


def apply_seed(target: ImitationApp, document: Any) -> dict[str, list[Any]]:
    """Create what ``document`` describes; the ids made, by kind."""
    if not isinstance(document, dict):
        raise ValueError("a seed document is a JSON object")
    unknown = set(document) - set(_KEYS)
    if unknown:
        raise ValueError(f"unknown seed keys {sorted(unknown)}; known: {list(_KEYS)}")
    made: dict[str, list[Any]] = {
        "clusters": [],
        "droplets": [],
        "reserved_ips": [],
        "firewalls": [],
    }
    for token in _items(document, "tokens", str):
        target.add_token(token)
    for tag in _items(document, "tags", str):
        target.add_tag(tag)
    for cluster in _items(document, "clusters", dict):
        nodes = cluster.get("nodes", [])
        cluster_id = target.add_cluster(**_only(cluster, _CLUSTER_FIELDS, {"nodes"}, "cluster"))
        made["clusters"].append(cluster_id)
        for node in nodes:
            droplet = target.add_doks_node(cluster_id, **_only(node, _NODE_FIELDS, set(), "node"))
            made["droplets"].append(droplet.id)
    for droplet in _items(document, "droplets", dict):
        made["droplets"].append(
            target.add_droplet(**_only(droplet, _DROPLET_FIELDS, set(), "droplet")).id
        )
    for reserved in _items(document, "reserved_ips", dict):
        made["reserved_ips"].append(
            target.add_reserved_ip(**_only(reserved, _RESERVED_FIELDS, set(), "reserved IP"))
        )
    for firewall in _items(document, "firewalls", dict):
        made["firewalls"].append(target.add_firewall(firewall))
    return made


def _items(document: dict[str, Any], key: str, kind: type) -> list[Any]:
    items = document.get(key, [])
    if not isinstance(items, list) or not all(isinstance(item, kind) for item in items):
        raise ValueError(f"seed {key} must be a list of {kind.__name__}")
    return items


def _only(
    fields: dict[str, Any], allowed: set[str], skipped: set[str], what: str
) -> dict[str, Any]:
    unknown = set(fields) - allowed - skipped
    if unknown:
        raise ValueError(f"unknown {what} fields {sorted(unknown)}; known: {sorted(allowed)}")
    return {key: value for key, value in fields.items() if key in allowed}
