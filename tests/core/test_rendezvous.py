"""Rendezvous order: MetalLB's sha256("<node>#<ip>") ranking, stable and minimally disruptive."""

from __future__ import annotations

import hashlib
from collections import Counter

import pytest

from floating_ip.core.rendezvous import rendezvous_order

NODES = [f"pool-a-{i}" for i in range(8)]
IPS = [f"203.0.113.{i}" for i in range(1, 41)]


def metallb_order(ip: str, names: list[str]) -> list[str]:
    """The order written down independently: smallest digest of ``node#ip`` first."""
    return sorted(names, key=lambda name: hashlib.sha256(f"{name}#{ip}".encode()).digest())


@pytest.mark.parametrize("ip", IPS[:5])
def test_order_is_metallbs(ip: str) -> None:
    assert list(rendezvous_order(ip, NODES)) == metallb_order(ip, NODES)


def test_order_ignores_input_order_and_duplicates() -> None:
    for ip in IPS:
        assert rendezvous_order(ip, NODES) == rendezvous_order(ip, [*reversed(NODES), NODES[0]])


def test_ips_spread_over_nodes() -> None:
    """No node is always preferred or never preferred: each is first for some of the 40 IPs
    and last for some, and none is first for more than twice its fair share (5)."""
    first = Counter(rendezvous_order(ip, NODES)[0] for ip in IPS)
    last = Counter(rendezvous_order(ip, NODES)[-1] for ip in IPS)
    assert set(first) == set(last) == set(NODES)
    assert max(first.values()) <= 2 * len(IPS) // len(NODES)


@pytest.mark.parametrize("gone", NODES[:3])
def test_removing_a_node_only_moves_the_ips_it_won(gone: str) -> None:
    remaining = [name for name in NODES if name != gone]
    for ip in IPS:
        before = rendezvous_order(ip, NODES)[0]
        after = rendezvous_order(ip, remaining)[0]
        assert before in (after, gone)
