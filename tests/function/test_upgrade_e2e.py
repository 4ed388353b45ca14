"""A surge node-pool upgrade on the real apiserver and the DigitalOcean imitation: three new
nodes join, then the three old ones are cordoned, drained and deleted one by one. With the
new nodes on a newer kubelet the IP moves once, onto a new node; with every node on the same
version (what a cluster gives when the preference cannot tell nodes apart, and what the
rendezvous order alone did before it) the same upgrade takes the moves the order gives."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from floating_ip.core.rendezvous import rendezvous_order
from floating_ip_common import contract
from testbed.doks import DoksWorld
from testbed.function_harness import TRAEFIK_PORTS, FunctionRunner
from testbed.kube import KubeBed

IP = "192.0.2.80"
ASSIGN = "/v2/reserved_ips/{reserved_ip}/actions"
OLD, NEW = "v1.30.4", "v1.31.1"
POOL = "ingress"
NAMES = "bed"
"""The node names' suffix, fixed (``ingress-old-1-bed`` ...): the rendezvous order ranks
``sha256("<node>#<ip>")``, so with fixed names and a fixed IP the moves are the same on every
run."""
ORDER = ("old-2", "old-3", "new-1", "new-2", "new-3", "old-1")
"""The rendezvous order of ``IP`` over these six nodes."""
WITHOUT_THE_PREFERENCE = 2
"""By that order alone the IP starts on old-2 (the first old node); draining old-1 leaves it;
draining old-2 sends it to old-3 (the next fit node in the order, an old one), and draining
old-3 to new-1: two moves. With the newer kubelet first, draining old-2 sends it straight to
new-1. Of 100 addresses, 62 move once by the order alone, 33 twice (as this one) and 5 three
times (``tests/core/test_upgrades.py``)."""


MOVES: dict[str, int] = {}
"""The upgrade's moves, with and without the preference, for the report."""


@pytest.fixture(scope="module", autouse=True)
def report_moves() -> Iterator[None]:
    """Run with ``-s``: today's count beside the rendezvous order's."""
    yield
    if len(MOVES) == 2:
        print(f"\nmoves: {MOVES['without']} without the preference, {MOVES['with']} with it")


def replace_the_pool(
    runner: FunctionRunner, world: DoksWorld, namespace: str, name: str, new_version: str
) -> int:
    """An ingress DaemonSet (a pod on every node) on a pool of three nodes on kubelet OLD,
    its Service naming ``IP``; the pool replaced by a surge upgrade to ``new_version``. The
    assignments the upgrade took."""
    world.kube.create_service(namespace, name, TRAEFIK_PORTS, annotations={contract.ADDRESS: IP})
    old_pool = [f"{name}-old-{i}" for i in (1, 2, 3)]
    new_pool = [f"{name}-new-{i}" for i in (1, 2, 3)]
    for old in old_pool:
        world.add_node(old)
        world.kube.set_kubelet_version(world.node(old), OLD)
        world.kube.create_pod(namespace, f"pod-{old}", world.node(old), {"app": name})
    world.kube.sync_endpoint_slices(namespace, name)
    runner.ok()
    assert world.holder_of(IP) in old_pool
    placed = world.do.count("POST", ASSIGN)

    for new in new_pool:  # the surge: new nodes first
        world.add_node(new)
        world.kube.set_kubelet_version(world.node(new), new_version)
        world.kube.create_pod(namespace, f"pod-{new}", world.node(new), {"app": name})
    world.kube.sync_endpoint_slices(namespace, name)
    runner.ok()
    for old in old_pool:  # then each old node: cordoned, drained, deleted
        world.kube.cordon(world.node(old))
        runner.ok()
        world.kube.delete_pod(namespace, f"pod-{old}")
        world.kube.sync_endpoint_slices(namespace, name)
        runner.ok()
        world.kube.delete_node(world.node(old))
        del world.droplets[old]  # gone from the pool (the fixture removes the rest)
        runner.ok()
    assert world.holder_of(IP) in new_pool
    return world.do.count("POST", ASSIGN) - placed


def test_a_surge_upgrade_moves_the_ip_once_onto_a_node_that_stays(
    runner: FunctionRunner, world: DoksWorld, kube: KubeBed, namespace: str
) -> None:
    world.suffix = NAMES
    world.do.add_reserved_ip(IP, region=world.region)
    MOVES["with"] = replace_the_pool(runner, world, namespace, POOL, NEW)
    assert MOVES["with"] == 1, "one move for the whole upgrade"


def test_without_the_preference_the_same_upgrade_takes_the_rendezvous_orders_moves(
    runner: FunctionRunner, world: DoksWorld, kube: KubeBed, namespace: str
) -> None:
    world.suffix = NAMES
    world.do.add_reserved_ip(IP, region=world.region)
    names = [f"{POOL}-{node}-{NAMES}" for node in ORDER]
    assert rendezvous_order(IP, names) == tuple(names)
    MOVES["without"] = replace_the_pool(runner, world, namespace, POOL, OLD)
    assert MOVES["without"] == WITHOUT_THE_PREFERENCE
