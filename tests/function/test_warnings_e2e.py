"""Every misconfiguration ends in a Warning Event and a status line on the Service, a 200
answer (the reconcile ran), and no write to anything it concerns."""

from __future__ import annotations

import contextlib

import pytest
from kubernetes.client.exceptions import ApiException

from floating_ip_common import contract
from testbed.doks import DoksWorld
from testbed.function_harness import TRAEFIK_PORTS, FunctionRunner
from testbed.kube import KubeBed, Port

IP = "192.0.2.20"
# Run in both modes, as the placement tests (see test_placement_e2e.py).
pytestmark = pytest.mark.parametrize("cluster_access", ["callback", "relay"])


def warnings(kube: KubeBed, namespace: str) -> set[str]:
    return {
        e.reason for e in kube.core.list_namespaced_event(namespace).items if e.type == "Warning"
    }


def status(kube: KubeBed, namespace: str, name: str = "web") -> str:
    service = kube.core.read_namespaced_service(name, namespace)
    return str(service.metadata.annotations.get(contract.STATUS, ""))


def web(
    world: DoksWorld,
    namespace: str,
    *,
    node: str = "a",
    ready: bool = True,
    name: str = "web",
    ports: list[Port] | None = None,
    service_type: str = "NodePort",
    **annotations: str,
) -> None:
    """A Service as the docs advise (``NodePort``, ``Local``) unless told otherwise."""
    world.kube.create_service(
        namespace,
        name,
        ports or TRAEFIK_PORTS,
        selector={"app": "web"},
        annotations={contract.ADDRESS: IP, **annotations},
        service_type=service_type,
        external_traffic_policy="Local" if service_type != "ClusterIP" else None,
    )
    pod = f"web-{node}"
    with contextlib.suppress(ApiException):  # the pod already exists for a second Service
        world.kube.create_pod(namespace, pod, world.node(node), {"app": "web"}, ready=ready)
    world.kube.sync_endpoint_slices(namespace, name)


@pytest.mark.parametrize(
    ("annotations", "needle"),
    [
        ({contract.ADDRESS: "not-an-ip"}, contract.ADDRESS),
        ({contract.FIREWALL: "maybe"}, contract.FIREWALL),
        ({contract.FIREWALL_SOURCES: "10.0.0.0/33"}, contract.FIREWALL_SOURCES),
    ],
    ids=["address", "firewall", "firewall-sources"],
)
def test_invalid_annotation(
    runner: FunctionRunner,
    world: DoksWorld,
    kube: KubeBed,
    namespace: str,
    annotations: dict[str, str],
    needle: str,
) -> None:
    world.do.add_reserved_ip(IP, region=world.region)
    web(world, namespace, **annotations)
    runner.ok()
    assert "InvalidAnnotation" in warnings(kube, namespace)
    assert needle in status(kube, namespace)


def test_ip_not_in_the_account(
    runner: FunctionRunner, world: DoksWorld, kube: KubeBed, namespace: str
) -> None:
    web(world, namespace)
    runner.ok()
    assert "IPNotInAccount" in warnings(kube, namespace)
    assert runner.do_writes() == []


def test_ip_in_another_region(
    runner: FunctionRunner, world: DoksWorld, kube: KubeBed, namespace: str
) -> None:
    world.do.add_reserved_ip(IP, region="fra1")
    web(world, namespace)
    runner.ok()
    assert "WrongRegion" in warnings(kube, namespace)
    assert "fra1" in status(kube, namespace)
    assert not [w for w in runner.do_writes() if "reserved_ips" in w]


def test_two_services_claiming_one_ip_on_the_same_port(
    runner: FunctionRunner, world: DoksWorld, kube: KubeBed, namespace: str
) -> None:
    world.do.add_reserved_ip(IP, region=world.region)
    # Created within one second, so the tie-break (name) decides: "alpha" keeps the IP.
    web(world, namespace, name="alpha")
    web(world, namespace, name="beta")
    runner.ok()
    assert "IPConflict" in warnings(kube, namespace)
    assert "alpha" in status(kube, namespace, "beta")
    assert world.holder_of(IP) == "a"
    anchor = world.droplets["a"].anchor_ip
    assert kube.core.read_namespaced_service("alpha", namespace).spec.external_ips == [anchor]
    assert not kube.core.read_namespaced_service("beta", namespace).spec.external_ips


def test_two_services_sharing_one_ip_on_different_ports(
    runner: FunctionRunner, world: DoksWorld, kube: KubeBed, namespace: str
) -> None:
    world.do.add_reserved_ip(IP, region=world.region)
    web(world, namespace, name="web", ports=[Port(80)])
    web(world, namespace, name="dns", ports=[Port(53, "UDP")])
    runner.ok()
    assert warnings(kube, namespace) == set()
    assert world.holder_of(IP) == "a"
    anchor = world.droplets["a"].anchor_ip
    for name in ("web", "dns"):
        assert kube.core.read_namespaced_service(name, namespace).spec.external_ips == [anchor]


def test_a_clusterip_service_is_placed_and_told_it_loses_the_clients_address(
    runner: FunctionRunner, world: DoksWorld, kube: KubeBed, namespace: str
) -> None:
    world.do.add_reserved_ip(IP, region=world.region)
    web(world, namespace, service_type="ClusterIP")
    runner.ok()
    assert warnings(kube, namespace) == {"ClientAddressMasqueraded"}
    assert "externalTrafficPolicy: Local" in status(kube, namespace)
    assert world.holder_of(IP) == "a"
    anchor = world.droplets["a"].anchor_ip
    assert kube.core.read_namespaced_service("web", namespace).spec.external_ips == [anchor]
    runner.assert_an_idle_resync_writes_nothing(namespace, "web")


def test_no_fit_node(
    runner: FunctionRunner, world: DoksWorld, kube: KubeBed, namespace: str
) -> None:
    world.do.add_reserved_ip(IP, region=world.region)
    web(world, namespace, ready=False)
    runner.ok()
    assert "NoFitNode" in warnings(kube, namespace)
    assert world.holder_of(IP) is None


def test_missing_anchor_ip(
    runner: FunctionRunner, world: DoksWorld, kube: KubeBed, namespace: str
) -> None:
    world.do.add_reserved_ip(IP, region=world.region)
    world.add_node("bare", anchor_on_node=False)
    web(world, namespace, node="bare")
    runner.ok()
    assert "MissingAnchorIP" in warnings(kube, namespace)
    assert world.holder_of(IP) is None


def test_a_warning_is_not_repeated_on_every_resync(
    runner: FunctionRunner, world: DoksWorld, kube: KubeBed, namespace: str
) -> None:
    web(world, namespace)
    runner.ok()
    count = len(kube.core.list_namespaced_event(namespace).items)
    runner.ok()
    assert len(kube.core.list_namespaced_event(namespace).items) == count
