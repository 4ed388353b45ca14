"""Relay mode's in-cluster half, for the function's tests: read the state placement needs from
the bed's apiserver, send it with the event, make the Kubernetes writes the function answers
with (in order, each conditional on the version it was decided from), and call again when it
asks to (the new anchors are in place: now the IPs may move) or when a write lost a race
(fresh state). The function itself is given no Kubernetes URL, CA or token.

It reads and writes with the function's shipped identity: relay mode hands the forwarder
exactly the rights the function has in callback mode.
"""

from __future__ import annotations

import http.client
import json
import ssl
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from floating_ip.handler import Response
from floating_ip_common import contract
from testbed.controlplane import ControlPlane

JSON = dict[str, Any]
MAX_ROUNDS = 6
"""Make-before-break takes two calls; a lost race one more."""

Call = Callable[[dict[str, str], bytes], Response]


class KubeError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status


class RelayCourier:
    def __init__(self, control_plane: ControlPlane, token: str, namespace: str) -> None:
        self.control_plane = control_plane
        self.token = token
        self.namespace = namespace
        """The function manages this namespace only (its ``NAMESPACES``)."""
        self.rounds: list[Response] = []
        self.sent_bytes: list[int] = []
        self.before_writes: Callable[[], None] | None = None
        """Called once, just before the next answer's writes are made (a test's race)."""

    # --- the state ----------------------------------------------------------------------------

    def state(self) -> JSON:
        """What the function reads in callback mode, read the same way."""
        ns = quote(self.namespace, safe="")
        suspicions = f"{contract.SUSPICIONS_NAMESPACE}/configmaps/{contract.SUSPICIONS_CONFIGMAP}"
        try:
            data = self._call("GET", f"/api/v1/namespaces/{suspicions}").get("data") or {}
        except KubeError as error:
            if error.status != 404:
                raise
            data = {}
        return {
            "services": self._items(f"/api/v1/namespaces/{ns}/services"),
            "endpointslices": self._items(
                f"/apis/discovery.k8s.io/v1/namespaces/{ns}/endpointslices"
            ),
            "pods": self._items(f"/api/v1/namespaces/{ns}/pods"),
            "nodes": self._items("/api/v1/nodes"),
            "suspicions": data,
        }

    def _items(self, path: str) -> list[JSON]:
        return list(self._call("GET", path).get("items") or [])

    # --- one delivery -------------------------------------------------------------------------

    def deliver(self, call: Call, headers: dict[str, str], body: bytes) -> Response:
        """Call until the function has nothing more for the cluster; one combined answer
        (every round's changes and errors, the last round's report otherwise)."""
        self.rounds = []
        data = json.loads(body or b"{}")
        for _ in range(MAX_ROUNDS):
            payload = json.dumps({**data, "state": self.state()}).encode()
            self.sent_bytes.append(len(payload))
            answer = call({**headers, "content-type": "application/json"}, payload)
            self.rounds.append(answer)
            # A 503 carries writes too (the Warning of a change that failed): made all the same.
            conflict = self._make(answer.body.get("kubernetes_writes") or [])
            if answer.status != 200:
                return self._combined(answer)
            if not conflict and not answer.body.get("again"):
                return self._combined(answer)
        raise AssertionError(f"still asked to call again after {MAX_ROUNDS} rounds")

    def _make(self, writes: list[JSON]) -> bool:
        """Each write in order; True when one lost a race (409): stop, read afresh."""
        if writes and self.before_writes is not None:
            meddle, self.before_writes = self.before_writes, None
            meddle()
        returned: dict[str, tuple[str, str]] = {}
        for write in writes:
            body = dict(write["body"])
            service = write["path"].partition("?")[0].removesuffix("/status")
            meta = dict(body.get("metadata") or {})
            if "resourceVersion" in meta and service in returned:
                decided_on, now = returned[service]
                if meta["resourceVersion"] == decided_on:
                    meta["resourceVersion"] = now
                    body["metadata"] = meta
            try:
                reply = self._call(write["method"], write["path"], body, write["contentType"])
            except KubeError as error:
                if error.status == 409:
                    return True
                raise
            if "resourceVersion" in meta:
                version = str(reply.get("metadata", {}).get("resourceVersion", ""))
                returned[service] = (str(meta["resourceVersion"]), version)
        return False

    def _combined(self, last: Response) -> Response:
        body = dict(last.body)
        if last.status == 200:
            body["changes"] = [c for r in self.rounds for c in r.body.get("changes", [])]
            body["errors"] = [e for r in self.rounds for e in r.body.get("errors", [])]
        return Response(last.status, body, last.headers)

    # --- HTTP -----------------------------------------------------------------------------------

    def _call(
        self, method: str, path: str, body: JSON | None = None, content_type: str = ""
    ) -> JSON:
        context = ssl.create_default_context(cafile=str(self.control_plane.ca.ca_file))
        conn = http.client.HTTPSConnection(
            "127.0.0.1", self.control_plane.apiserver_port, context=context, timeout=30
        )
        headers = {"Authorization": f"Bearer {self.token}", "Accept": "application/json"}
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            headers["Content-Type"] = content_type or "application/json"
        try:
            conn.request(method, path, body=payload, headers=headers)
            response = conn.getresponse()
            data = response.read()
        finally:
            conn.close()
        if not 200 <= response.status < 300:
            raise KubeError(response.status, data[:300].decode(errors="replace"))
        decoded: JSON = json.loads(data)
        return decoded
