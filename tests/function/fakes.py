"""Fakes of the function's two adapters and of its deadline: every call lands in one journal,
in order, so a test reads what was written and in what order; failures are injected by call.
No process, no socket, no sleeping."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from floating_ip.adapters.digitalocean import DigitalOcean
from floating_ip.adapters.kubernetes import Kubernetes
from floating_ip.deadline import Deadline
from floating_ip.errors import OutOfTime
from floating_ip_common import contract

JSON = dict[str, Any]
Call = tuple[str, ...]
"""``(operation, subject...)``: ``("patch", "apps/web")``, ``("assign", ip, droplet)``."""


@dataclass
class Journal:
    calls: list[Call] = field(default_factory=list)
    failures: dict[str, list[Exception | None]] = field(default_factory=dict)
    """Per operation, what its next calls do in turn: raise the error, or (``None``) succeed."""

    def fail(self, operation: str, *errors: Exception | None) -> None:
        self.failures.setdefault(operation, []).extend(errors)

    def call(self, *call: str) -> None:
        self.calls.append(call)
        pending = self.failures.get(call[0])
        if pending:
            error = pending.pop(0)
            if error is not None:
                raise error

    def operations(self) -> list[str]:
        return [call[0] for call in self.calls]


class FakeDeadline(Deadline):
    """A deadline on a clock that only moves when something waits."""

    def __init__(self, budget: float = 20.0) -> None:
        self.now = 0.0
        super().__init__(budget, clock=lambda: self.now)
        self.slept: list[tuple[float, str]] = []

    def sleep(self, seconds: float, what: str) -> None:
        if seconds >= self.remaining():
            raise OutOfTime(f"out of time while waiting for {what}")
        self.slept.append((seconds, what))
        self.now += max(0.0, seconds)


class FakeKube(Kubernetes):
    def __init__(self, journal: Journal, listed: dict[str, list[JSON]] | None = None) -> None:
        self.journal = journal
        self.listed = listed or {}
        """``services``, ``endpointslices``, ``pods``, ``nodes``: every object, any namespace."""
        self.config_maps: dict[str, dict[str, str]] = {}
        """``<namespace>/<name>`` -> data."""
        self.version = 0
        self.bytes_read = 0
        self.bytes_decoded = 0

    def close(self) -> None:
        pass

    def _listed(self, kind: str, namespace: str | None) -> list[JSON]:
        self.journal.call("list " + kind, namespace or "*")
        items = [
            o
            for o in self.listed.get(kind, [])
            if namespace is None or o["metadata"].get("namespace") == namespace
        ]
        self.bytes_decoded += len(json.dumps({"items": items}))
        self.bytes_read = self.bytes_decoded  # never compressed here
        return items

    def list_services(
        self, namespace: str | None, keep: Callable[[JSON], bool] | None = None
    ) -> list[JSON]:
        return [s for s in self._listed("services", namespace) if keep is None or keep(s)]

    def list_endpoint_slices(
        self, namespace: str | None, services: list[str] | None = None
    ) -> list[JSON]:
        return [
            s
            for s in self._listed("endpointslices", namespace)
            if services is None
            or (s["metadata"].get("labels") or {}).get(contract.SERVICE_NAME_LABEL) in services
        ]

    def list_pods(self, namespace: str) -> list[JSON]:
        return self._listed("pods", namespace)

    def list_nodes(self) -> list[JSON]:
        return self._listed("nodes", None)

    def read_config_map_data(self, namespace: str, name: str) -> dict[str, str] | None:
        self.journal.call("get configmap", f"{namespace}/{name}")
        return dict(self.config_maps.get(f"{namespace}/{name}", {}))

    def patch_service(self, namespace: str, name: str, patch: JSON) -> JSON:
        self.journal.call("patch", f"{namespace}/{name}", repr(patch))
        self.version += 1
        return {"metadata": {"resourceVersion": str(self.version)}}

    def patch_service_status(self, namespace: str, name: str, patch: JSON) -> JSON:
        self.journal.call("patch status", f"{namespace}/{name}", repr(patch))
        self.version += 1
        return {"metadata": {"resourceVersion": str(self.version)}}

    def create_event(self, namespace: str, event: JSON) -> JSON:
        self.journal.call(
            "event", f"{namespace}/{event['involvedObject']['name']}", event["reason"]
        )
        return event


class FakeDigitalOcean(DigitalOcean):
    def __init__(
        self,
        journal: Journal,
        *,
        action_statuses: tuple[str, ...] = ("completed",),
        reserved_ips: list[JSON] | None = None,
        firewalls: list[JSON] | None = None,
        region: str = "nyc3",
    ) -> None:
        self.journal = journal
        self.action_statuses = list(action_statuses)
        """The assign action's status when created, then at each poll (the last one stays)."""
        self.listed_ips = reserved_ips or []
        self.listed_firewalls = firewalls or []
        self.region = region

    def close(self) -> None:
        pass

    def create_reserved_ip(self, droplet_id: int) -> tuple[JSON, int | None]:
        self.journal.call("create reserved ip", str(droplet_id))
        created = {"ip": "203.0.113.99", "droplet": None, "locked": True}
        return {**created, "region": {"slug": self.region}}, 4242

    def _status(self) -> str:
        return (
            self.action_statuses.pop(0)
            if len(self.action_statuses) > 1
            else self.action_statuses[0]
        )

    def reserved_ips(self) -> list[JSON]:
        self.journal.call("list reserved IPs")
        return self.listed_ips

    def firewalls(self) -> list[JSON]:
        self.journal.call("list firewalls")
        return self.listed_firewalls

    def cluster(self, cluster_id: str) -> JSON:
        self.journal.call("get cluster", cluster_id)
        return {"id": cluster_id, "region": self.region}

    def assign(self, ip: str, droplet_id: int) -> JSON:
        self.journal.call("assign", ip, str(droplet_id))
        return {"id": 7, "status": self._status()}

    def action(self, action_id: int) -> JSON:
        self.journal.call("action", str(action_id))
        return {"id": action_id, "status": self._status()}

    def create_firewall(self, body: JSON) -> JSON:
        self.journal.call("create firewall", body["name"])
        return {"id": "fw-new", **body}

    def update_firewall(self, firewall_id: str, body: JSON) -> JSON:
        self.journal.call("update firewall", firewall_id)
        return {"id": firewall_id, **body}

    def delete_firewall(self, firewall_id: str) -> None:
        self.journal.call("delete firewall", firewall_id)
