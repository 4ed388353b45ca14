"""List-then-watch of one resource (in one namespace, or all), as a reflector does it.

- Lists in pages, then watches from the list's resourceVersion with bookmarks, so a
  reconnect resumes where it stopped instead of relisting.
- 410 Gone (the version was compacted away) relists; the sink compares the new list with
  what it knew, so changes made while the watch was down are not missed. A 410 again right
  after a relist (a storm) waits with backoff before the next relist, so a confused
  apiserver is not hammered with full lists.
- A malformed watch event (not an object, no object in it) is a broken stream: reconnect
  with backoff and resume from the last good version.
- Any other failure (apiserver restarting, connection reset, 5xx) reconnects with
  exponential backoff and jitter, honouring ``Retry-After``.
"""

from __future__ import annotations

import http.client
import logging
import random
import threading
from collections.abc import Callable
from typing import Any, Protocol

from floating_ip_common.kube_client import ApiError, Connection, KubeClient
from floating_ip_common.retry_after import parse_retry_after
from floating_ip_forwarder.forwarding.projections import View
from floating_ip_forwarder.forwarding.watched_kinds import Resource
from floating_ip_forwarder.ops.metrics import ForwarderMetrics

WATCH_SECONDS = 300
"""The server ends each watch after this; the client then resumes from its last version."""
READ_TIMEOUT = WATCH_SECONDS + 60.0
"""No byte for this long means a dead connection (bookmarks and the server's own timeout
come well before)."""
BACKOFF_FIRST = 0.25
BACKOFF_CAP = 10.0
WATCH_MAX_RETRY_AFTER = 60.0
"""An apiserver asking for more is read as this: the watch must not fall minutes behind."""

log = logging.getLogger(__name__)


class Sink(Protocol):
    def listed(
        self, resource: Resource, namespace: str | None, views: list[View], initial: bool
    ) -> None: ...

    def changed(self, resource: Resource, event_type: str, view: View) -> None: ...


class _Gone(Exception):
    """The resourceVersion is too old: relist."""

    def __init__(self, progressed: bool = False) -> None:
        super().__init__("resource version expired")
        self.progressed = progressed
        """Whether events arrived before it (then it is ordinary compaction, not a storm)."""


class Watcher:
    def __init__(
        self,
        client: KubeClient,
        resource: Resource,
        *,
        namespace: str | None,
        sink: Sink,
        metrics: ForwarderMetrics,
        stopping: threading.Event,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.client = client
        self.resource = resource
        self.namespace = namespace
        self.sink = sink
        self.metrics = metrics
        self.stopping = stopping
        self.rand = rand
        self.synced = threading.Event()
        self.where = f"{resource.plural}" + (f" in {namespace}" if namespace else "")
        self._lock = threading.Lock()
        self._conn: Connection | None = None
        self.thread = threading.Thread(target=self.run, name=f"watch {self.where}", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        """Break the blocking read (``stopping`` must already be set)."""
        with self._lock:
            conn = self._conn
        if conn is not None:
            conn.abort()

    def run(self) -> None:
        version: str | None = None
        failures = 0
        gone_in_a_row = 0
        listed_once = False
        while not self.stopping.is_set():
            conn = self.client.connection(READ_TIMEOUT)
            with self._lock:
                self._conn = conn
            if self.stopping.is_set():
                return
            try:
                if version is None:
                    version = self._list(conn, initial=not listed_once)
                    if listed_once:
                        self.metrics.relists.inc(kind=self.resource.kind.value)
                    listed_once = True
                    self.synced.set()
                version, progressed = self._watch(conn, version)
                failures = 0
                if progressed:
                    gone_in_a_row = 0
            except _Gone as gone:
                log.info("resource version expired, relisting", extra={"watch": self.where})
                version = None
                gone_in_a_row = 1 if gone.progressed else gone_in_a_row + 1
                self._pause_in_a_storm(gone_in_a_row, gone)
            except (ApiError, OSError, http.client.HTTPException, ValueError) as error:
                if self.stopping.is_set():
                    return
                if isinstance(error, ApiError) and error.status == 410:
                    version = None
                    gone_in_a_row += 1
                    self._pause_in_a_storm(gone_in_a_row, error)
                    continue
                failures += 1
                self.metrics.watch_errors.inc(kind=self.resource.kind.value)
                delay = self._backoff(failures, error)
                log.log(
                    logging.ERROR if _is_forbidden(error) else logging.WARNING,
                    "list or watch failed, retrying",
                    extra={"watch": self.where, "error": str(error), "retry_in": round(delay, 2)},
                )
                self.stopping.wait(delay)
            except Exception:
                # A bug, not the network: say so loudly, then start over with a fresh list
                # rather than let this kind go unwatched.
                log.exception("watcher failed unexpectedly", extra={"watch": self.where})
                self.metrics.watch_errors.inc(kind=self.resource.kind.value)
                version = None
                self.stopping.wait(BACKOFF_CAP)
            finally:
                conn.close()

    def _list(self, conn: Connection, initial: bool) -> str:
        views: list[View] = []
        token = ""
        while True:
            query: dict[str, str | int] = {"limit": self.resource.page_size}
            if token:
                query["continue"] = token
            page = conn.request(
                "GET",
                self.resource.path(self.namespace, **query),
                accept=self.resource.list_accept,
            )
            meta: dict[str, Any] = page.get("metadata") or {}
            projected = (self.resource.project(item) for item in page.get("items") or ())
            views += filter(self.resource.listed, projected)
            token = str(meta.get("continue") or "")
            version = str(meta.get("resourceVersion", ""))
            del page  # let a large page go before the next one arrives
            if not token:
                break
        self.sink.listed(self.resource, self.namespace, views, initial)
        log.debug("listed", extra={"watch": self.where, "objects": len(views), "version": version})
        return version

    def _watch(self, conn: Connection, version: str) -> tuple[str, bool]:
        """Follow the watch until the server ends it: the last version, and whether any
        event arrived (a stream that ends at once has not shown the version to be good)."""
        progressed = False
        path = self.resource.path(
            self.namespace,
            watch=1,
            allowWatchBookmarks="true",
            resourceVersion=version,
            timeoutSeconds=WATCH_SECONDS,
        )
        for event in conn.stream(path, accept=self.resource.watch_accept):
            kind = event.get("type")
            obj = event.get("object")
            if not isinstance(obj, dict) or not isinstance(obj.get("metadata", {}), dict):
                raise ValueError(f"malformed watch event of type {str(kind)[:40]!r}")
            if kind == "ERROR":
                if obj.get("code") == 410:
                    raise _Gone(progressed)
                raise ApiError(int(obj.get("code") or 500), str(obj.get("message", "")))
            progressed = True
            version = str((obj.get("metadata") or {}).get("resourceVersion") or version)
            if kind in ("ADDED", "MODIFIED", "DELETED"):
                self.sink.changed(self.resource, str(kind), self.resource.project(obj))
        return version, progressed

    def _pause_in_a_storm(self, gone_in_a_row: int, error: Exception) -> None:
        """The first 410 relists at once; a fresh list's version expiring at once again (a
        storm) waits with backoff first."""
        if gone_in_a_row > 1:
            self.stopping.wait(self._backoff(gone_in_a_row - 1, error))

    def _backoff(self, failures: int, error: Exception) -> float:
        if isinstance(error, ApiError):
            retry_after = parse_retry_after(error.retry_after, cap=WATCH_MAX_RETRY_AFTER)
            if retry_after is not None:
                return retry_after
        ceiling = min(BACKOFF_CAP, BACKOFF_FIRST * 2.0 ** min(failures, 16))
        return ceiling / 2 + ceiling / 2 * self.rand()


def _is_forbidden(error: Exception) -> bool:
    return isinstance(error, ApiError) and error.status in (401, 403)
