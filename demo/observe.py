"""One look at the world, through the imitation's test API and the Kubernetes API."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from demo.model import IpState, Opening, ServiceState, Snapshot
from floating_ip_common import contract
from testbed.do_imitation.server import DoImitation
from testbed.kube import KubeBed

ACTIONS_PATH = "/v2/reserved_ips/{reserved_ip}/actions"


@dataclass(frozen=True)
class Observer:
    do: DoImitation
    kube: KubeBed
    namespace: str
    ips: tuple[str, ...]
    firewall_name: str

    def snapshot(self) -> Snapshot:
        state = self.do.snapshot()
        reserved = {r["ip"]: r for r in state["reserved_ips"]}
        # The demo's own IPs first, then any the function created (``address: auto``).
        order = [ip for ip in self.ips if ip in reserved]
        order += sorted(ip for ip in reserved if ip not in self.ips)
        ips = tuple(self._ip(ip, reserved[ip]) for ip in order)
        firewall = next((f for f in state["firewalls"] if f["name"] == self.firewall_name), None)
        openings = frozenset(_openings(firewall)) if firewall else frozenset[Opening]()
        return Snapshot(ips, self._services(), openings)

    def _ip(self, ip: str, rendered: dict[str, Any]) -> IpState:
        droplet = rendered.get("droplet")
        holder = int(droplet["id"]) if droplet else None
        locked = bool(rendered.get("locked"))
        return IpState(ip, holder, locked, self._target(ip) if locked else None)

    def _target(self, ip: str) -> int | None:
        """The droplet of the latest accepted assign action for ``ip`` (the request log)."""
        path = ACTIONS_PATH.replace("{reserved_ip}", ip)
        for request in reversed(self.do.requests("POST", ACTIONS_PATH)):
            body = request.body
            if request.path == path and request.status == 201 and isinstance(body, dict):
                target = body.get("droplet_id")
                return target if isinstance(target, int) else None
        return None

    def _services(self) -> tuple[ServiceState, ...]:
        found = self.kube.core.list_namespaced_service(self.namespace).items
        states = []
        for service in sorted(found, key=lambda s: str(s.metadata.name if s.metadata else "")):
            meta, spec = service.metadata, service.spec
            if meta is None or spec is None:
                continue
            annotations = meta.annotations or {}
            states.append(
                ServiceState(
                    f"{meta.namespace}/{meta.name}",
                    annotations.get(contract.ADDRESS),
                    tuple(spec.external_ips or ()),
                    annotations.get(contract.OWNED_ADDRESS),
                )
            )
        return tuple(states)


def _openings(firewall: dict[str, Any]) -> list[Opening]:
    return [
        Opening(int(rule["ports"]), str(rule["protocol"]))
        for rule in firewall.get("inbound_rules", [])
        if str(rule.get("ports", "")).isdigit()
    ]
