"""Records rendered as the API's JSON objects, and list pagination.

Objects carry every field the spec marks required, with realistic values, so a client that
reads a field the real API sends finds it here too.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from math import ceil
from typing import Any, TypeVar
from urllib.parse import urlencode

from testbed.do_imitation.firewall_rules import rule_json
from testbed.do_imitation.model import Action, Cluster, Droplet, Firewall, ReservedIp
from testbed.do_imitation.regions import region_json

T = TypeVar("T")

DROPLET_SIZES: dict[str, tuple[int, int, int, float]] = {  # memory MB, vcpus, disk GB, $/month
    "s-1vcpu-1gb": (1024, 1, 25, 6.0),
    "s-1vcpu-2gb": (2048, 1, 50, 12.0),
    "s-2vcpu-2gb": (2048, 2, 60, 18.0),
    "s-2vcpu-4gb": (4096, 2, 80, 24.0),
    "s-4vcpu-8gb": (8192, 4, 160, 48.0),
}


def droplet_json(droplet: Droplet) -> dict[str, Any]:
    memory, vcpus, disk, monthly = DROPLET_SIZES[droplet.size_slug]
    return {
        "id": droplet.id,
        "name": droplet.name,
        "memory": memory,
        "vcpus": vcpus,
        "disk": disk,
        "disk_info": [{"type": "local", "size": {"amount": disk, "unit": "gib"}}],
        "locked": False,
        "status": "active",
        "kernel": None,
        "created_at": droplet.created_at,
        "features": ["monitoring", "droplet_agent", "private_networking"],
        "backup_ids": [],
        "next_backup_window": None,
        "snapshot_ids": [],
        "image": {
            "id": 170000001,
            "name": "doks-worker",
            "type": "admin",
            "distribution": "Debian",
            "slug": None,
            "public": False,
            "regions": [droplet.region],
            "created_at": "2025-01-01T00:00:00Z",
            "min_disk_size": 20,
            "size_gigabytes": 3.1,
            "description": "",
            "tags": [],
            "status": "available",
            "error_message": "",
        },
        "volume_ids": [],
        "size": {
            "slug": droplet.size_slug,
            "memory": memory,
            "vcpus": vcpus,
            "disk": disk,
            "transfer": 4.0,
            "price_monthly": monthly,
            "price_hourly": round(monthly / 672, 5),
            "regions": [droplet.region],
            "available": True,
            "description": "Basic",
        },
        "size_slug": droplet.size_slug,
        "networks": {
            "v4": [
                {
                    "ip_address": droplet.private_ipv4,
                    "netmask": "255.255.240.0",
                    "gateway": "<nil>",
                    "type": "private",
                },
                {
                    "ip_address": droplet.public_ipv4,
                    "netmask": "255.255.240.0",
                    "gateway": _gateway(droplet.public_ipv4),
                    "type": "public",
                },
            ],
            "v6": [],
        },
        "region": region_json(droplet.region),
        "tags": list(droplet.tags),
        "vpc_uuid": droplet.vpc_uuid,
    }


def reserved_ip_json(reserved: ReservedIp, holder: Droplet | None, locked: bool) -> dict[str, Any]:
    return {
        "ip": reserved.ip,
        "region": region_json(reserved.region),
        "droplet": None if holder is None else droplet_json(holder),
        "locked": locked,
        "project_id": reserved.project_id,
    }


def action_json(action: Action, *, with_project: bool) -> dict[str, Any]:
    rendered: dict[str, Any] = {
        "id": action.id,
        "status": action.status,
        "type": action.type,
        "started_at": action.started_at,
        "completed_at": action.completed_at,
        # The API numbers a reserved IP by its address read as a 32-bit integer.
        "resource_id": int(ipaddress.IPv4Address(action.ip)),
        "resource_type": "reserved_ip",
        "region": region_json(action.region),
        "region_slug": action.region,
    }
    if with_project:
        rendered["project_id"] = action.project_id
    return rendered


def firewall_json(firewall: Firewall) -> dict[str, Any]:
    return {
        "id": firewall.id,
        "name": firewall.name,
        "status": "succeeded",
        "inbound_rules": [rule_json(rule, "inbound") for rule in firewall.inbound_rules],
        "outbound_rules": [rule_json(rule, "outbound") for rule in firewall.outbound_rules],
        "created_at": firewall.created_at,
        "droplet_ids": list(firewall.droplet_ids),
        "tags": list(firewall.tags),
        "pending_changes": [],
    }


def cluster_json(cluster: Cluster) -> dict[str, Any]:
    worker_tags = ["k8s", cluster.tag, "k8s:worker"]
    return {
        "id": cluster.id,
        "name": cluster.name,
        "region": cluster.region,
        "version": cluster.version,
        "cluster_subnet": "10.244.0.0/16",
        "service_subnet": "10.245.0.0/16",
        "vpc_uuid": cluster.vpc_uuid,
        "ipv4": "",
        "endpoint": f"https://{cluster.id}.k8s.ondigitalocean.com",
        "tags": ["k8s", cluster.tag],
        "node_pools": [
            {
                "id": pool.id,
                "name": pool.name,
                "size": pool.size,
                "count": len(pool.nodes),
                "tags": worker_tags,
                "labels": None,
                "taints": [],
                "auto_scale": False,
                "min_nodes": 0,
                "max_nodes": 0,
                "nodes": [
                    {
                        "id": node.id,
                        "name": node.name,
                        "status": {"state": "running"},
                        "droplet_id": str(node.droplet_id),  # a string, as the spec says
                        "created_at": node.created_at,
                        "updated_at": node.created_at,
                    }
                    for node in pool.nodes
                ],
            }
            for pool in cluster.node_pools
        ],
        "maintenance_policy": {"start_time": "00:00", "duration": "4h0m0s", "day": "any"},
        "auto_upgrade": False,
        "status": {"state": "running"},
        "created_at": cluster.created_at,
        "updated_at": cluster.created_at,
        "surge_upgrade": True,
        "registry_enabled": False,
        "ha": False,
    }


def tag_json(name: str, droplet_ids: Sequence[int], base_url: str) -> dict[str, Any]:
    droplets: dict[str, Any] = {"count": len(droplet_ids)}
    if droplet_ids:
        droplets["last_tagged_uri"] = f"{base_url}/v2/droplets/{droplet_ids[-1]}"
    resources: dict[str, Any] = {"count": len(droplet_ids), "droplets": droplets}
    if droplet_ids:
        resources["last_tagged_uri"] = droplets["last_tagged_uri"]
    for kind in ("images", "volumes", "volume_snapshots", "databases"):
        resources[kind] = {"count": 0}
    return {"name": name, "resources": resources}


def paginate(
    items: Sequence[T], page: int, per_page: int, list_url: str, extra_query: dict[str, str]
) -> tuple[list[T], dict[str, Any]]:
    """One page of ``items`` and the ``links`` object that goes with it."""
    last = max(1, ceil(len(items) / per_page))
    start = (page - 1) * per_page
    chosen = list(items[start : start + per_page])

    def url(number: int) -> str:
        return f"{list_url}?{urlencode({**extra_query, 'page': number, 'per_page': per_page})}"

    pages: dict[str, str] = {}
    if page > 1:
        pages["first"] = url(1)
        pages["prev"] = url(min(page - 1, last))
    if page < last:
        pages["last"] = url(last)
        pages["next"] = url(page + 1)
    return chosen, ({"pages": pages} if pages else {})


def _gateway(address: str) -> str:
    network = ipaddress.IPv4Network(f"{address}/20", strict=False)
    return str(network.network_address + 1)
