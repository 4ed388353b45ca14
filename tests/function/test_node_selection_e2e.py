"""The node-selector annotation on the real control plane and the DigitalOcean imitation: the
IP goes only to a node of the selected pool, and leaves one that stops being selected."""

from __future__ import annotations

from floating_ip_common import contract
from testbed.doks import DoksWorld
from testbed.function_harness import TRAEFIK_PORTS, FunctionRunner
from testbed.kube import KubeBed

IP = "192.0.2.30"
POOL = "doks.digitalocean.com/node-pool"


def test_the_ip_stays_on_the_selected_pool(
    runner: FunctionRunner, world: DoksWorld, kube: KubeBed, namespace: str
) -> None:
    world.kube.label_node(world.node("b"), {POOL: "ingress"})
    world.do.add_reserved_ip(IP, region=world.region)
    world.kube.create_service(
        namespace,
        "traefik",
        TRAEFIK_PORTS,
        annotations={contract.ADDRESS: IP, contract.NODE_SELECTOR: f"{POOL}=ingress"},
    )
    for node in ("a", "b"):
        world.kube.create_pod(namespace, f"traefik-{node}", world.node(node), {"app": "traefik"})
    world.kube.sync_endpoint_slices(namespace, "traefik")

    report = runner.ok()
    assert world.holder_of(IP) == "b"
    [verdicts] = [s["nodes"] for s in report["services"]]
    reasons = {v["node_name"]: v["reasons"] for v in verdicts}
    assert reasons[world.node("a")] == ["OutsideNodeSelector"]

    # The pool is relabelled (a node-pool replacement, say): b is no longer selected, a is.
    world.kube.label_node(world.node("b"), {POOL: "web"})
    world.kube.label_node(world.node("a"), {POOL: "ingress"})
    runner.ok()
    assert world.holder_of(IP) == "a"
    svc = kube.core.read_namespaced_service("traefik", namespace)
    assert svc.spec.external_ips == [world.droplets["a"].anchor_ip]

    # No node selected: the IP stays, and the status says why, naming the node's reason.
    world.kube.label_node(world.node("a"), {POOL: "web"})
    runner.ok()
    assert world.holder_of(IP) == "a"
    status = kube.core.read_namespaced_service("traefik", namespace).metadata.annotations[
        contract.STATUS
    ]
    assert f"{world.node('a')}: OutsideNodeSelector" in status
