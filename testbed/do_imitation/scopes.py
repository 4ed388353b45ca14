"""Custom-scoped tokens: the scope a call needs, as DigitalOcean names them
(``<resource>:<read|create|update|delete>``), so a token without it gets 403."""

from __future__ import annotations

FORBIDDEN = {"id": "forbidden", "message": "You are not authorized to perform this operation"}
_RESOURCES = {
    "reserved_ips": "reserved_ip",
    "droplets": "droplet",
    "firewalls": "firewall",
    "kubernetes": "kubernetes",
    "tags": "tag",
    "actions": "actions",
    "account": "account",
}


def required_scope(method: str, path: str) -> str | None:
    """``reserved_ip:read`` for ``GET /v2/reserved_ips``; None for a path outside /v2/."""
    parts = [p for p in path.split("/") if p]
    if len(parts) < 2 or parts[0] != "v2":
        return None
    resource = _RESOURCES.get(parts[1], parts[1])
    if method == "GET":
        return f"{resource}:read"
    if method == "POST" and len(parts) == 2:
        return f"{resource}:create"
    if method == "DELETE" and len(parts) == 3:
        return f"{resource}:delete"
    return f"{resource}:update"
