"""The watcher against a hostile or broken apiserver: malformed watch events, truncated
streams and storms of 410 Gone. Each connection follows a script; the watcher must reconnect
with backoff, resume or relist as the failure calls for, and never spin.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

from floating_ip_common.kube_client import ApiError, Connection, KubeClient
from floating_ip_forwarder.forwarding.projections import View
from floating_ip_forwarder.forwarding.watched_kinds import NODES, Resource
from floating_ip_forwarder.forwarding.watcher import Watcher
from floating_ip_forwarder.ops.metrics import ForwarderMetrics

Event = dict[str, Any]


def node(name: str, version: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "resourceVersion": version}, "spec": {}, "status": {}}


class ScriptedConnection(Connection):
    def __init__(self, script: ScriptedApiserver) -> None:
        self.script = script

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        accept: str = "application/json",
        *,
        content_type: str = "application/json",
    ) -> dict[str, Any]:
        self.script.lists += 1
        return {"metadata": {"resourceVersion": "10"}, "items": [node("n1", "10")]}

    def stream(self, path: str, accept: str = "application/json") -> Iterator[dict[str, Any]]:
        self.script.watches.append(path)
        step = self.script.next_watch()
        if isinstance(step, Exception):
            raise step
        for item in step:
            if isinstance(item, Exception):
                raise item
            yield item

    def close(self) -> None:
        pass

    def abort(self) -> None:
        pass


class ScriptedApiserver(KubeClient):
    """Each watch plays the next script entry; when the script runs out, the watcher is
    stopped (the test is over)."""

    def __init__(self, watches: list[Any], stopping: threading.Event) -> None:
        self.plan = list(watches)
        self.stopping = stopping
        self.lists = 0
        self.watches: list[str] = []

    def connection(self, read_timeout: float | None = None) -> Connection:
        return ScriptedConnection(self)

    def next_watch(self) -> Any:
        if not self.plan:
            self.stopping.set()
            return []
        return self.plan.pop(0)


class Sink:
    def __init__(self) -> None:
        self.changes: list[tuple[str, View]] = []
        self.listings = 0

    def listed(
        self, resource: Resource, namespace: str | None, views: list[View], initial: bool
    ) -> None:
        self.listings += 1

    def changed(self, resource: Resource, event_type: str, view: View) -> None:
        self.changes.append((event_type, view))


class CountingStop(threading.Event):
    """A stop event whose waits are recorded instead of slept: backoff is observable."""

    def __init__(self) -> None:
        super().__init__()
        self.waits: list[float] = []

    def wait(self, timeout: float | None = None) -> bool:
        self.waits.append(timeout or 0.0)
        return self.is_set()


def run(watches: list[Any]) -> tuple[ScriptedApiserver, Sink, CountingStop, ForwarderMetrics]:
    stopping = CountingStop()
    server = ScriptedApiserver(watches, stopping)
    sink = Sink()
    metrics = ForwarderMetrics()
    watcher = Watcher(server, NODES, namespace=None, sink=sink, metrics=metrics, stopping=stopping)
    watcher.run()  # returns once the script is exhausted
    return server, sink, stopping, metrics


def gone() -> Event:
    return {"type": "ERROR", "object": {"kind": "Status", "code": 410, "message": "too old"}}


def test_malformed_events_reconnect_with_backoff_and_resume_the_watch() -> None:
    good = {"type": "MODIFIED", "object": node("n1", "11")}
    malformed: list[Any] = [
        [good, {"type": "MODIFIED", "object": "not an object"}],
        [{"type": "ADDED"}],
        [{"type": "MODIFIED", "object": {"metadata": ["not", "a", "map"]}}],
        [json.JSONDecodeError("Expecting value", "{trunc", 6)],  # a line cut short
        [{"type": "ERROR", "object": {"code": "not-a-number"}}],
    ]
    server, sink, stopping, metrics = run(malformed)
    assert server.lists == 1, "a broken stream resumes the watch; it does not relist"
    # Resumed from the version the broken watch started at: at worst an event comes twice.
    assert all("resourceVersion=10" in path for path in server.watches)
    assert [event for event, _ in sink.changes] == ["MODIFIED"]
    assert len([w for w in stopping.waits if w > 0]) == len(malformed)
    assert metrics.watch_errors.value(kind="node") == len(malformed)


def test_a_truncated_stream_resumes_without_relisting_or_waiting() -> None:
    """The server ending a watch (or a proxy cutting it) is ordinary: resume at once."""
    events = [[{"type": "MODIFIED", "object": node("n1", str(v))}] for v in range(11, 16)]
    server, sink, stopping, _ = run(events)
    assert server.lists == 1
    assert server.watches[-1].count("resourceVersion=15") == 1
    assert len(sink.changes) == 5
    assert [w for w in stopping.waits if w > 0] == []


def test_a_storm_of_410_relists_with_growing_waits_not_in_a_tight_loop() -> None:
    storm: list[Any] = [[gone()] for _ in range(8)]
    server, _, stopping, _ = run(storm)
    assert server.lists == 9
    waits = [w for w in stopping.waits if w > 0]
    assert len(waits) == 7, "the first 410 relists at once; each one after it backs off"
    assert waits[-1] > waits[0]


def test_a_410_after_progress_is_ordinary_compaction_and_relists_at_once() -> None:
    progress_then_gone = [
        [{"type": "MODIFIED", "object": node("n1", str(v))}, gone()] for v in (11, 12, 13)
    ]
    server, _, stopping, _ = run(progress_then_gone)
    assert server.lists == 4
    assert [w for w in stopping.waits if w > 0] == []


def test_a_storm_of_http_410_answers_backs_off_too() -> None:
    storm: list[Any] = [ApiError(410, "Gone") for _ in range(5)]
    server, _, stopping, _ = run(storm)
    assert server.lists == 6
    assert len([w for w in stopping.waits if w > 0]) == 4
