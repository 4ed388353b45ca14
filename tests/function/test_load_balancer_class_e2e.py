"""LoadBalancer-class mode end to end on the real control plane: the function writes
``status.loadBalancer.ingress`` through ``services/status`` with the shipped identity, never
``spec``; moves are make-before-break; an idle resync writes nothing; switching modes cleans
up; a LoadBalancer Service of another class gets a Warning and nothing else."""

from __future__ import annotations

import json
import subprocess
import threading
from typing import Any

import pytest
from kubernetes import watch

from floating_ip_common import contract
from testbed.controlplane import ControlPlane
from testbed.doks import DoksWorld
from testbed.function_harness import TRAEFIK_PORTS, FunctionRunner, event_reasons
from testbed.kube import KubeBed
from testbed.processes import wait_until

IP = "192.0.2.20"
# Run in both modes, as the placement tests (see test_placement_e2e.py).
pytestmark = pytest.mark.parametrize("cluster_access", ["callback", "relay"])
"""Not the other suites' 192.0.2.10: Services left in earlier namespaces share a claim with any
Service naming the same IP, and enough of them turn a watcher's event into a resync."""
USER_IP = "198.51.100.7"


def traefik_lb(
    world: DoksWorld, namespace: str, node: str = "a", lb_class: str | None = None
) -> None:
    """A Traefik-like LoadBalancer Service of our class (or ``lb_class``), pod on ``node``."""
    world.do.add_reserved_ip(IP, region=world.region)
    world.kube.create_service(
        namespace,
        "traefik",
        TRAEFIK_PORTS,
        annotations={contract.ADDRESS: IP},
        external_traffic_policy="Local",
        service_type="LoadBalancer",
        load_balancer_class=lb_class or contract.LOAD_BALANCER_CLASS,
        allocate_load_balancer_node_ports=False,
    )
    world.kube.create_pod(namespace, "traefik-1", world.node(node), {"app": "traefik"})
    world.kube.sync_endpoint_slices(namespace, "traefik")


def service(kube: KubeBed, namespace: str) -> Any:
    return kube.core.read_namespaced_service("traefik", namespace)


def ingress(svc: Any) -> list[tuple[str, str | None]]:
    entries = (svc.status.load_balancer.ingress if svc.status.load_balancer else None) or []
    return [(entry.ip, entry.ip_mode) for entry in entries]


def written_by_function(svc: Any) -> list[tuple[str | None, str]]:
    """``(subresource, fieldsV1 as JSON)`` of every managedFields entry the function owns."""
    return [
        (entry.subresource, json.dumps(entry.fields_v1))
        for entry in svc.metadata.managed_fields or []
        if entry.manager == "floating-ip"
    ]


def test_a_class_service_gets_its_ingress_through_status_and_no_spec_write(
    runner: FunctionRunner, world: DoksWorld, kube: KubeBed, namespace: str
) -> None:
    traefik_lb(world, namespace)
    report = runner.ok()

    assert world.holder_of(IP) == "a"
    anchor = world.droplets["a"].anchor_ip
    svc = service(kube, namespace)
    assert ingress(svc) == [(IP, "VIP"), (anchor, "VIP")]
    assert not svc.spec.external_ips
    notes = svc.metadata.annotations
    assert notes[contract.EXTERNAL_DNS_TARGET] == IP
    assert notes[contract.ANCHOR_IP] == anchor
    assert notes[contract.HOLDER_NODE] == world.node("a")
    # What the function recorded and what the API server says it owns: status, never spec.
    services = [c for c in report["changes"] if c["kind"] in ("service", "service_status")]
    assert {c["kind"] for c in services} == {"service", "service_status"}
    assert not [c for c in services if "externalIPs" in c]
    owned = written_by_function(svc)
    status_fields = [fields for subresource, fields in owned if subresource == "status"]
    assert status_fields and '"f:loadBalancer"' in status_fields[0]
    assert not [fields for _, fields in owned if '"f:spec"' in fields]
    assert ("Normal", "IPAssigned") in event_reasons(kube, namespace)


def test_kubectl_shows_the_reserved_ip_under_external_ip(
    runner: FunctionRunner,
    world: DoksWorld,
    control_plane: ControlPlane,
    namespace: str,
) -> None:
    traefik_lb(world, namespace)
    runner.ok()

    def external_ip(*wide: str) -> str:
        kubectl = [control_plane.kubectl, "--kubeconfig", str(control_plane.kubeconfig_path)]
        done = subprocess.run(
            [*kubectl, "get", "service", "traefik", "-n", namespace, "--no-headers", *wide],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        return done.stdout.split()[3]  # NAME TYPE CLUSTER-IP EXTERNAL-IP …

    # The API server's table sorts the ingress IPs as text: the anchor is shown too, and
    # usually first. ingress[0], which scripts read, is the reserved IP.
    both = f"{world.droplets['a'].anchor_ip},{IP}"
    assert external_ip() == external_ip("-o", "wide") == both
    assert ingress(service(world.kube, namespace))[0] == (IP, "VIP")


def test_an_idle_resync_of_a_class_service_writes_nothing(
    runner: FunctionRunner, world: DoksWorld, kube: KubeBed, namespace: str
) -> None:
    traefik_lb(world, namespace)
    runner.ok()
    runner.assert_an_idle_resync_writes_nothing(namespace)


def test_a_move_in_class_mode_lists_both_anchors_until_the_ip_has_moved(
    runner: FunctionRunner, world: DoksWorld, kube: KubeBed, namespace: str
) -> None:
    traefik_lb(world, namespace)
    runner.ok()
    world.kube.delete_pod(namespace, "traefik-1")
    world.kube.create_pod(namespace, "traefik-2", world.node("b"), {"app": "traefik"})
    world.kube.sync_endpoint_slices(namespace, "traefik")
    world.do.set_action_latency(1.0)
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
            seen.append([ip for ip, _ in ingress(change["object"]) if ip != IP])
            if stop.is_set() and seen[-1] == [anchor_b]:
                return

    watcher = threading.Thread(target=record, daemon=True)
    watcher.start()
    done: dict[str, Any] = {}
    worker = threading.Thread(target=lambda: done.update(body=runner.ok()), daemon=True)
    worker.start()
    wait_until(
        lambda: {ip for ip, _ in ingress(service(kube, namespace))} >= {anchor_a, anchor_b},
        timeout=10,
        what="both anchors in the ingress",
    )
    assert world.do.snapshot()["pending_actions"] or world.holder_of(IP) == "a"
    worker.join(30)
    stop.set()
    watcher.join(20)
    assert "body" in done
    assert world.holder_of(IP) == "b"
    assert ingress(service(kube, namespace)) == [(IP, "VIP"), (anchor_b, "VIP")]
    distinct = [s for i, s in enumerate(seen) if i == 0 or s != seen[i - 1]]
    both = [i for i, s in enumerate(distinct) if set(s) == {anchor_a, anchor_b}]
    only_b = [i for i, s in enumerate(distinct) if s == [anchor_b]]
    assert both and only_b and both[0] < only_b[0], distinct
    assert not service(kube, namespace).spec.external_ips


def test_switching_between_the_modes_leaves_nothing_stale(
    runner: FunctionRunner, world: DoksWorld, kube: KubeBed, namespace: str
) -> None:
    world.do.add_reserved_ip(IP, region=world.region)
    kube.create_service(
        namespace,
        "traefik",
        TRAEFIK_PORTS,
        annotations={contract.ADDRESS: IP},
        external_ips=[USER_IP],
        external_traffic_policy="Local",
    )
    kube.create_pod(namespace, "traefik-1", world.node("a"), {"app": "traefik"})
    kube.sync_endpoint_slices(namespace, "traefik")
    runner.ok()
    anchor = world.droplets["a"].anchor_ip
    assert service(kube, namespace).spec.external_ips == [USER_IP, anchor]

    to_class = {
        "type": "LoadBalancer",
        "loadBalancerClass": contract.LOAD_BALANCER_CLASS,
        "allocateLoadBalancerNodePorts": False,
    }
    kube.core.patch_namespaced_service("traefik", namespace, {"spec": to_class})
    runner.ok()
    svc = service(kube, namespace)
    assert svc.spec.external_ips == [USER_IP], "our anchor left externalIPs, the user's stayed"
    assert ingress(svc) == [(IP, "VIP"), (anchor, "VIP")]
    assert svc.metadata.annotations[contract.EXTERNAL_DNS_TARGET] == IP

    back = {"type": "ClusterIP", "loadBalancerClass": None, "allocateLoadBalancerNodePorts": None}
    kube.core.patch_namespaced_service("traefik", namespace, {"spec": back})
    runner.ok()
    svc = service(kube, namespace)
    assert svc.spec.external_ips == [USER_IP, anchor]
    assert ingress(svc) == []
    assert contract.EXTERNAL_DNS_TARGET not in svc.metadata.annotations
    assert world.holder_of(IP) == "a", "no move for a mode switch"
    assert runner.ok()["changes"] == []


def test_a_load_balancer_of_another_class_gets_a_warning_and_no_write(
    runner: FunctionRunner, world: DoksWorld, kube: KubeBed, namespace: str
) -> None:
    traefik_lb(world, namespace, lb_class="example.com/other")
    report = runner.ok()

    assert world.holder_of(IP) is None
    assert runner.do_writes() == [], "no assignment, no firewall opened"
    svc = service(kube, namespace)
    assert ingress(svc) == [] and not svc.spec.external_ips
    assert [c["kind"] for c in report["changes"]] == ["service", "event"]
    assert ("Warning", "WrongLoadBalancerClass") in event_reasons(kube, namespace)
    assert "example.com/other" in svc.metadata.annotations[contract.STATUS]
    assert runner.ok()["changes"] == [], "the Warning is not repeated"
