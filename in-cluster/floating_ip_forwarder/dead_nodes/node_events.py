"""Warning Events about nodes that look dead from the leader only (unconfirmed): they move no
IP, so the Event on the Node is how people find them with ``kubectl``.

Best effort and off the probe loop: ``report`` only queues, a thread of its own creates the
Event, and a failure is logged and counted, nothing more. Detection never waits for it.
"""

from __future__ import annotations

import contextlib
import http.client
import logging
import queue
import threading
import uuid
from datetime import UTC, datetime
from typing import Any

from floating_ip_common import contract
from floating_ip_common.kube_client import ApiError, KubeClient
from floating_ip_forwarder.ops.metrics import ForwarderMetrics

log = logging.getLogger(__name__)

REASON = "UnconfirmedNodeFailure"
COMPONENT = "floating-ip-forwarder"
NAMESPACE = contract.NODE_EVENTS_NAMESPACE
TIMEOUT = 10.0
"""Seconds a creation may take (it holds up only the next Event)."""
MAX_PENDING = 32
"""Events queued at most; past that (the API server unreachable) one is dropped, counted."""
MAX_MESSAGE = 1024

Pending = tuple[str, str, str | None]
"""``(node, why, uid)``."""


def event_body(node: str, why: str, uid: str | None, vantage: str | None, instance: str) -> Any:
    """The core/v1 Event: a Warning regarding the Node, saying why no IP moved."""
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    where = f"node {vantage}" if vantage else "the leader's node (NODE_NAME unset)"
    message = (
        f"Probes to node {node} fail from {where}, but it is not suspected: {why}. "
        "No floating IP was moved."
    )
    involved = {"apiVersion": "v1", "kind": "Node", "name": node}
    if uid:
        involved["uid"] = uid
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": f"{node}.{uuid.uuid4().hex[:16]}", "namespace": NAMESPACE},
        "involvedObject": involved,
        "type": "Warning",
        "reason": REASON,
        "message": message[:MAX_MESSAGE],
        "source": {"component": COMPONENT},
        "reportingComponent": COMPONENT,
        "reportingInstance": instance,
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    }


class NodeEvents:
    def __init__(
        self,
        client: KubeClient,
        *,
        vantage: str | None,
        instance: str,
        metrics: ForwarderMetrics,
        stopping: threading.Event,
    ) -> None:
        """``vantage``: the node this replica runs on; ``instance``: the replica's name."""
        self.client = client
        self.vantage = vantage
        self.instance = instance
        self.metrics = metrics
        self.stopping = stopping
        self._queue: queue.Queue[Pending | None] = queue.Queue(MAX_PENDING)
        self.thread = threading.Thread(target=self.run, name="node-events", daemon=True)

    def report(self, node: str, why: str, uid: str | None) -> None:
        """Queue one Event; never blocks."""
        try:
            self._queue.put_nowait((node, why, uid))
        except queue.Full:
            self._failed(node, "too many Events waiting")

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        """Let the thread end (``stopping`` must already be set)."""
        # A full queue wakes the thread anyway, and it sees ``stopping``.
        with contextlib.suppress(queue.Full):
            self._queue.put_nowait(None)

    def run(self) -> None:
        while not self.stopping.is_set():
            pending = self._queue.get()
            if pending is None or self.stopping.is_set():
                return
            try:
                self.create(*pending)
            except Exception:
                # Whatever it was, this thread must outlive it (it is part of the health).
                log.exception("node Event failed unexpectedly", extra={"node": pending[0]})
                self.metrics.node_events.inc(result="failed")

    def create(self, node: str, why: str, uid: str | None) -> None:
        body = event_body(node, why, uid, self.vantage, self.instance)
        conn = self.client.connection(TIMEOUT)
        try:
            conn.request("POST", f"/api/v1/namespaces/{NAMESPACE}/events", body)
        except (ApiError, OSError, http.client.HTTPException, ValueError) as error:
            self._failed(node, str(error))
            return
        finally:
            conn.close()
        self.metrics.node_events.inc(result="created")
        log.info("node Event created", extra={"node": node, "reason": REASON})

    def _failed(self, node: str, error: str) -> None:
        self.metrics.node_events.inc(result="failed")
        log.warning(
            "node Event not created", extra={"node": node, "reason": REASON, "error": error}
        )
