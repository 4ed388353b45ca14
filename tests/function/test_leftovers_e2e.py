"""No leftovers and honest answers, on the real apiserver and the DigitalOcean imitation.

A Service that opts out gets back exactly what it had before the function touched it; a
deleted Service's IP is released only when the user asked for that; a change the function
decided but could not make is answered 503 with Retry-After and leaves a Warning.
"""

from __future__ import annotations

import pytest

from floating_ip_common import contract
from testbed.doks import DoksWorld
from testbed.function_harness import TRAEFIK_PORTS, FunctionRunner
from testbed.kube import KubeBed

IP = "192.0.2.40"
# Run in both modes, as the placement tests (see test_placement_e2e.py).
pytestmark = pytest.mark.parametrize("cluster_access", ["callback", "relay"])
USER_IP = "198.51.100.77"
ACTIONS = "/v2/reserved_ips/{reserved_ip}/actions"


def web(world: DoksWorld, namespace: str, node: str = "a") -> None:
    world.do.add_reserved_ip(IP, region=world.region)
    world.kube.create_service(
        namespace,
        "web",
        TRAEFIK_PORTS,
        annotations={contract.ADDRESS: IP, "team": "edge"},
        external_ips=[USER_IP],
    )
    world.kube.create_pod(namespace, "web-1", world.node(node), {"app": "web"})
    world.kube.sync_endpoint_slices(namespace, "web")


def events(kube: KubeBed, namespace: str) -> list[tuple[str, str, str]]:
    return [(e.type, e.reason, e.message) for e in kube.core.list_namespaced_event(namespace).items]


def open_ports(world: DoksWorld) -> list[tuple[str, str]]:
    return [(r["protocol"], r["ports"]) for f in world.do.firewalls() for r in f["inbound_rules"]]


def test_removing_the_annotation_removes_exactly_what_the_function_wrote(
    runner: FunctionRunner, world: DoksWorld, kube: KubeBed, namespace: str
) -> None:
    web(world, namespace)
    runner.ok()
    anchor = world.droplets["a"].anchor_ip
    placed = kube.core.read_namespaced_service("web", namespace)
    assert placed.spec.external_ips == [USER_IP, anchor]
    assert contract.WRITTEN in (placed.metadata.annotations or {})

    kube.annotate_service(namespace, "web", {contract.ADDRESS: None})
    report = runner.ok()
    cleaned = kube.core.read_namespaced_service("web", namespace)
    assert cleaned.spec.external_ips == [USER_IP]
    assert cleaned.metadata.annotations == {"team": "edge"}
    assert open_ports(world) == []
    assert any(reason == "CleanedUp" for _, reason, _ in events(kube, namespace))
    assert report["unclaimed"] == [
        f"reserved IP {IP} on node {world.node('a')} (droplet {world.droplets['a'].droplet_id}) is "
        "named by no Service: left assigned (UNASSIGN_UNCLAIMED=true releases such IPs)"
    ]
    assert world.holder_of(IP) == "a", "released only when the user opts in"

    version = cleaned.metadata.resource_version
    runner.ok()
    assert kube.core.read_namespaced_service("web", namespace).metadata.resource_version == (
        version
    ), "an opted-out Service is cleaned once, then never written again"


def test_a_deleted_services_ip_is_unassigned_only_when_the_user_opted_in(
    runner: FunctionRunner, world: DoksWorld, kube: KubeBed, namespace: str
) -> None:
    web(world, namespace)
    runner.ok()
    kube.core.delete_namespaced_service("web", namespace)
    runner.ok()
    assert world.holder_of(IP) == "a"
    assert open_ports(world) == []

    report = runner.ok(env={**runner.env, "UNASSIGN_UNCLAIMED": "true"})
    assert world.holder_of(IP) is None
    assert "unassigning it" in report["unclaimed"][0]
    assert runner.ok(env={**runner.env, "UNASSIGN_UNCLAIMED": "true"})["changes"] == []


def test_an_errored_assign_action_is_answered_503_with_a_warning_and_retried(
    runner: FunctionRunner, world: DoksWorld, kube: KubeBed, namespace: str
) -> None:
    web(world, namespace)
    world.do.fail_next_actions(1)
    response = runner.run()
    assert response.status == 503
    assert int(response.headers["Retry-After"]) >= 1
    assert any("errored" in error for error in response.body["errors"])
    warnings = [m for kind, reason, m in events(kube, namespace) if reason == "ChangeFailed"]
    assert len(warnings) == 1
    assert IP in warnings[0] and "errored" in warnings[0]
    assert world.holder_of(IP) is None
    runner.ok()  # the sender's retry
    assert world.holder_of(IP) == "a"


def test_a_refused_assign_is_answered_503_with_a_warning(
    runner: FunctionRunner, world: DoksWorld, kube: KubeBed, namespace: str
) -> None:
    web(world, namespace)
    world.do.fail_next(
        "POST", ACTIONS, 403, body={"id": "forbidden", "message": "You are not authorized."}
    )
    response = runner.run()
    assert response.status == 503
    assert "Retry-After" in response.headers
    assert world.do.count("POST", ACTIONS) == 1, "a refusal is not retried within the call"
    [warning] = [m for _, reason, m in events(kube, namespace) if reason == "ChangeFailed"]
    assert "403" in warning
    runner.ok()
    assert world.holder_of(IP) == "a"


def test_an_assign_whose_answer_is_lost_after_digitalocean_acted_converges(
    runner: FunctionRunner, world: DoksWorld, kube: KubeBed, namespace: str
) -> None:
    """The POST acts, its answer never arrives: the retry sees the IP moved (or moving)."""
    web(world, namespace)
    runner.ok()
    kube.delete_pod(namespace, "web-1")
    kube.create_pod(namespace, "web-2", world.node("b"), {"app": "web"})
    kube.sync_endpoint_slices(namespace, "web")
    world.do.lose_answer_next("POST", ACTIONS)
    report = runner.ok()  # the repeated POST is refused (422): the IP is found where wanted
    assert world.do.count("POST", ACTIONS) == 3, "the first placement, the lost one, its repeat"
    assert [c.get("status") for c in report["changes"] if c["kind"] == "reserved_ip"] == [
        "completed"
    ]
    assert world.holder_of(IP) == "b"
    assert not [r for _, r, _ in events(kube, namespace) if r == "ChangeFailed"]
    spec = kube.core.read_namespaced_service("web", namespace).spec
    assert spec.external_ips == [USER_IP, world.droplets["b"].anchor_ip]
    assert runner.ok()["changes"] == []
