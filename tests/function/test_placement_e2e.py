"""The function end to end on the real control plane and the DigitalOcean imitation:
placement, failover, make-before-break, firewall and idempotency."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from kubernetes import watch

from floating_ip_common import contract
from testbed.doks import DoksWorld
from testbed.function_harness import TRAEFIK_PORTS, FunctionRunner, event_reasons, resync
from testbed.kube import KubeBed
from testbed.processes import wait_until

IP = "192.0.2.10"
# Every placement test runs in both modes: calling the cluster back, and relayed (the function
# reaches no apiserver; the state comes with the event and the writes go back in the answer).
pytestmark = pytest.mark.parametrize("cluster_access", ["callback", "relay"])


def traefik(world: DoksWorld, namespace: str, node: str = "a", **annotations: str) -> None:
    world.do.add_reserved_ip(IP, region=world.region)
    world.kube.create_service(
        namespace,
        "traefik",
        TRAEFIK_PORTS,
        annotations={contract.ADDRESS: IP, **annotations},
        external_ips=["198.51.100.7"],  # the user's own entry: never touched
        external_traffic_policy="Local",
    )
    world.kube.create_pod(namespace, "traefik-1", world.node(node), {"app": "traefik"})
    world.kube.sync_endpoint_slices(namespace, "traefik")


def service(kube: KubeBed, namespace: str) -> Any:
    return kube.core.read_namespaced_service("traefik", namespace)


def test_first_run_places_the_ip_opens_the_firewall_and_reports(
    runner: FunctionRunner, world: DoksWorld, kube: KubeBed, namespace: str
) -> None:
    traefik(world, namespace)
    report = runner.ok()

    assert world.holder_of(IP) == "a"
    svc = service(kube, namespace)
    assert svc.spec.external_ips == ["198.51.100.7", world.droplets["a"].anchor_ip]
    notes = svc.metadata.annotations
    assert notes[contract.HOLDER_NODE] == world.node("a")
    assert notes[contract.HOLDER_DROPLET] == str(world.droplets["a"].droplet_id)
    assert notes[contract.ANCHOR_IP] == world.droplets["a"].anchor_ip
    assert IP in notes[contract.STATUS]

    [firewall] = world.do.firewalls()
    assert firewall["name"] == f"floating-ip-{world.cluster_id}"
    assert firewall["tags"] == [f"k8s:{world.cluster_id}"]
    opened = {(r["protocol"], r["ports"]) for r in firewall["inbound_rules"]}
    assert opened == {("tcp", "80"), ("tcp", "443"), ("udp", "443")}
    for rule in firewall["inbound_rules"]:
        assert sorted(rule["sources"]["addresses"]) == ["0.0.0.0/0", "::/0"]
    assert ("Normal", "IPAssigned") in event_reasons(kube, namespace)
    assert report["services"][0]["holder_node"] == world.node("a")


def test_a_second_run_with_nothing_changed_writes_nothing(
    runner: FunctionRunner, world: DoksWorld, kube: KubeBed, namespace: str
) -> None:
    traefik(world, namespace)
    runner.ok()
    runner.assert_an_idle_resync_writes_nothing(namespace)


def move_pod(world: DoksWorld, namespace: str, to: str) -> None:
    world.kube.delete_pod(namespace, "traefik-1")
    world.kube.create_pod(namespace, "traefik-2", world.node(to), {"app": "traefik"})
    world.kube.sync_endpoint_slices(namespace, "traefik")


def test_the_ip_follows_the_pod_to_another_node(
    runner: FunctionRunner, world: DoksWorld, kube: KubeBed, namespace: str
) -> None:
    traefik(world, namespace)
    runner.ok()
    move_pod(world, namespace, "b")
    runner.ok()
    assert world.holder_of(IP) == "b"
    assert service(kube, namespace).spec.external_ips == [
        "198.51.100.7",
        world.droplets["b"].anchor_ip,
    ]
    assert ("Normal", "IPMoved") in event_reasons(kube, namespace)


def test_make_before_break_both_anchors_listed_while_the_ip_moves(
    runner: FunctionRunner, world: DoksWorld, kube: KubeBed, namespace: str
) -> None:
    traefik(world, namespace)
    runner.ok()
    move_pod(world, namespace, "b")
    world.do.set_action_latency(1.0)  # the move takes a while, as the real one does
    anchor_a, anchor_b = world.droplets["a"].anchor_ip, world.droplets["b"].anchor_ip
    seen: list[list[str]] = []
    version = service(kube, namespace).metadata.resource_version
    stop = threading.Event()

    def record() -> None:
        stream = watch.Watch().stream(
            kube.core.list_namespaced_service,
            namespace,
            resource_version=version,
            timeout_seconds=20,
        )
        for change in stream:
            seen.append([ip for ip in change["object"].spec.external_ips if ip != "198.51.100.7"])
            if stop.is_set() and seen[-1] == [anchor_b]:
                return

    watcher = threading.Thread(target=record, daemon=True)
    watcher.start()
    done: dict[str, Any] = {}
    worker = threading.Thread(target=lambda: done.update(body=runner.ok()), daemon=True)
    worker.start()
    # While the assignment is in progress, both anchors are served and the IP is still on a.
    wait_until(
        lambda: set(service(kube, namespace).spec.external_ips) >= {anchor_a, anchor_b},
        timeout=10,
        what="both anchors listed",
    )
    assert world.do.snapshot()["pending_actions"] or world.holder_of(IP) == "a"
    worker.join(30)
    stop.set()
    watcher.join(20)
    assert "body" in done
    assert world.holder_of(IP) == "b"
    assert service(kube, namespace).spec.external_ips == ["198.51.100.7", anchor_b]
    distinct = [s for i, s in enumerate(seen) if i == 0 or s != seen[i - 1]]
    both = [i for i, s in enumerate(distinct) if set(s) == {anchor_a, anchor_b}]
    only_b = [i for i, s in enumerate(distinct) if s == [anchor_b]]
    assert both and only_b and both[0] < only_b[0], distinct


def test_a_not_ready_node_loses_the_ip_at_once(
    runner: FunctionRunner, world: DoksWorld, kube: KubeBed, namespace: str
) -> None:
    traefik(world, namespace)
    world.kube.create_pod(namespace, "traefik-b", world.node("b"), {"app": "traefik"})
    world.kube.sync_endpoint_slices(namespace, "traefik")
    runner.ok()
    first = world.holder_of(IP)
    other = "b" if first == "a" else "a"
    # No eviction, endpoints still say ready: only the Node says NotReady.
    kube.set_node_ready(world.node(first), "False")
    runner.ok()
    assert world.holder_of(IP) == other
    kube.set_node_ready(world.node(first), "True")
    runner.ok()
    assert world.holder_of(IP) == other  # sticky: no move back


def test_cordon_and_autoscaler_taint_move_the_ip(
    runner: FunctionRunner, world: DoksWorld, kube: KubeBed, namespace: str
) -> None:
    traefik(world, namespace)
    for name in ("b", "c"):
        kube.create_pod(namespace, f"traefik-{name}", world.node(name), {"app": "traefik"})
    kube.sync_endpoint_slices(namespace, "traefik")
    runner.ok()
    first = world.holder_of(IP)
    assert first is not None
    kube.cordon(world.node(first))
    runner.ok()
    second = world.holder_of(IP)
    assert second not in (None, first)
    kube.taint(world.node(second), "ToBeDeletedByClusterAutoscaler", "NoSchedule", "1700000000")
    runner.ok()
    third = world.holder_of(IP)
    assert third not in (None, first, second)


def test_removing_the_annotation_closes_the_firewall(
    runner: FunctionRunner, world: DoksWorld, kube: KubeBed, namespace: str
) -> None:
    traefik(world, namespace)
    runner.ok()
    kube.annotate_service(namespace, "traefik", {contract.ADDRESS: None})
    runner.ok()
    remaining = [
        (r["protocol"], r["ports"]) for f in world.do.firewalls() for r in f["inbound_rules"]
    ]
    assert remaining == []


def test_dry_run_reports_the_plan_and_writes_nothing(
    runner: FunctionRunner, world: DoksWorld, kube: KubeBed, namespace: str
) -> None:
    traefik(world, namespace)
    version = service(kube, namespace).metadata.resource_version
    report = runner.ok(env={**runner.env, "DRY_RUN": "true"})
    kinds = {c["kind"] for c in report["changes"]}
    assert {"firewall", "service", "reserved_ip", "event"} <= kinds
    assert all(c["dry_run"] for c in report["changes"])
    assert runner.do_writes() == []
    assert world.holder_of(IP) is None
    assert service(kube, namespace).metadata.resource_version == version
    assert event_reasons(kube, namespace) == []


def test_a_resync_asking_for_a_dry_run_writes_nothing(
    runner: FunctionRunner, world: DoksWorld, kube: KubeBed, namespace: str
) -> None:
    """What the doctor sends: ``ce-dryrun: true`` plans without DRY_RUN in the settings."""
    traefik(world, namespace)
    version = service(kube, namespace).metadata.resource_version
    headers, body = resync()
    report = runner.ok(event=({**headers, "ce-dryrun": "true"}, body))
    assert report["dry_run"] is True
    assert report["changes"] and all(c["dry_run"] for c in report["changes"])
    assert runner.do_writes() == []
    assert service(kube, namespace).metadata.resource_version == version
