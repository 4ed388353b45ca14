"""Several replicas: only the holder of the Lease sends; another takes over when it goes."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta

import pytest
from kubernetes import client as k8s

from floating_ip_common import contract
from testbed.forwarder_harness import NAMESPACE
from testbed.kube import KubeBed
from testbed.receiver import Receiver
from tests.forwarder.conftest import StartForwarder
from tests.forwarder.test_forwarding import web

# Each replica posts to its own path of the receiver, so the test can tell who sent.
A, B = "/replica-a", "/replica-b"


def test_two_replicas_one_sends_and_the_other_takes_over_when_it_stops(
    start_forwarder: StartForwarder,
    receiver: Receiver,
    kube: KubeBed,
    namespace: str,
    nodes: Callable[..., str],
) -> None:
    n1 = nodes("n1")
    subject = web(kube, namespace, {"web-1": n1}, holder=n1)
    a = start_forwarder(namespace, name="replica-a", FUNCTION_URL=receiver.url(A))
    receiver.wait_for(lambda: bool(receiver.resyncs(path=A)), "replica a's start resync")
    b = start_forwarder(namespace, name="replica-b", FUNCTION_URL=receiver.url(B))

    since = time.monotonic()
    kube.annotate_service(namespace, "web", {contract.FIREWALL: "false"})
    receiver.wait_subject(subject, since)
    b.wait_metric("changes", 1, kind="service")  # b watches too: a warm standby
    receiver.wait_for(lambda: a.metric("queue_depth") == 0, "a's queue empty")

    assert receiver.received(B) == []
    assert (a.leading(), b.leading()) == (True, False)
    assert b.metric("events_sent", type="service") == 0

    assert a.terminate() == 0  # releases the Lease on its way out
    receiver.wait_for(lambda: bool(receiver.resyncs(path=B)), "b's resync on taking over", 10)
    since = time.monotonic()
    kube.cordon(n1)
    event = receiver.wait_subject(subject, since)
    assert event.path == B
    assert b.leading()


@pytest.mark.slow
def test_a_replica_that_dies_without_releasing_is_replaced_after_the_lease_expires(
    start_forwarder: StartForwarder,
    receiver: Receiver,
    kube: KubeBed,
    namespace: str,
    nodes: Callable[..., str],
    lease_name: str,
) -> None:
    n1 = nodes("n1")
    web(kube, namespace, {"web-1": n1}, holder=n1)
    a = start_forwarder(namespace, name="replica-a", FUNCTION_URL=receiver.url(A))
    receiver.wait_for(lambda: bool(receiver.resyncs(path=A)), "replica a's start resync")
    b = start_forwarder(namespace, name="replica-b", FUNCTION_URL=receiver.url(B))
    b.wait_ready()

    a.crash()
    leases = k8s.CoordinationV1Api(kube.core.api_client)
    last = leases.read_namespaced_lease(lease_name, NAMESPACE).spec
    assert last.holder_identity == "replica-a"
    receiver.wait_for(lambda: bool(receiver.resyncs(path=B)), "b takes over", timeout=40)
    assert b.leading()
    taken = leases.read_namespaced_lease(lease_name, NAMESPACE).spec
    # b took the Lease only once a's last renewal had expired (never while a might be alive),
    # and recorded the takeover: the times are the Lease's own, written by the replicas.
    assert taken.holder_identity == "replica-b"
    assert taken.lease_transitions == (last.lease_transitions or 0) + 1
    assert last.renew_time is not None and taken.acquire_time is not None
    expired = last.renew_time + timedelta(seconds=last.lease_duration_seconds)
    assert taken.acquire_time >= expired - timedelta(milliseconds=50), (taken, last)
