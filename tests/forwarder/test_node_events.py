"""The Warning Event about an unconfirmed node, without a bed: what it says and where it goes;
a failure to create it is counted and logged, never raised; ``report`` never waits."""

from __future__ import annotations

import threading
from typing import Any, cast

import pytest

from floating_ip_common.kube_client import ApiError, KubeClient
from floating_ip_forwarder.dead_nodes import node_events
from floating_ip_forwarder.dead_nodes.node_events import NodeEvents
from floating_ip_forwarder.ops.metrics import ForwarderMetrics
from testbed.processes import wait_until

WHY = "replica-1 still reach it"


class FakeConnection:
    def __init__(self, client: FakeClient) -> None:
        self.client = client

    def request(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        self.client.calls.append((method, path, body))
        if self.client.fail is not None:
            raise self.client.fail
        return {}

    def close(self) -> None:
        self.client.closed += 1


class FakeClient:
    def __init__(self, fail: Exception | None = None) -> None:
        self.fail = fail
        self.calls: list[tuple[str, str, Any]] = []
        self.closed = 0
        self.timeouts: list[float | None] = []

    def connection(self, read_timeout: float | None = None) -> FakeConnection:
        self.timeouts.append(read_timeout)
        return FakeConnection(self)


def events(client: FakeClient, vantage: str | None = "n2") -> NodeEvents:
    return NodeEvents(
        cast(KubeClient, client),
        vantage=vantage,
        instance="replica-0",
        metrics=ForwarderMetrics(),
        stopping=threading.Event(),
    )


def test_the_event_is_a_warning_on_the_node_in_default_saying_nothing_moved() -> None:
    client = FakeClient()
    sink = events(client)
    sink.create("n1", WHY, "uid-n1")
    [(method, path, body)] = client.calls
    assert (method, path) == ("POST", "/api/v1/namespaces/default/events")
    assert body["metadata"]["namespace"] == "default"
    assert body["metadata"]["name"].startswith("n1.")
    assert body["involvedObject"] == {
        "apiVersion": "v1",
        "kind": "Node",
        "name": "n1",
        "uid": "uid-n1",
    }
    assert (body["type"], body["reason"]) == ("Warning", "UnconfirmedNodeFailure")
    assert body["message"] == (
        "Probes to node n1 fail from node n2, but it is not suspected: "
        "replica-1 still reach it. No floating IP was moved."
    )
    assert body["source"] == {"component": "floating-ip-forwarder"}
    assert body["reportingComponent"] == "floating-ip-forwarder"
    assert body["reportingInstance"] == "replica-0"
    assert body["count"] == 1 and body["firstTimestamp"] == body["lastTimestamp"]
    assert client.timeouts == [node_events.TIMEOUT] and client.closed == 1
    assert sink.metrics.node_events.value(result="created") == 1


def test_without_a_uid_or_own_node_the_event_says_what_it_knows() -> None:
    client = FakeClient()
    events(client, vantage=None).create("n1", WHY, None)
    [(_, _, body)] = client.calls
    assert "uid" not in body["involvedObject"]
    assert "from the leader's node (NODE_NAME unset)" in body["message"]


@pytest.mark.parametrize(
    "error",
    [ApiError(403, "events is forbidden"), ConnectionRefusedError("refused"), TimeoutError()],
    ids=["forbidden", "refused", "timeout"],
)
def test_a_failure_is_counted_and_logged_never_raised(
    error: Exception, caplog: pytest.LogCaptureFixture
) -> None:
    client = FakeClient(fail=error)
    sink = events(client)
    sink.create("n1", WHY, None)
    assert sink.metrics.node_events.value(result="failed") == 1
    assert sink.metrics.node_events.value(result="created") == 0
    assert client.closed == 1
    [record] = [r for r in caplog.records if r.getMessage() == "node Event not created"]
    assert record.levelname == "WARNING"


def test_report_never_waits_and_drops_past_its_bound() -> None:
    client = FakeClient()
    sink = events(client)  # its thread not started: nothing is taken off the queue
    for i in range(node_events.MAX_PENDING + 2):
        sink.report(f"n{i}", WHY, None)
    assert client.calls == []
    assert sink.metrics.node_events.value(result="failed") == 2


def test_the_thread_creates_what_is_reported_and_ends_when_stopped() -> None:
    client = FakeClient()
    sink = events(client)
    sink.start()
    sink.report("n1", WHY, None)
    sink.report("n2", WHY, None)
    wait_until(
        lambda: sink.metrics.node_events.value(result="created") == 2,
        timeout=5,
        what="both Events created",
    )
    assert [body["involvedObject"]["name"] for _, _, body in client.calls] == ["n1", "n2"]
    sink.stopping.set()
    sink.stop()
    sink.thread.join(timeout=2)
    assert not sink.thread.is_alive()
