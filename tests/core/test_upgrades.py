"""Surge upgrades of a node pool: new nodes join, then the old ones are cordoned and drained
one by one. An IP that must move prefers the newest kubelet version, so it moves once."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

import pytest

from floating_ip.core.model import Node, Observation
from floating_ip.core.plan import plan
from floating_ip.core.upgrades import newest_first, version_key
from tests.core.builders import IP_A, IP_B, IP_C, node, observe, rip, svc
from tests.core.simulator import apply

OLD, NEW = "v1.30.4", "v1.31.1"
OLD_NODES = ("n1", "n2", "n3")
NEW_NODES = ("n4", "n5", "n6")


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("v1.31.1", (1, 31, 1)),
        ("1.31.10", (1, 31, 10)),
        ("v1.31.1-do.0", (1, 31, 1)),
        ("v1.31.1+k3s1", (1, 31, 1)),
        ("", ()),
        (None, ()),
        ("garbled", ()),
    ],
)
def test_version_keys(text: str | None, key: tuple[int, ...]) -> None:
    assert version_key(text) == key


def test_newest_first_keeps_the_preference_within_a_version() -> None:
    versions = {"a": OLD, "b": NEW, "c": OLD, "d": NEW}
    assert newest_first(("a", "b", "c", "d"), versions) == ("b", "d", "a", "c")
    assert newest_first(("c", "a"), {}) == ("c", "a"), "no versions: unchanged"


def upgraded(name: str, version: str, *, cordoned: bool = False) -> Node:
    return replace(node(name, unschedulable=cordoned), kubelet_version=version)


def settle(world: Observation) -> tuple[Observation, int]:
    """Plan and apply until a plan is empty; the assignments made."""
    moves = 0
    for _ in range(4):
        decided = plan(world)
        if decided.is_empty:
            return world, moves
        moves += len(decided.assignments)
        world = apply(world, decided)
    raise AssertionError("no empty plan")


SERVICES = (("web", IP_A, 80), ("dns", IP_B, 53), ("mail", IP_C, 25))


def surge(
    new_version: str, ips: int, services_of: tuple[tuple[str, str, int], ...] = SERVICES
) -> int:
    """``ips`` IPs on an old pool of three nodes with a pod each (a DaemonSet), the pool
    replaced by a new one: the moves it takes."""
    chosen = services_of[:ips]
    everywhere = (*OLD_NODES, *NEW_NODES)
    services = [svc(name, ip, on=everywhere, tcp=[port]) for name, ip, port in chosen]
    nodes = [upgraded(name, OLD) for name in OLD_NODES]
    held = [rip(ip, on=old) for (_, ip, _), old in zip(chosen, OLD_NODES, strict=False)]
    world = observe(*services, nodes=nodes, ips=held)
    world, _ = settle(world)
    # The new nodes join (their pods become ready), then each old node is cordoned and goes.
    world = replace(world, nodes=(*nodes, *(upgraded(n, new_version) for n in NEW_NODES)))
    world, moves = settle(world)
    for old in OLD_NODES:
        cordoned = tuple(
            upgraded(n.name, OLD, cordoned=True) if n.name == old else n for n in world.nodes
        )
        world, moved = settle(replace(world, nodes=cordoned))
        moves += moved
        world = replace(world, nodes=tuple(n for n in world.nodes if n.name != old))
        world, moved = settle(world)
        moves += moved
    assert {ip.droplet_id for ip in world.reserved_ips} <= {104, 105, 106}
    return moves


@pytest.mark.parametrize("ips", [1, 2, 3])
def test_a_surge_upgrade_moves_each_ip_once(ips: int) -> None:
    assert surge(NEW, ips) == ips


def test_over_a_hundred_addresses_one_move_each_where_the_rendezvous_order_took_143() -> None:
    """A lone IP, for 100 different addresses. By the rendezvous order alone (every node the
    same version: what the order did before) it hops from old node to old node: 62 moved
    once, 33 twice, 5 three times (143 moves). Newest first: 100 moves."""
    counts = {}
    for version in (OLD, NEW):
        counts[version] = Counter(
            surge(version, 1, (("web", f"203.0.113.{i}", 80),)) for i in range(1, 101)
        )
    assert counts[NEW] == Counter({1: 100})
    assert counts[OLD] == Counter({1: 62, 2: 33, 3: 5})
