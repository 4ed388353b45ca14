"""Relay mode's Kubernetes: the cluster as the caller saw it, and the writes for it to carry.

For clusters whose API the function cannot reach (``CLUSTER_ACCESS=relay``): the event
brings the objects placement reads (``ClusterState``), served here through the same calls as
``kubernetes.Kubernetes``, so ``observe`` and ``translate`` read them as they read the API's
answers. The writes the plan decides are not made but collected (``KubeWrite``), in the
order ``apply`` makes them, each a Service patch whose ``metadata.resourceVersion`` makes it
conditional, or an Event; the caller (the forwarder, inside the cluster) makes them. The
decision and its executor are the same in both modes: only who carries the Kubernetes
writes differs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from floating_ip_common import contract

JSON = dict[str, Any]
MERGE_PATCH = "application/merge-patch+json"
FIELD_MANAGER = "floating-ip"
"""As ``kubernetes.FIELD_MANAGER``: the writes are the function's, whoever carries them."""
KINDS = ("services", "endpointslices", "pods", "nodes")


class BadState(ValueError):
    """The event's state is not what relay mode reads (the message names the part)."""


@dataclass(frozen=True)
class ClusterState:
    """Raw Kubernetes objects, as the API would list them, and the forwarder's suspicions."""

    services: tuple[JSON, ...]
    endpoint_slices: tuple[JSON, ...]
    pods: tuple[JSON, ...]
    nodes: tuple[JSON, ...]
    suspicions: dict[str, str]
    """The data of ``contract.SUSPICIONS_CONFIGMAP`` (empty: none suspected)."""

    @classmethod
    def from_json(cls, raw: object) -> ClusterState:
        if not isinstance(raw, Mapping):
            raise BadState("the state must be a JSON object")
        lists: dict[str, tuple[JSON, ...]] = {}
        for kind in KINDS:
            items = raw.get(kind, [])
            if not isinstance(items, list) or not all(_is_object(i) for i in items):
                raise BadState(f"state.{kind} must be a list of Kubernetes objects")
            lists[kind] = tuple(items)
        suspicions = raw.get("suspicions", {})
        if not isinstance(suspicions, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in suspicions.items()
        ):
            raise BadState("state.suspicions must map node names to text")
        return cls(
            lists["services"], lists["endpointslices"], lists["pods"], lists["nodes"],
            dict(suspicions),
        )  # fmt: skip


def _is_object(item: object) -> bool:
    if not isinstance(item, Mapping):
        return False
    meta = item.get("metadata")
    return isinstance(meta, Mapping) and isinstance(meta.get("name"), str)


@dataclass(frozen=True)
class KubeWrite:
    """One write for the caller to make, in order."""

    method: str
    path: str
    body: JSON
    content_type: str

    def as_json(self) -> JSON:
        return {
            "method": self.method,
            "path": self.path,
            "contentType": self.content_type,
            "body": self.body,
        }


class RelayedKubernetes:
    """``kubernetes.Kubernetes``'s calls, answered from a ``ClusterState``."""

    defers_writes = True
    """The writes are carried out by the caller, after this invocation answers."""

    def __init__(self, state: ClusterState) -> None:
        self.state = state
        self.writes: list[KubeWrite] = []
        self.bytes_read = 0
        self.bytes_decoded = 0

    def close(self) -> None:
        pass

    # --- reads --------------------------------------------------------------------------------

    def list_services(
        self, namespace: str | None, keep: Callable[[JSON], bool] | None = None
    ) -> list[JSON]:
        return [
            s
            for s in _in(self.state.services, namespace)
            if keep is None or keep(s)
        ]  # fmt: skip

    def list_endpoint_slices(
        self, namespace: str | None, services: list[str] | None = None
    ) -> list[JSON]:
        def owner(item: JSON) -> str | None:
            labels = item["metadata"].get("labels") or {}
            return labels.get(contract.SERVICE_NAME_LABEL)

        return [
            s
            for s in _in(self.state.endpoint_slices, namespace)
            if owner(s) is not None and (not services or owner(s) in services)
        ]

    def list_pods(self, namespace: str) -> list[JSON]:
        return _in(self.state.pods, namespace)

    def list_nodes(self) -> list[JSON]:
        return list(self.state.nodes)

    def read_config_map_data(self, namespace: str, name: str) -> dict[str, str] | None:
        if (namespace, name) == (contract.SUSPICIONS_NAMESPACE, contract.SUSPICIONS_CONFIGMAP):
            return dict(self.state.suspicions)
        return {}

    # --- writes, collected --------------------------------------------------------------------

    def patch_service(self, namespace: str, name: str, patch: JSON) -> JSON:
        path = f"{_service(namespace, name)}?fieldManager={FIELD_MANAGER}"
        return self._collect("PATCH", path, patch, MERGE_PATCH)

    def patch_service_status(self, namespace: str, name: str, patch: JSON) -> JSON:
        path = f"{_service(namespace, name)}/status?fieldManager={FIELD_MANAGER}"
        return self._collect("PATCH", path, patch, MERGE_PATCH)

    def create_event(self, namespace: str, event: JSON) -> JSON:
        path = f"/api/v1/namespaces/{quote(namespace, safe='')}/events"
        return self._collect("POST", path, event, "application/json")

    def _collect(self, method: str, path: str, body: JSON, content_type: str) -> JSON:
        self.writes.append(KubeWrite(method, path, body, content_type))
        # What the write is conditional on: the caller chains a later write of the same
        # object to the version the earlier one returns.
        return {"metadata": dict(body.get("metadata") or {})}


def _in(items: tuple[JSON, ...], namespace: str | None) -> list[JSON]:
    return [i for i in items if namespace is None or i["metadata"].get("namespace") == namespace]


def _service(namespace: str, name: str) -> str:
    return f"/api/v1/namespaces/{quote(namespace, safe='')}/services/{quote(name, safe='')}"
