"""Recording, with wall-clock receive times, what the failover bench must time: the anchors a
Service lists (``spec.externalIPs`` or its ingress; a Kubernetes watch), each reserved IP's
holder and each call the function answered (polled)."""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import ssl
import threading
import time
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from demo.logs import Call, LogTail, parse_call
from testbed.controlplane import ControlPlane
from testbed.do_imitation.server import DoImitation

WATCH_SECONDS = 60
"""Each watch request's server-side timeout; the watch is then resumed where it was."""
POLL_INTERVAL = 0.01


def external_ips(service: dict[str, Any]) -> tuple[str, ...]:
    """The anchors an externalIPs-mode Service lists: its ``spec.externalIPs``."""
    return tuple(service.get("spec", {}).get("externalIPs") or ())


def ingress_anchors(reserved_ip: str) -> Callable[[dict[str, Any]], tuple[str, ...]]:
    """The anchors a LoadBalancer-class Service lists: its ingress IPs but the reserved IP."""

    def anchors(service: dict[str, Any]) -> tuple[str, ...]:
        load_balancer = (service.get("status") or {}).get("loadBalancer") or {}
        ips = (entry.get("ip") for entry in load_balancer.get("ingress") or [])
        return tuple(ip for ip in ips if ip and ip != reserved_ip)

    return anchors


class ServiceWatch:
    """Watches one Service and keeps every list of anchors it was seen with (``listed``:
    ``spec.externalIPs`` by default), stamped with the time the watch event arrived (raw
    JSON lines: the generated client's model decoding would add its own milliseconds)."""

    def __init__(
        self,
        plane: ControlPlane,
        namespace: str,
        name: str,
        listed: Callable[[dict[str, Any]], tuple[str, ...]] = external_ips,
    ) -> None:
        self.plane = plane
        self.listed = listed
        self.path = f"/api/v1/namespaces/{namespace}/services"
        self.name = name
        self.records: list[tuple[float, tuple[str, ...]]] = []
        self._context = ssl.create_default_context(cafile=str(plane.ca.ca_file))
        self._context.load_cert_chain(str(plane.admin.cert), str(plane.admin.key))
        self._stopping = threading.Event()
        self._conn: http.client.HTTPSConnection | None = None
        self._thread = threading.Thread(target=self._run, name="service-watch", daemon=True)
        self.error: BaseException | None = None

    def __enter__(self) -> ServiceWatch:
        self._version = self._list()
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stopping.set()
        conn = self._conn
        if conn is not None and conn.sock is not None:
            # Unblocks the read the watch thread waits in.
            with contextlib.suppress(OSError):
                conn.sock.shutdown(socket.SHUT_RDWR)
        self._thread.join(10)

    def latest(self) -> tuple[str, ...] | None:
        return self.records[-1][1] if self.records else None

    def _connection(self) -> http.client.HTTPSConnection:
        return http.client.HTTPSConnection(
            "127.0.0.1", self.plane.apiserver_port, context=self._context, timeout=None
        )

    def _query(self, **params: str) -> str:
        selector = {"fieldSelector": f"metadata.name={self.name}"}
        return f"{self.path}?{urllib.parse.urlencode({**selector, **params})}"

    def _list(self) -> str:
        """Records the Service as it is now; returns the list's resourceVersion."""
        conn = self._connection()
        try:
            conn.request("GET", self._query())
            listed = json.loads(conn.getresponse().read())
        finally:
            conn.close()
        for item in listed["items"]:
            self._record(item)
        return str(listed["metadata"]["resourceVersion"])

    def _record(self, service: dict[str, Any]) -> None:
        self.records.append((time.time(), self.listed(service)))

    def _run(self) -> None:
        try:
            while not self._stopping.is_set():
                self._watch_once()
        except BaseException as error:  # reported by the bench, which then fails the run
            if not self._stopping.is_set():
                self.error = error

    def _watch_once(self) -> None:
        conn = self._connection()
        self._conn = conn
        try:
            query = self._query(
                watch="1",
                resourceVersion=self._version,
                allowWatchBookmarks="true",
                timeoutSeconds=str(WATCH_SECONDS),
            )
            conn.request("GET", query)
            response = conn.getresponse()
            for line in response:
                event = json.loads(line)
                kind, obj = event["type"], event["object"]
                if kind == "ERROR":  # 410 Gone: the version is too old, list again
                    self._version = self._list()
                    return
                self._version = str(obj["metadata"]["resourceVersion"])
                if kind in ("ADDED", "MODIFIED"):
                    self._record(obj)
        finally:
            conn.close()


@dataclass(frozen=True)
class AnsweredCall:
    seen_at: float
    """When the function's log line was read (wall clock)."""
    call: Call

    @property
    def started_at(self) -> float:
        """When the call began, from its own duration (an estimate: later than the truth by
        the HTTP overhead and the polling interval)."""
        return self.seen_at - (self.call.seconds or 0.0)


class Monitor:
    """Polls, every ``POLL_INTERVAL``, each reserved IP's holder in the DigitalOcean imitation
    (looking also completes the actions that are due, so completion is seen at its due
    time, not at the function's next poll) and the function's log."""

    def __init__(self, do: DoImitation, ips: Sequence[str], function_log: Path) -> None:
        self.do = do
        self.ips = tuple(ips)
        self.holders: dict[str, list[tuple[float, int | None]]] = {ip: [] for ip in self.ips}
        self.calls: list[AnsweredCall] = []
        self.started = time.time()
        self._log = LogTail(function_log)
        self._log.new_lines()  # the start-up's calls are not the bench's
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="monitor", daemon=True)
        self.error: BaseException | None = None

    def __enter__(self) -> Monitor:
        self._look()
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stopping.set()
        self._thread.join(10)

    def holder(self, ip: str) -> int | None:
        seen = self.holders[ip]
        return seen[-1][1] if seen else None

    def call_starts(self) -> list[float]:
        return [c.started_at for c in self.calls]

    def calls_between(self, since: float, until: float) -> list[AnsweredCall]:
        return [c for c in self.calls if since <= c.started_at <= until]

    def _run(self) -> None:
        try:
            while not self._stopping.wait(POLL_INTERVAL):
                self._look()
        except BaseException as error:  # reported by the bench, which then fails the run
            self.error = error

    def _look(self) -> None:
        for ip in self.ips:
            holder = self.do.reserved_ip_holder(ip)
            if holder != self.holder(ip) or not self.holders[ip]:
                self.holders[ip].append((time.time(), holder))
        for line in self._log.new_lines():
            call = parse_call(line)
            if call is not None:
                self.calls.append(AnsweredCall(time.time(), call))
