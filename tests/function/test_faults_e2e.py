"""Faults at each call: transient ones are retried inside the deadline, a conflict makes the
function observe again, persistent ones end in 503 with Retry-After, and nothing is left
half-done in a way a later run cannot repair."""

from __future__ import annotations

import threading

import pytest

from floating_ip_common import contract
from testbed.doks import DoksWorld
from testbed.function_harness import TRAEFIK_PORTS, FunctionRunner
from testbed.kube import KubeBed

IP = "192.0.2.30"
ACTIONS = "/v2/reserved_ips/{reserved_ip}/actions"


def setup_web(world: DoksWorld, namespace: str) -> None:
    world.do.add_reserved_ip(IP, region=world.region)
    world.kube.create_service(namespace, "web", TRAEFIK_PORTS, annotations={contract.ADDRESS: IP})
    world.kube.create_pod(namespace, "web-1", world.node("a"), {"app": "web"})
    world.kube.sync_endpoint_slices(namespace, "web")


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/v2/reserved_ips", 429),
        ("GET", "/v2/reserved_ips", 500),
        ("GET", "/v2/firewalls", 503),
        ("GET", "/v2/kubernetes/clusters/{cluster_id}", 502),
        ("POST", "/v2/firewalls", 500),
        ("POST", ACTIONS, 429),
        ("POST", ACTIONS, 503),
        ("GET", "/v2/actions/{action_id}", 500),
    ],
    ids=lambda v: str(v).replace("/", "_"),
)
def test_a_transient_digitalocean_failure_is_retried(
    runner: FunctionRunner, world: DoksWorld, namespace: str, method: str, path: str, status: int
) -> None:
    setup_web(world, namespace)
    world.do.fail_next(method, path, status, times=2, retry_after=1 if status == 429 else None)
    runner.ok()
    assert world.holder_of(IP) == "a"
    assert world.do.pending_faults() == []


@pytest.mark.parametrize("path", ["/v2/reserved_ips", ACTIONS], ids=["list", "assign"])
def test_a_hang_up_is_retried(
    runner: FunctionRunner, world: DoksWorld, namespace: str, path: str
) -> None:
    setup_web(world, namespace)
    world.do.hang_up_next("*", path)
    runner.ok()
    assert world.holder_of(IP) == "a"


def test_a_pending_event_422_is_waited_out(
    runner: FunctionRunner, world: DoksWorld, namespace: str
) -> None:
    setup_web(world, namespace)
    world.do.fail_next(
        "POST",
        ACTIONS,
        422,
        times=1,
        body={"id": "unprocessable_entity", "message": "Droplet already has a pending event."},
    )
    runner.ok()
    assert world.holder_of(IP) == "a"


def test_a_persistent_failure_ends_in_503_with_retry_after_within_the_deadline(
    runner: FunctionRunner, world: DoksWorld, namespace: str
) -> None:
    setup_web(world, namespace)
    world.do.fail_next("GET", "/v2/reserved_ips", 503, times=1000)
    response = runner.run(remaining_ms=6000)  # the platform leaves 6 s
    assert response.status == 503
    assert int(response.headers["Retry-After"]) >= 1
    assert "reserved" in response.body["error"]
    assert runner.do_writes() == []
    world.do.clear_faults()
    runner.ok()  # the sender's retry repairs everything
    assert world.holder_of(IP) == "a"


def test_an_assignment_still_running_at_the_deadline_is_finished_by_the_next_run(
    runner: FunctionRunner, world: DoksWorld, kube: KubeBed, namespace: str
) -> None:
    setup_web(world, namespace)
    world.do.set_action_latency(None)  # in progress until told otherwise
    response = runner.run(remaining_ms=5000)
    assert response.status == 503  # the sender must come back
    assert response.body["pending"] == [IP]
    world.do.complete_pending_actions()
    runner.ok()
    assert world.holder_of(IP) == "a"
    anchor = world.droplets["a"].anchor_ip
    assert kube.core.read_namespaced_service("web", namespace).spec.external_ips == [anchor]


def test_a_permanent_digitalocean_error_is_reported_not_retried_within_the_call(
    runner: FunctionRunner, world: DoksWorld, namespace: str
) -> None:
    setup_web(world, namespace)
    world.do.fail_next(
        "POST",
        ACTIONS,
        403,
        times=1000,
        body={"id": "forbidden", "message": "You are not authorized."},
    )
    response = runner.run()
    assert response.status == 503, "a change decided but not made: the sender retries"
    assert any("403" in error for error in response.body["errors"])
    assert world.do.count("POST", ACTIONS) == 1


def test_a_kubernetes_conflict_makes_the_function_observe_again(
    runner: FunctionRunner, world: DoksWorld, kube: KubeBed, namespace: str
) -> None:
    setup_web(world, namespace)
    # While the function waits for DigitalOcean, someone else updates the Service: its
    # conditional patch then meets a 409, and it must re-read and still converge.
    world.do.delay_next("GET", "/v2/firewalls", 1.5)
    changed = threading.Event()

    def meddle() -> None:
        while not world.do.requests("GET", "/v2/reserved_ips"):
            if changed.wait(0.02):
                return
        kube.annotate_service(namespace, "web", {"example.com/touched": "yes"})
        changed.set()

    meddler = threading.Thread(target=meddle, daemon=True)
    meddler.start()
    body = runner.ok()
    changed.set()
    meddler.join(5)
    assert body["attempts"] == 2
    assert world.holder_of(IP) == "a"
    service = kube.core.read_namespaced_service("web", namespace)
    assert service.metadata.annotations["example.com/touched"] == "yes"
    assert service.spec.external_ips == [world.droplets["a"].anchor_ip]


def stale_firewall(world: DoksWorld) -> str:
    """The project's firewall as an earlier run left it: port 8080 only."""
    return world.do.add_firewall(
        {
            "name": f"floating-ip-{world.cluster_id}",
            "inbound_rules": [
                {"protocol": "tcp", "ports": "8080", "sources": {"addresses": ["0.0.0.0/0"]}}
            ],
            "outbound_rules": [],
            "tags": [f"k8s:{world.cluster_id}"],
        }
    )


def test_a_failed_firewall_update_is_retried(
    runner: FunctionRunner, world: DoksWorld, namespace: str
) -> None:
    firewall_id = stale_firewall(world)
    setup_web(world, namespace)
    world.do.fail_next("PUT", "/v2/firewalls/{firewall_id}", 503, times=2)
    runner.ok()
    firewall = world.do.firewall(firewall_id)
    assert firewall is not None
    opened = {(r["protocol"], r["ports"]) for r in firewall["inbound_rules"]}
    assert opened == {("tcp", "80"), ("tcp", "443"), ("udp", "443")}
    assert world.do.pending_faults() == []


def test_a_failed_firewall_delete_is_retried(
    runner: FunctionRunner, world: DoksWorld, namespace: str
) -> None:
    stale_firewall(world)  # no Service wants any port: the firewall goes
    world.do.fail_next("DELETE", "/v2/firewalls/{firewall_id}", 500, times=2)
    runner.ok()
    assert world.do.firewalls() == []
