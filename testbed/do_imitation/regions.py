"""The regions the imitation knows, rendered the way the API renders a region object."""

from __future__ import annotations

from typing import Any

REGION_NAMES: dict[str, str] = {
    "ams3": "Amsterdam 3",
    "blr1": "Bangalore 1",
    "fra1": "Frankfurt 1",
    "lon1": "London 1",
    "nyc1": "New York 1",
    "nyc2": "New York 2",
    "nyc3": "New York 3",
    "sfo2": "San Francisco 2",
    "sfo3": "San Francisco 3",
    "sgp1": "Singapore 1",
    "syd1": "Sydney 1",
    "tor1": "Toronto 1",
}

_FEATURES = ["backups", "ipv6", "metadata", "install_agent", "storage", "image_transfer"]
SIZES = ["s-1vcpu-1gb", "s-1vcpu-2gb", "s-2vcpu-2gb", "s-2vcpu-4gb", "s-4vcpu-8gb"]


def check_region(slug: str) -> str:
    """``slug`` itself, or ValueError naming the known regions (for seeding mistakes)."""
    if slug not in REGION_NAMES:
        known = ", ".join(sorted(REGION_NAMES))
        raise ValueError(f"unknown region {slug!r}; the imitation knows {known}")
    return slug


def region_json(slug: str) -> dict[str, Any]:
    return {
        "name": REGION_NAMES[slug],
        "slug": slug,
        "features": list(_FEATURES),
        "available": True,
        "sizes": list(SIZES),
    }
