"""A surge node-pool upgrade on the real apiserver and the DigitalOcean imitation: three new
nodes of a newer kubelet version join, then the three old ones are cordoned, drained and
deleted one by one; the IP moves once, onto a new node. (By the rendezvous order alone it
moved 1.43 times on average, up to 3: tests/core/test_upgrades.py.)"""

from __future__ import annotations

from floating_ip_common import contract
from testbed.doks import DoksWorld
from testbed.function_harness import TRAEFIK_PORTS, FunctionRunner
from testbed.kube import KubeBed

IP = "192.0.2.80"
ASSIGN = "/v2/reserved_ips/{reserved_ip}/actions"
OLD, NEW = "v1.30.4", "v1.31.1"


def test_a_surge_upgrade_moves_the_ip_once_onto_a_node_that_stays(
    runner: FunctionRunner, world: DoksWorld, kube: KubeBed, namespace: str
) -> None:
    world.do.add_reserved_ip(IP, region=world.region)
    world.kube.create_service(
        namespace, "traefik", TRAEFIK_PORTS, annotations={contract.ADDRESS: IP}
    )
    for old in ("a", "b", "c"):  # an ingress DaemonSet: a pod on every node
        world.kube.set_kubelet_version(world.node(old), OLD)
        world.kube.create_pod(namespace, f"traefik-{old}", world.node(old), {"app": "traefik"})
    world.kube.sync_endpoint_slices(namespace, "traefik")
    runner.ok()
    assert world.holder_of(IP) in ("a", "b", "c")
    placed = world.do.count("POST", ASSIGN)

    for new in ("d", "e", "f"):  # the surge: new nodes first
        world.add_node(new)
        world.kube.set_kubelet_version(world.node(new), NEW)
        world.kube.create_pod(namespace, f"traefik-{new}", world.node(new), {"app": "traefik"})
    world.kube.sync_endpoint_slices(namespace, "traefik")
    runner.ok()
    for old in ("a", "b", "c"):  # then each old node: cordoned, drained, deleted
        world.kube.cordon(world.node(old))
        runner.ok()
        world.kube.delete_pod(namespace, f"traefik-{old}")
        world.kube.sync_endpoint_slices(namespace, "traefik")
        runner.ok()
        world.kube.delete_node(world.node(old))
        del world.droplets[old]  # gone from the pool (the fixture removes the rest)
        runner.ok()

    assert world.holder_of(IP) in ("d", "e", "f")
    assert world.do.count("POST", ASSIGN) - placed == 1, "one move for the whole upgrade"
