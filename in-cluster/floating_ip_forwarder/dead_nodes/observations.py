"""What each replica's probes see, shared through one ConfigMap: the second vantage point.

Every replica probes every endpoint. Each writes its own key (its pod name) of
``floating-ip-observations``, by merge patch, with the nodes it sees failing, its own node,
and whether it is cut off (reached no other node's endpoint). It writes

- when that changes, and
- every ``heartbeat`` while an incident is on: its own failing set or another replica's
  fresh one is not empty. So a replica that still reaches a node answers the leader's
  candidate within a watch event and a write, and nothing is written while all is well.

Each replica watches the ConfigMap and times every other replica's entry on its own
monotonic clock, from when it last saw the entry *change* (never the writer's clock): an
entry is fresh for ``within`` seconds after a change. An entry only ever seen as it was when
this replica started is not fresh (its writer may be long gone).
"""

from __future__ import annotations

import http.client
import json
import logging
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from floating_ip_common.kube_client import MERGE_PATCH_TYPE, ApiError, Connection, KubeClient
from floating_ip_forwarder.dead_nodes.suspicion import Peer

log = logging.getLogger(__name__)

WATCH_SECONDS = 300
BACKOFF_FIRST = 0.25
BACKOFF_CAP = 10.0


def encode(node: str | None, failing: frozenset[str], cut_off: bool, wall: float) -> str:
    at = datetime.fromtimestamp(wall, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    entry = {"node": node, "failing": sorted(failing), "cutOff": cut_off, "at": at}
    return json.dumps(entry, sort_keys=True)


def decode(replica: str, text: object) -> Peer | None:
    """A replica's entry, or ``None`` when unreadable."""
    try:
        entry = json.loads(str(text))
        node = entry.get("node")
        failing = entry.get("failing") or []
        if not isinstance(failing, list) or not all(isinstance(f, str) for f in failing):
            return None
        return Peer(
            replica,
            node if isinstance(node, str) and node else None,
            frozenset(failing),
            bool(entry.get("cutOff", False)),
        )
    except (ValueError, AttributeError):
        return None


@dataclass(frozen=True, slots=True)
class _Seen:
    text: str
    changed: float | None
    """When this replica saw it change (``None``: never, only as first listed)."""
    first_seen: float


class PeerBook:
    """The other replicas' entries, timed on this replica's clock (thread-safe)."""

    def __init__(self, identity: str, clock: Callable[[], float] = time.monotonic) -> None:
        self.identity = identity
        self.clock = clock
        self._lock = threading.Lock()
        self._seen: dict[str, _Seen] = {}
        self._listed = False

    def saw(self, data: Mapping[str, Any]) -> bool:
        """The ConfigMap's data as now; whether another replica's entry changed."""
        now = self.clock()
        changed = False
        with self._lock:
            listed, self._listed = self._listed, True
            for key in set(self._seen) - set(data):
                del self._seen[key]
            for key, value in data.items():
                if key == self.identity:
                    continue
                text = str(value)
                old = self._seen.get(key)
                if old is None:
                    # Seen before the first list, it is old news; after it, a new entry.
                    self._seen[key] = _Seen(text, now if listed else None, now)
                    changed = changed or listed
                elif old.text != text:
                    self._seen[key] = _Seen(text, now, old.first_seen)
                    changed = True
        return changed

    def fresh(self, within: float) -> tuple[Peer, ...]:
        now = self.clock()
        with self._lock:
            seen = dict(self._seen)
        found = []
        for key, entry in sorted(seen.items()):
            if entry.changed is not None and now - entry.changed < within:
                peer = decode(key, entry.text)
                if peer is not None:
                    found.append(peer)
        return tuple(found)

    def saw_removed(self, keys: list[str]) -> None:
        """Entries this replica removed itself (not to be removed again)."""
        with self._lock:
            for key in keys:
                self._seen.pop(key, None)

    def forgotten(self, after: float) -> list[str]:
        """Entries unchanged for ``after`` seconds (pods long gone, as a rule)."""
        now = self.clock()
        with self._lock:
            return sorted(
                key
                for key, entry in self._seen.items()
                if now - (entry.changed if entry.changed is not None else entry.first_seen) >= after
            )


class ObservationBoard:
    """Writes this replica's key and removes forgotten ones (merge patches: each replica
    touches its own key only, so no write conflicts with another's)."""

    def __init__(self, client: KubeClient, namespace: str, name: str) -> None:
        self.client = client
        self.namespace = namespace
        self.name = name
        self.path = f"/api/v1/namespaces/{namespace}/configmaps"

    def patch(self, data: Mapping[str, str | None]) -> None:
        conn = self.client.connection()
        try:
            try:
                conn.request(
                    "PATCH",
                    f"{self.path}/{self.name}",
                    {"data": dict(data)},
                    content_type=MERGE_PATCH_TYPE,
                )
            except ApiError as error:
                if error.status != 404:
                    raise
                body = {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "metadata": {
                        "name": self.name,
                        "namespace": self.namespace,
                        "labels": {"app.kubernetes.io/part-of": "doks-floating-ip"},
                    },
                    "data": {k: v for k, v in data.items() if v is not None},
                }
                conn.request("POST", self.path, body)
        finally:
            conn.close()


class ObservationWatch:
    """Lists and watches the one ConfigMap (by a field selector on its name, which the
    Role's resourceNames allow) and hands each version's data to ``on_data``."""

    def __init__(
        self,
        client: KubeClient,
        namespace: str,
        name: str,
        on_data: Callable[[Mapping[str, Any]], None],
        stopping: threading.Event,
    ) -> None:
        self.client = client
        self.path = f"/api/v1/namespaces/{namespace}/configmaps"
        self.selector = f"metadata.name={name}"
        self.on_data = on_data
        self.stopping = stopping
        self._lock = threading.Lock()
        self._conn: Connection | None = None
        self.thread = threading.Thread(target=self.run, name="watch observations", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        with self._lock:
            conn = self._conn
        if conn is not None:
            conn.abort()

    def run(self) -> None:
        failures = 0
        while not self.stopping.is_set():
            conn = self.client.connection(WATCH_SECONDS + 60.0)
            with self._lock:
                self._conn = conn
            try:
                self._follow(conn)
                failures = 0
            except (ApiError, OSError, http.client.HTTPException, ValueError) as error:
                if self.stopping.is_set():
                    return
                failures += 1
                ceiling = min(BACKOFF_CAP, BACKOFF_FIRST * 2.0 ** min(failures, 16))
                delay = ceiling / 2 + ceiling / 2 * random.random()  # noqa: S311 - jitter
                log.warning(
                    "watching the observations failed, retrying",
                    extra={"error": str(error), "retry_in": round(delay, 2)},
                )
                self.stopping.wait(delay)
            finally:
                conn.close()

    def _follow(self, conn: Connection) -> None:
        listed = conn.request("GET", f"{self.path}?{urlencode({'fieldSelector': self.selector})}")
        items = listed.get("items") or []
        self.on_data(_data(items[0]) if items else {})
        version = str((listed.get("metadata") or {}).get("resourceVersion", ""))
        query = {
            "fieldSelector": self.selector,
            "watch": 1,
            "allowWatchBookmarks": "true",
            "resourceVersion": version,
            "timeoutSeconds": WATCH_SECONDS,
        }
        for event in conn.stream(f"{self.path}?{urlencode(query)}"):
            kind, obj = event.get("type"), event.get("object")
            if not isinstance(obj, dict):
                raise ValueError("malformed watch event")
            if kind == "ERROR":
                raise ApiError(int(obj.get("code") or 500), str(obj.get("message", "")))
            if kind in ("ADDED", "MODIFIED"):
                self.on_data(_data(obj))
            elif kind == "DELETED":
                self.on_data({})


def _data(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    data = obj.get("data")
    return data if isinstance(data, dict) else {}
