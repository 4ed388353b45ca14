"""The forwarder on the real control plane, with the shipped RBAC: what reaches the function,
what does not, and how bursts are coalesced."""

from __future__ import annotations

import json
import math
import time
import uuid
from collections.abc import Callable

from floating_ip_common import contract
from testbed.controlplane import ControlPlane
from testbed.forwarder_harness import CLUSTER_ID, RawKube
from testbed.kube import KubeBed, Port
from testbed.processes import wait_until
from testbed.receiver import Receiver
from tests.forwarder.conftest import StartForwarder

IP = "192.0.2.10"
PROBE_IP = "192.0.2.99"


def web(
    kube: KubeBed,
    namespace: str,
    pods: dict[str, str],
    *,
    name: str = "web",
    address: str = IP,
    holder: str | None = None,
) -> str:
    """An opted-in Service with ``pods`` (pod name → node), its EndpointSlice synced."""
    annotations = {contract.ADDRESS: address}
    if holder:
        annotations[contract.HOLDER_NODE] = holder
    kube.create_service(namespace, name, [Port(80), Port(443, "UDP")], annotations=annotations)
    for pod, node in pods.items():
        kube.create_pod(namespace, pod, node, {"app": name})
    kube.sync_endpoint_slices(namespace, name)
    return f"{namespace}/{name}"


def started(receiver: Receiver) -> None:
    receiver.wait_for(lambda: len(receiver.resyncs()) >= 1, "the resync at start")


def test_starts_with_a_resync_then_forwards_changes_as_cloudevents(
    start_forwarder: StartForwarder,
    receiver: Receiver,
    kube: KubeBed,
    namespace: str,
    nodes: Callable[..., str],
    web_secret: str,
) -> None:
    node = nodes("n1")
    forwarder = start_forwarder(namespace)
    started(receiver)
    [resync] = receiver.resyncs()
    assert resync.body == {}
    assert "ce-subject" not in resync.headers

    since = time.monotonic()
    subject = web(kube, namespace, {"web-1": node})
    event = receiver.wait_subject(subject, since)

    assert event.headers["ce-specversion"] == "1.0"
    assert event.headers["ce-type"] == contract.EVENT_SERVICE_CHANGED
    assert event.headers["ce-source"] == contract.EVENT_SOURCE
    assert event.headers["ce-clusterid"] == CLUSTER_ID
    assert event.headers["content-type"] == "application/json"
    assert event.headers[contract.AUTH_HEADER.lower()] == web_secret
    # The function's credential: one cached token of its ServiceAccount, with every event.
    token = event.headers[contract.KUBE_TOKEN_HEADER.lower()]
    assert {r.headers[contract.KUBE_TOKEN_HEADER.lower()] for r in receiver.received()} == {token}
    assert event.body == {"service": subject}
    ids = [r.headers["ce-id"] for r in receiver.received()]
    assert len(set(ids)) == len(ids), "every event has its own id"
    assert all(str(uuid.UUID(i)) == i for i in ids)

    forwarder.wait_metric("events_sent", 1, type="service")
    assert forwarder.metric("events_sent", type="resync") == 1
    assert forwarder.metric("last_success_timestamp_seconds") > time.time() - 60
    assert forwarder.leading()
    assert forwarder.get("/healthz")[0] == 200

    entries = forwarder.logs()
    assert all("unstructured" not in e for e in entries), "every log line is JSON"
    assert any(e["message"] == "event delivered" for e in entries)
    assert web_secret not in forwarder.log.read_text(), "the secret is never logged"
    assert token not in forwarder.log.read_text(), "the function's token is never logged"


def test_heartbeats_and_the_functions_own_writes_post_nothing(
    start_forwarder: StartForwarder,
    receiver: Receiver,
    kube: KubeBed,
    namespace: str,
    nodes: Callable[..., str],
) -> None:
    n1, n2 = nodes("n1"), nodes("n2")
    subject = web(kube, namespace, {"web-1": n1}, holder=n1)
    probe = web(kube, namespace, {"probe-1": n2}, name="probe", address=PROBE_IP)
    kube.create_service(namespace, "plain", [Port(8080)])
    kube.create_service(  # LoadBalancer-class mode: the function writes its status instead
        namespace,
        "lbweb",
        [Port(80)],
        annotations={contract.ADDRESS: "192.0.2.11"},
        service_type="LoadBalancer",
        load_balancer_class=contract.LOAD_BALANCER_CLASS,
        allocate_load_balancer_node_ports=False,
    )
    forwarder = start_forwarder(namespace)
    started(receiver)
    since = time.monotonic()

    def kubelets() -> bool:
        # Heartbeats carry second-resolution times: keep beating until a few landed.
        kube.heartbeat(n1)
        kube.heartbeat(n2)
        kube.set_pod_ready(namespace, "web-1", True)
        return forwarder.metric("watch_events", kind="node") >= 6

    wait_until(kubelets, timeout=30, what="six heartbeats seen", interval=0.2)
    for i in range(5):  # the function, writing what it decided
        kube.annotate_service(
            namespace,
            "web",
            {
                contract.STATUS: f"assigned to {n1} ({i})",
                contract.HOLDER_NODE: n1,
                contract.HOLDER_DROPLET: "1000",
                contract.ANCHOR_IP: f"10.17.0.{i + 5}",
            },
        )
        kube.core.patch_namespaced_service(
            "web", namespace, {"spec": {"externalIPs": [f"10.17.0.{i + 5}"]}}
        )
        ingress = [{"ip": "192.0.2.11", "ipMode": "VIP"}, {"ip": f"10.17.0.{i + 5}"}]
        kube.core.patch_namespaced_service_status(
            "lbweb", namespace, {"status": {"loadBalancer": {"ingress": ingress}}}
        )
        kube.annotate_service(
            namespace,
            "lbweb",
            {contract.EXTERNAL_DNS_TARGET: "192.0.2.11", contract.STATUS: str(i)},
        )
    kube.core.patch_namespaced_service(  # a Service that never opted in
        "plain", namespace, {"spec": {"ports": [{"port": 9090, "name": "p"}]}}
    )
    kube.annotate_node(n1, {"unrelated": "yes"})

    # One real change per watch stream, made after the noise: once each is counted, every
    # earlier event of that stream has been judged.
    kube.cordon(n2)
    kube.annotate_service(namespace, "probe", {contract.FIREWALL: "false"})
    kube.annotate_pod(namespace, "probe-1", {contract.ANCHOR_IPV4: "10.17.1.5"})
    for kind in ("node", "service", "pod"):
        forwarder.wait_metric("changes", 1, kind=kind)
    receiver.wait_for(lambda: probe in receiver.subjects(since), "the probe's event")
    receiver.wait_for(lambda: forwarder.metric("queue_depth") == 0, "an empty queue")

    assert subject not in receiver.subjects(since)
    assert f"{namespace}/lbweb" not in receiver.subjects(since)
    assert set(receiver.subjects(since)) == {probe}
    assert forwarder.metric("changes", kind="node") == 1
    assert forwarder.metric("changes", kind="service") == 1
    assert forwarder.metric("changes", kind="pod") == 1
    assert forwarder.metric("changes", kind="endpointslice") == 0
    assert forwarder.metric("watch_events", kind="service") >= 21
    assert forwarder.metric("watch_events", kind="pod") >= 3


def test_200_readiness_flips_within_a_second_make_a_handful_of_posts(
    start_forwarder: StartForwarder,
    receiver: Receiver,
    kube: KubeBed,
    control_plane: ControlPlane,
    namespace: str,
    nodes: Callable[..., str],
) -> None:
    n1, n2 = nodes("n1"), nodes("n2")
    pods = {f"web-{i}": (n1 if i % 2 else n2) for i in range(4)}
    subject = web(kube, namespace, pods)
    forwarder = start_forwarder(namespace, QUIET_WINDOW="500ms", MAX_DELAY="2s")
    started(receiver)
    path = f"/apis/discovery.k8s.io/v1/namespaces/{namespace}/endpointslices/web-slice"
    raw = RawKube(control_plane)
    try:
        endpoints = raw.call("GET", path)["endpoints"]
        since = time.monotonic()
        for flip in range(200):
            endpoint = endpoints[flip % len(endpoints)]
            ready = not endpoint["conditions"]["ready"]
            endpoint["conditions"].update(ready=ready, serving=ready)
            raw.merge_patch(path, {"endpoints": endpoints})
        done = time.monotonic()
    finally:
        raw.close()
    flipping = done - since

    forwarder.wait_metric("watch_events", 200, kind="endpointslice")
    receiver.wait_for(lambda: subject in receiver.subjects(done), "the event after the burst")
    receiver.wait_for(lambda: forwarder.metric("queue_depth") == 0, "an empty queue")

    posts = receiver.subjects(since)
    assert set(posts) == {subject}
    # The leading one at the first flip, one per ceiling (2 s) while the burst lasts, one after.
    assert 1 <= len(posts) <= math.ceil(flipping / 2.0) + 2, (len(posts), flipping)
    assert forwarder.metric("changes", kind="endpointslice") == 200
    print(json.dumps({"flips": 200, "seconds": round(flipping, 2), "posts": len(posts)}))


def test_node_and_pod_changes_reach_the_services_they_affect(
    start_forwarder: StartForwarder,
    receiver: Receiver,
    kube: KubeBed,
    namespace: str,
    nodes: Callable[..., str],
) -> None:
    n1, n2, n3 = nodes("n1"), nodes("n2"), nodes("n3")
    subject = web(kube, namespace, {"web-1": n1, "web-2": n2}, holder=n1)
    other = web(kube, namespace, {"other-1": n3}, name="other", address=PROBE_IP)
    start_forwarder(namespace)
    started(receiver)

    def pod_not_ready() -> None:
        kube.set_pod_ready(namespace, "other-1", False)
        kube.sync_endpoint_slices(namespace, "other")

    def patch_web(spec: dict[str, object]) -> Callable[[], object]:
        return lambda: kube.core.patch_namespaced_service("web", namespace, {"spec": spec})

    ports = [{"name": "tcp-80", "port": 80}, {"name": "tcp-8443", "port": 8443}]
    out_of_service = "node.kubernetes.io/out-of-service"
    steps: list[tuple[str, Callable[[], object], str]] = [
        ("holder cordoned", lambda: kube.cordon(n1), subject),
        ("holder uncordoned", lambda: kube.cordon(n1, False), subject),
        ("endpoint node tainted", lambda: kube.taint(n2, out_of_service, "NoExecute"), subject),
        ("endpoint node not ready", lambda: kube.set_node_ready(n2, "False"), subject),
        ("endpoint node unknown", lambda: kube.set_node_ready(n2, "Unknown"), subject),
        (
            "anchor on a pod",
            lambda: kube.annotate_pod(namespace, "web-1", {contract.ANCHOR_IPV4: "10.17.0.9"}),
            subject,
        ),
        (
            "anchor on a node",
            lambda: kube.annotate_node(n3, {contract.ANCHOR_IPV4: "10.17.0.8"}),
            other,
        ),
        ("pod not ready", pod_not_ready, other),
        ("ports", patch_web({"ports": ports}), subject),
        (
            "traffic policy",
            patch_web({"type": "NodePort", "externalTrafficPolicy": "Local"}),
            subject,
        ),
        (
            "firewall sources",
            lambda: kube.annotate_service(
                namespace, "web", {contract.FIREWALL_SOURCES: "198.51.100.0/24"}
            ),
            subject,
        ),
        ("endpoint node deleted", lambda: kube.delete_node(n2), subject),
        (
            "opted out",
            lambda: kube.annotate_service(namespace, "other", {contract.ADDRESS: None}),
            other,
        ),
    ]
    for what, change, expected in steps:
        since = time.monotonic()
        change()
        event = receiver.wait_subject(expected, since)
        assert event.subject == expected, what
    # The holder moves (the function's write: nothing), then the new holder fails.
    since = time.monotonic()
    kube.annotate_service(namespace, "web", {contract.HOLDER_NODE: n3})
    kube.set_node_ready(n3, "False")
    receiver.wait_subject(subject, since)
