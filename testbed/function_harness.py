"""Running the reconcile function in-process against the bed, as the platform would call it."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from floating_ip.handler import Request, Response, handle
from floating_ip_common import contract
from testbed.doks import WEB_SECRET, DoksWorld
from testbed.kube import KubeBed, Port
from testbed.relay_courier import RelayCourier

TRAEFIK_PORTS = [Port(80), Port(443), Port(443, "UDP", name="http3")]
WRITES = ("POST", "PUT", "DELETE", "PATCH")


def binary_event(
    kind: str, subject: str | None = None, *, kube_token: str | None = None
) -> tuple[dict[str, str], bytes]:
    """An event as the forwarder sends it; with ``kube_token``, the function's token too."""
    headers = {
        "ce-specversion": "1.0",
        "ce-id": str(uuid.uuid4()),
        "ce-source": "/tests",
        "ce-type": kind,
        "content-type": "application/json",
        contract.AUTH_HEADER: WEB_SECRET,
    }
    if subject:
        headers["ce-subject"] = subject
    if kube_token:
        headers[contract.KUBE_TOKEN_HEADER] = kube_token
    return headers, b"{}"


def resync(kube_token: str | None = None) -> tuple[dict[str, str], bytes]:
    return binary_event(contract.EVENT_RESYNC, kube_token=kube_token)


def serve_traefik(world: DoksWorld, namespace: str, ip: str, node: str) -> None:
    """A Traefik-like Service opted in for ``ip``, its pod ``traefik-1`` ready on ``node``."""
    world.do.add_reserved_ip(ip, region=world.region)
    world.kube.create_service(
        namespace, "traefik", TRAEFIK_PORTS, annotations={contract.ADDRESS: ip}
    )
    world.kube.create_pod(namespace, "traefik-1", world.node(node), {"app": "traefik"})
    world.kube.sync_endpoint_slices(namespace, "traefik")


def move_traefik(world: DoksWorld, namespace: str, number: int, to: str) -> None:
    """Pod ``traefik-<number>`` replaces ``traefik-<number - 1>``, on node ``to``."""
    world.kube.delete_pod(namespace, f"traefik-{number - 1}")
    world.kube.create_pod(namespace, f"traefik-{number}", world.node(to), {"app": "traefik"})
    world.kube.sync_endpoint_slices(namespace, "traefik")


def event_reasons(kube: KubeBed, namespace: str) -> list[tuple[str, str]]:
    """``(type, reason)`` of every Event in the namespace, sorted."""
    return sorted((e.type, e.reason) for e in kube.core.list_namespaced_event(namespace).items)


@dataclass
class FunctionRunner:
    world: DoksWorld
    env: dict[str, str]
    kube_token: str = field(repr=False)
    """Sent with every event, as the forwarder sends the token it minted."""
    courier: RelayCourier | None = None
    """Relay mode: carries the state to the function and its writes to the cluster."""

    def run(
        self,
        event: tuple[dict[str, str], bytes] | None = None,
        *,
        remaining_ms: int | None = None,
        env: Mapping[str, str] | None = None,
    ) -> Response:
        headers, body = event or resync()
        settings = env or self.env

        def call(sent: dict[str, str], payload: bytes) -> Response:
            return handle(Request("POST", sent, payload, remaining_ms), settings)

        if self.courier is not None:
            return self.courier.deliver(call, headers, body)
        return call({contract.KUBE_TOKEN_HEADER: self.kube_token, **headers}, body)

    def ok(self, **kwargs: Any) -> dict[str, Any]:
        response = self.run(**kwargs)
        assert response.status == 200, json.dumps(response.body, indent=1)
        assert response.body["errors"] == [], response.body["errors"]
        return response.body

    def assert_an_idle_resync_writes_nothing(self, namespace: str, name: str = "traefik") -> None:
        """After a settled run, a second one plans no change and writes to neither API."""
        kube = self.world.kube
        version = kube.core.read_namespaced_service(name, namespace).metadata.resource_version
        before_events = event_reasons(kube, namespace)
        self.world.do.clear_requests()

        report = self.ok()

        assert report["changes"] == []
        assert self.do_writes() == []
        after = kube.core.read_namespaced_service(name, namespace).metadata.resource_version
        assert after == version
        assert event_reasons(kube, namespace) == before_events

    def do_writes(self) -> list[str]:
        return [f"{r.method} {r.path}" for r in self.world.do.requests() if r.method in WRITES]
