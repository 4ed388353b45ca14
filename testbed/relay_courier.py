"""Relay mode's in-cluster half, for the function's tests: the forwarder's own relay (it reads
the state placement needs from the bed's apiserver, sends it with the event, makes the
Kubernetes writes the function answers with and calls again while the plan asks to), calling
the function in-process instead of over HTTPS. The function itself is given no Kubernetes URL,
CA or token.

It reads and writes with the function's shipped identity: relay mode hands the forwarder
exactly the rights the function has in callback mode.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from floating_ip.handler import Response
from floating_ip_common.kube_access import KubeAccess
from floating_ip_common.kube_client import KubeClient
from floating_ip_forwarder.forwarding.relay import Relay
from testbed.controlplane import ControlPlane

Call = Callable[[dict[str, str], bytes], Response]


class RelayCourier:
    def __init__(self, control_plane: ControlPlane, token_file: Path, namespace: str) -> None:
        self.access = KubeAccess(control_plane.url, str(token_file), str(control_plane.ca.ca_file))
        self.namespace = namespace
        """The function manages this namespace only (its ``NAMESPACES``)."""
        self.rounds: list[Response] = []
        self.sent_bytes: list[int] = []
        self.before_writes: Callable[[], None] | None = None
        """Called once, just before the next answer's writes are made (a test's race)."""

    def deliver(self, call: Call, headers: dict[str, str], body: bytes) -> Response:
        """Call until the function has nothing more for the cluster; one combined answer
        (every round's changes and errors, the last round's report otherwise)."""
        self.rounds = []

        def post(payload: bytes) -> tuple[Response, int | None, bytes]:
            self.sent_bytes.append(len(payload))
            answer = call({**headers, "content-type": "application/json"}, payload)
            self.rounds.append(answer)
            if answer.body.get("kubernetes_writes") and self.before_writes is not None:
                meddle, self.before_writes = self.before_writes, None
                meddle()
            return answer, answer.status, json.dumps(answer.body).encode()

        connection = KubeClient(self.access).connection()
        try:
            relay = Relay(connection, (self.namespace,))
            calls = relay.deliver(json.loads(body or b"{}"), post)
        finally:
            connection.close()
        return self._combined(calls[-1].kept)

    def _combined(self, last: Response) -> Response:
        body = dict(last.body)
        if last.status == 200:
            body["changes"] = [c for r in self.rounds for c in r.body.get("changes", [])]
            body["errors"] = [e for r in self.rounds for e in r.body.get("errors", [])]
        return Response(last.status, body, last.headers)
