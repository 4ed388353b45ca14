"""Keeps trying to hold the election Lease; reports leadership changes to a callback."""

from __future__ import annotations

import http.client
import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from floating_ip_common.kube_client import ApiError, Connection, KubeClient
from floating_ip_forwarder.election.lease_rules import Election, LeaseRecord, Step, record_from

LEASE_DURATION = 15.0
RENEW_DEADLINE = 10.0
RETRY_PERIOD = 2.0

log = logging.getLogger(__name__)


class LeaseKeeper:
    def __init__(
        self,
        client: KubeClient,
        *,
        namespace: str,
        name: str,
        identity: str,
        on_change: Callable[[bool], None],
        stopping: threading.Event,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.path = f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases"
        self.namespace = namespace
        self.name = name
        self.election = Election(identity, LEASE_DURATION, RENEW_DEADLINE)
        self.on_change = on_change
        self.stopping = stopping
        self.clock = clock
        self._leading = False
        self._record: LeaseRecord | None = None
        self._conn: Connection = client.connection(RETRY_PERIOD * 2)
        self.thread = threading.Thread(target=self.run, name="lease", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                self._attempt()
            except (ApiError, OSError, http.client.HTTPException, ValueError) as error:
                self._conn.close()
                forbidden = isinstance(error, ApiError) and error.status == 403
                level = logging.ERROR if forbidden else logging.WARNING
                log.log(level, "lease request failed", extra={"error": str(error)})
            self._report(self.election.leading(self.clock()))
            self.stopping.wait(RETRY_PERIOD)

    def release(self) -> None:
        """Give the Lease up (after the thread stopped and no POST is in flight)."""
        self.thread.join(RETRY_PERIOD * 3)
        if not self._leading or self._record is None:
            return
        self._report(False)
        try:
            self._put(self.election.released_spec(self._record, datetime.now(UTC)), self._record)
            log.info("lease released")
        except (ApiError, OSError, http.client.HTTPException, ValueError) as error:
            log.warning("could not release the lease", extra={"error": str(error)})

    # --- one round ------------------------------------------------------------------------

    def _attempt(self) -> None:
        record = self._read()
        now = self.clock()
        step = self.election.step(record, now)
        if step is Step.WAIT:
            if self._leading:
                self.election.lost()  # someone else took it: stop at once
            return
        spec = self.election.spec(record, datetime.now(UTC))
        try:
            if step is Step.CREATE:
                body = {
                    "apiVersion": "coordination.k8s.io/v1",
                    "kind": "Lease",
                    "metadata": {"name": self.name, "namespace": self.namespace},
                    "spec": spec,
                }
                self._record = record_from(self._conn.request("POST", self.path, body))
            else:
                assert record is not None
                self._put(spec, record)
        except ApiError as error:
            if error.status == 409:
                return  # another replica wrote first: read again next round
            raise
        self.election.held(now)

    def _read(self) -> LeaseRecord | None:
        try:
            self._record = record_from(self._conn.request("GET", f"{self.path}/{self.name}"))
        except ApiError as error:
            if error.status != 404:
                raise
            self._record = None
        return self._record

    def _put(self, spec: dict[str, Any], record: LeaseRecord) -> None:
        body = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {
                "name": self.name,
                "namespace": self.namespace,
                "resourceVersion": record.resource_version,
            },
            "spec": spec,
        }
        self._record = record_from(self._conn.request("PUT", f"{self.path}/{self.name}", body))

    def _report(self, leading: bool) -> None:
        if leading != self._leading:
            self._leading = leading
            self.on_change(leading)
