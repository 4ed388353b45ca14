"""The cleanup finalizer on the real apiserver and the DigitalOcean imitation: a Service
deleted while the function is down is kept until the function has closed its ports, a cleanup
that keeps failing keeps it and says so, and the documented command gives up the cleanup."""

from __future__ import annotations

import json

import pytest
from kubernetes.client.exceptions import ApiException

from floating_ip_common import contract
from testbed.doks import DoksWorld
from testbed.function_harness import TRAEFIK_PORTS, FunctionRunner
from testbed.kube import KubeBed

IP = "192.0.2.50"


def web(world: DoksWorld, namespace: str) -> None:
    world.do.add_reserved_ip(IP, region=world.region)
    world.kube.create_service(namespace, "web", TRAEFIK_PORTS, annotations={contract.ADDRESS: IP})
    world.kube.create_pod(namespace, "web-1", world.node("a"), {"app": "web"})
    world.kube.sync_endpoint_slices(namespace, "web")


def open_ports(world: DoksWorld) -> list[tuple[str, str]]:
    return [(r["protocol"], r["ports"]) for f in world.do.firewalls() for r in f["inbound_rules"]]


def exists(kube: KubeBed, namespace: str) -> bool:
    try:
        kube.core.read_namespaced_service("web", namespace)
    except ApiException as error:
        if error.status == 404:
            return False
        raise
    return True


def test_a_service_deleted_while_the_function_is_down_is_cleaned_up_later(
    runner: FunctionRunner, world: DoksWorld, kube: KubeBed, namespace: str
) -> None:
    web(world, namespace)
    runner.ok()
    placed = kube.core.read_namespaced_service("web", namespace)
    assert placed.metadata.finalizers == [contract.FINALIZER]
    assert open_ports(world)

    kube.core.delete_namespaced_service("web", namespace)  # no function runs meanwhile
    waiting = kube.core.read_namespaced_service("web", namespace)
    assert waiting.metadata.deletion_timestamp is not None
    assert open_ports(world), "nothing closed the ports yet"

    runner.ok()
    assert open_ports(world) == []
    assert not exists(kube, namespace), "the finalizer came off once the ports were closed"
    assert world.holder_of(IP) == "a", "the user's own IP is never released"
    assert runner.ok()["changes"] == []


def test_a_failing_cleanup_keeps_the_service_warns_and_can_be_given_up(
    runner: FunctionRunner, world: DoksWorld, kube: KubeBed, namespace: str
) -> None:
    web(world, namespace)
    runner.ok()
    kube.core.delete_namespaced_service("web", namespace)
    world.do.fail_next(
        "DELETE",
        "/v2/firewalls/{firewall_id}",
        403,
        body={"id": "forbidden", "message": "You are not authorized to perform this operation"},
    )
    response = runner.run()
    assert response.status == 503
    assert exists(kube, namespace), "kept: its ports are still open"
    [warning] = [
        str(e.message)
        for e in kube.core.list_namespaced_event(namespace).items
        if e.reason == "CleanupFailed"
    ]
    assert "403" in warning and contract.FINALIZER in warning

    # The Warning's command, as a user would paste it.
    command = warning.split("(to give up: ")[1].split(")")[0]
    assert command.startswith(f"kubectl patch service web -n {namespace} --type=merge -p '")
    body = json.loads(command.split("-p '")[1].rstrip("'"))
    kube.core.patch_namespaced_service("web", namespace, body)
    assert not exists(kube, namespace)

    runner.ok()  # the next run closes the ports all the same: the firewall is level-triggered
    assert open_ports(world) == []


@pytest.mark.parametrize("other", ["example.com/keep"])
def test_another_controllers_finalizer_is_kept(
    runner: FunctionRunner, world: DoksWorld, kube: KubeBed, namespace: str, other: str
) -> None:
    web(world, namespace)
    kube.core.patch_namespaced_service("web", namespace, {"metadata": {"finalizers": [other]}})
    runner.ok()
    placed = kube.core.read_namespaced_service("web", namespace)
    assert placed.metadata.finalizers == [other, contract.FINALIZER]
    kube.core.delete_namespaced_service("web", namespace)
    runner.ok()
    assert kube.core.read_namespaced_service("web", namespace).metadata.finalizers == [other]
