"""Rendezvous (highest-random-weight) order of nodes for one IP, as MetalLB ranks them.

Every run computes the same order from the same names, and adding or removing one node only
changes the winner for the IPs that node wins or loses.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable


def rank_key(node_name: str, ip: str) -> bytes:
    """The node's weight for ``ip``: ``sha256("<node>#<ip>")``; smaller sorts first."""
    return hashlib.sha256(f"{node_name}#{ip}".encode()).digest()


def rendezvous_order(ip: str, node_names: Iterable[str]) -> tuple[str, ...]:
    """The node names in preference order for ``ip`` (ties, never seen, fall back to name)."""
    return tuple(sorted(set(node_names), key=lambda name: (rank_key(name, ip), name)))
