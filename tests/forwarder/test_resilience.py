"""Nothing is lost when the function or the apiserver goes away: retries until a 2xx,
``Retry-After``, 410 Gone relists, apiserver restarts."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable

from kubernetes import client as k8s

from floating_ip_common import contract
from testbed.controlplane import ControlPlane
from testbed.kube import KubeBed
from testbed.receiver import Receiver
from tests.forwarder.conftest import StartForwarder
from tests.forwarder.test_forwarding import PROBE_IP, started, web


def test_the_function_down_then_503_still_gets_the_change_once_it_recovers(
    start_forwarder: StartForwarder,
    receiver: Receiver,
    kube: KubeBed,
    namespace: str,
    nodes: Callable[..., str],
) -> None:
    n1 = nodes("n1")
    subject = web(kube, namespace, {"web-1": n1}, holder=n1)
    forwarder = start_forwarder(namespace)
    started(receiver)

    receiver.stop()
    since = time.monotonic()
    kube.cordon(n1)
    forwarder.wait_metric("send_failures", 2, reason="no answer")

    receiver.answer(503, Retry_After="1")
    receiver.start()
    receiver.wait_for(
        lambda: len([r for r in receiver.received() if r.status == 503]) >= 2, "two 503s"
    )
    # Retry-After: 1 was honoured: each 503 was retried after 1 s (plus at most 10 % jitter),
    # not after the exponential backoff (the forwarder logs the delay it chose).
    delays = {e["retry_in"] for e in forwarder.logs() if e.get("status") == 503}
    assert delays and delays <= {1.0, 1.1}, delays

    receiver.answer(200)
    event = receiver.wait_subject(subject, since)
    assert event.subject == subject
    assert forwarder.metric("retries") >= 3
    assert forwarder.metric("send_failures", reason="503") >= 2
    receiver.wait_for(lambda: forwarder.metric("queue_depth") == 0, "an empty queue")


def test_a_wrong_secret_is_an_error_naming_the_cause_and_is_not_hammered(
    start_forwarder: StartForwarder, receiver: Receiver, namespace: str
) -> None:
    forwarder = start_forwarder(namespace, WEB_SECRET="not-the-functions-secret")
    forwarder.wait_metric("send_failures", 1, reason="401")
    [error] = [e for e in forwarder.logs() if e.get("level") == "error"]
    assert "WEB_SECRET" in error["message"] and error["status"] == 401, error
    assert "not-the-functions-secret" not in forwarder.log.read_text()
    # It will retry (someone may fix the Secret), but minutes later, not in a loop.
    assert 270 <= error["retry_in"] <= 330
    assert [r.status for r in receiver.received()] == [401]
    assert forwarder.metric("queue_depth") == 1


def test_a_410_gone_relists_and_misses_nothing(
    start_forwarder: StartForwarder,
    receiver: Receiver,
    kube: KubeBed,
    control_plane: ControlPlane,
    namespace: str,
    nodes: Callable[..., str],
) -> None:
    n1, n2 = nodes("n1"), nodes("n2")
    subject = web(kube, namespace, {"web-1": n1}, holder=n1)
    doomed = web(kube, namespace, {"doomed-1": n2}, name="doomed", address=PROBE_IP)
    forwarder = start_forwarder(namespace)
    started(receiver)

    # Freeze the forwarder, move etcd on and compact it (the apiserver restarts, dropping the
    # forwarder's watches), then change things: the frozen forwarder can learn of these only
    # by watching from its old, compacted resourceVersion, getting 410 Gone and relisting.
    os.kill(forwarder.pid, signal.SIGSTOP)
    try:
        kube.core.create_namespaced_config_map(
            namespace, k8s.V1ConfigMap(metadata=k8s.V1ObjectMeta(name="later"))
        )
        control_plane.compact_etcd()
        since = time.monotonic()
        kube.cordon(n1)
        kube.core.delete_namespaced_service("doomed", namespace)
    finally:
        os.kill(forwarder.pid, signal.SIGCONT)

    for kind in ("service", "endpointslice", "node", "pod"):
        forwarder.wait_metric("relists", 1, timeout=30, kind=kind)
    # The relists found both changes (the watch could not: it resumed into a 410)...
    forwarder.wait_metric("changes", 1, kind="node")
    forwarder.wait_metric("changes", 1, kind="service")
    # ...and they reach the function: each as its Service's event or inside a resync (which
    # covers every Service), whichever the forwarder sends first: whether the pause outlasted
    # the Lease's renew deadline (a new leadership begins with a resync) depends on timing,
    # and both answers are right. Each wait fails unless its Service is covered.
    receiver.wait_subject(subject, since, or_resync=True, timeout=30)
    receiver.wait_subject(doomed, since, or_resync=True, timeout=30)


def test_an_apiserver_restart_is_survived_and_later_changes_arrive(
    start_forwarder: StartForwarder,
    receiver: Receiver,
    kube: KubeBed,
    control_plane: ControlPlane,
    namespace: str,
    nodes: Callable[..., str],
) -> None:
    n1 = nodes("n1")
    subject = web(kube, namespace, {"web-1": n1}, holder=n1)
    forwarder = start_forwarder(namespace)
    started(receiver)

    control_plane.stop_apiserver()
    forwarder.wait_metric("watch_errors", 1, kind="node")
    control_plane.start_apiserver()
    since = time.monotonic()
    kube.annotate_service(namespace, "web", {contract.FIREWALL: "false"})
    kube.set_node_ready(n1, "False")
    receiver.wait_subject(subject, since, or_resync=True, timeout=30)
    assert forwarder.get("/healthz")[0] == 200
    forwarder.wait_ready()
