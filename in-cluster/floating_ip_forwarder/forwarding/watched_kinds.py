"""What the forwarder watches, and how to ask the apiserver for each (pure data)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlencode

from floating_ip_forwarder.forwarding import projections
from floating_ip_forwarder.forwarding.index import stored
from floating_ip_forwarder.forwarding.projections import JSON, Kind, NodeLeaseView, View

FULL = "application/json"
# Pods are watched as metadata only (the anchor annotation is all the forwarder needs from
# them): a fraction of a full Pod to transfer, decode and keep.
METADATA_LIST = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"
METADATA = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"


def _stored(view: View) -> bool:
    return isinstance(view, NodeLeaseView) or stored(view)


@dataclass(frozen=True, slots=True)
class Resource:
    kind: Kind
    api: str
    """``/api/v1`` or ``/apis/<group>/<version>``."""
    plural: str
    namespaced: bool
    project: Callable[[JSON], View]
    list_accept: str = FULL
    watch_accept: str = FULL
    page_size: int = 100
    """Objects per list page: bounds the memory a relist needs at once. Every page decoded
    leaves its mark on the heap, four lists at once: at 50,000 Pods, 10,000 Services and
    1,000 Nodes the forwarder settled at 62-64 MiB with pages of 500, 56 with 200, 54 with
    100, 52.5 with 50; the first sync took 11-18 s at every size (within the noise)."""
    listed: Callable[[View], bool] = lambda _view: True
    """Which listed objects a relist must hand on (the others are as good as absent)."""

    def path(self, namespace: str | None, **query: str | int) -> str:
        base = self.api
        if self.namespaced and namespace is not None:
            base += f"/namespaces/{namespace}"
        return f"{base}/{self.plural}?{urlencode(query)}"


# At 50,000 Pods and 10,000 Services, holding every listed view until the last page cost
# ~9 MiB of resident memory: only those the index keeps are handed on.
SERVICES = Resource(Kind.SERVICE, "/api/v1", "services", True, projections.service, listed=_stored)
ENDPOINT_SLICES = Resource(
    Kind.ENDPOINT_SLICE,
    "/apis/discovery.k8s.io/v1",
    "endpointslices",
    True,
    projections.endpoint_slice,
)
# Real Nodes are large (status lists every image): smaller pages.
NODES = Resource(Kind.NODE, "/api/v1", "nodes", False, projections.node, page_size=50)
PODS = Resource(
    Kind.POD,
    "/api/v1",
    "pods",
    True,
    projections.pod,
    list_accept=METADATA_LIST,
    watch_accept=METADATA,
    listed=_stored,
)

ALL = (SERVICES, ENDPOINT_SLICES, NODES, PODS)

NODE_LEASES = Resource(
    Kind.NODE_LEASE,
    "/apis/coordination.k8s.io/v1",
    "leases",
    True,
    projections.node_lease,
)
"""Watched in ``contract.NODE_LEASE_NAMESPACE`` only, and only for suspicion."""


def streams(namespaces: tuple[str, ...]) -> list[tuple[Resource, str | None]]:
    """One list-and-watch per resource, or per resource and namespace when limited."""
    scopes: tuple[str | None, ...] = namespaces or (None,)
    return [
        (resource, scope)
        for resource in ALL
        for scope in (scopes if resource.namespaced else (None,))
    ]
