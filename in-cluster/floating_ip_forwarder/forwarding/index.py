"""The forwarder's compact picture of the cluster, and which Services each change affects.

``ClusterIndex`` stores the projections of ``projections.py`` (opted-in Services, every
EndpointSlice, every Node, and the anchor of the Pods that carry one) and answers, for each
watched change, the set of opted-in Services whose placement it may change:

- a Service: itself when its inputs changed or it opted in or out, and the opted-in Services
  sharing its old or new address (the function resolves conflicts between them);
- an EndpointSlice: its Service, when the endpoints changed;
- a Node: the Services with an endpoint on it or whose IP it holds (``HOLDER_NODE``);
- a Pod: the Services whose endpoints target it, when its anchor annotation changed.

It does no I/O and takes no locks: the caller serialises access.
"""

from __future__ import annotations

from collections.abc import Iterable

from floating_ip_forwarder.forwarding.projections import (
    Indexed,
    Kind,
    NodeView,
    ObjectKey,
    PodView,
    ServiceKey,
    ServiceView,
    SliceView,
)

Affected = frozenset[ServiceKey]
NOTHING: Affected = frozenset()


def stored(view: Indexed) -> bool:
    """Whether the index keeps ``view``. An opted-out Service and a Pod without an anchor
    are simply absent: upserting one changes exactly what its absence from a relist does, so
    a list may drop them page by page instead of holding every Pod until the last page."""
    if isinstance(view, ServiceView):
        return view.inputs is not None
    if isinstance(view, PodView):
        return view.anchor is not None
    return True


class ClusterIndex:
    def __init__(self) -> None:
        self._services: dict[ServiceKey, ServiceView] = {}
        """Opted-in Services only: a Service that opts in later arrives as a change."""
        self._slices: dict[ObjectKey, SliceView] = {}
        self._slices_of: dict[ServiceKey, set[ObjectKey]] = {}
        self._nodes: dict[str, NodeView] = {}
        self._anchors: dict[ObjectKey, str] = {}
        """Pods with an anchor annotation; a Pod without one is simply absent."""

    # --- reading -----------------------------------------------------------------------------

    def opted_in(self) -> frozenset[ServiceKey]:
        return frozenset(self._services)

    def node_names(self) -> frozenset[str]:
        return frozenset(self._nodes)

    def node_uid(self, name: str) -> str | None:
        found = self._nodes.get(name)
        return found.uid if found is not None else None

    def probe_targets(self) -> dict[str, set[tuple[str, int]]]:
        """Per node, the ``(address, port)`` of every ready endpoint of an opted-in Service
        on it, for each TCP port of its slice: what the leader probes."""
        targets: dict[str, set[tuple[str, int]]] = {}
        for key in self._services:
            for found in self._endpoints_of(key):
                for node, address in found.probed:
                    targets.setdefault(node, set()).update(
                        (address, port) for port in found.tcp_ports
                    )
        return targets

    def services_on(self, node_names: Iterable[str]) -> Affected:
        """The opted-in Services with an endpoint on, or their IP held by, any of the nodes."""
        affected: set[ServiceKey] = set()
        for name in node_names:
            affected |= self._services_on_node(name)
        return frozenset(affected)

    def size(self) -> dict[str, int]:
        return {
            "services": len(self._services),
            "endpointslices": len(self._slices),
            "nodes": len(self._nodes),
            "anchored_pods": len(self._anchors),
        }

    def keys(self, kind: Kind, namespace: str | None) -> set[str | ObjectKey]:
        """The stored keys of ``kind`` (in ``namespace``; ``None``: all), for a relist."""
        stored: Iterable[str | ObjectKey]
        if kind is Kind.NODE:
            return set(self._nodes)
        if kind is Kind.SERVICE:
            stored = self._services
        elif kind is Kind.ENDPOINT_SLICE:
            stored = self._slices
        else:
            stored = self._anchors
        return {k for k in stored if namespace is None or k[0] == namespace}

    # --- changes -----------------------------------------------------------------------------

    def upsert(self, view: Indexed) -> Affected:
        """Record an added or modified object; return the Services it affects."""
        if isinstance(view, ServiceView):
            return self._upsert_service(view)
        if isinstance(view, SliceView):
            return self._upsert_slice(view)
        if isinstance(view, NodeView):
            return self._upsert_node(view)
        return self._upsert_pod(view)

    def remove(self, kind: Kind, key: str | ObjectKey) -> Affected:
        """Forget a deleted object; return the Services it affects."""
        if kind is Kind.NODE:
            assert isinstance(key, str)
            return self._services_on_node(key) if self._nodes.pop(key, None) else NOTHING
        assert isinstance(key, tuple)
        if kind is Kind.SERVICE:
            old = self._services.pop(key, None)
            return self._with_sharers(key, old, None) if old else NOTHING
        if kind is Kind.ENDPOINT_SLICE:
            return self._remove_slice(key)
        if self._anchors.pop(key, None) is None:
            return NOTHING
        return self._services_targeting(key)

    def replace(
        self, kind: Kind, namespace: str | None, views: Iterable[Indexed]
    ) -> tuple[Affected, int]:
        """A relist: upsert every listed object, remove the stored ones not listed.

        Returns the affected Services and how many objects changed in a way that matters.
        """
        affected: set[ServiceKey] = set()
        changes = 0
        unseen = self.keys(kind, namespace)
        for view in views:
            unseen.discard(view.key)
            hit = self.upsert(view)
            changes += bool(hit)
            affected |= hit
        for key in unseen:
            hit = self.remove(kind, key)
            changes += bool(hit)
            affected |= hit
        return frozenset(affected), changes

    # --- per kind ----------------------------------------------------------------------------

    def _upsert_service(self, view: ServiceView) -> Affected:
        old = self._services.get(view.key)
        if view.inputs is None:
            if old is None:
                return NOTHING
            del self._services[view.key]
            return self._with_sharers(view.key, old, None)
        self._services[view.key] = view
        if old is not None and old.inputs == view.inputs:
            return NOTHING  # only the holder or something unwatched changed
        return self._with_sharers(view.key, old, view)

    def _with_sharers(
        self, key: ServiceKey, old: ServiceView | None, new: ServiceView | None
    ) -> Affected:
        addresses = {v.inputs.address for v in (old, new) if v is not None and v.inputs}
        sharers = {
            other
            for other, view in self._services.items()
            if view.inputs is not None and view.inputs.address in addresses
        }
        return frozenset({key} | sharers)

    def _upsert_slice(self, view: SliceView) -> Affected:
        old = self._slices.get(view.key)
        if old == view:
            self._slices[view.key] = view  # new probe addresses or ports: kept, not a change
            return NOTHING
        if old is not None:
            self._unlink_slice(old)
        self._slices[view.key] = view
        if view.service is not None:
            self._slices_of.setdefault((view.key[0], view.service), set()).add(view.key)
        return self._opted_in_owners(old, view)

    def _remove_slice(self, key: ObjectKey) -> Affected:
        old = self._slices.pop(key, None)
        if old is None:
            return NOTHING
        self._unlink_slice(old)
        return self._opted_in_owners(old, None)

    def _unlink_slice(self, old: SliceView) -> None:
        if old.service is None:
            return
        owner = (old.key[0], old.service)
        siblings = self._slices_of.get(owner)
        if siblings is not None:
            siblings.discard(old.key)
            if not siblings:
                del self._slices_of[owner]

    def _opted_in_owners(self, old: SliceView | None, new: SliceView | None) -> Affected:
        owners = {(v.key[0], v.service) for v in (old, new) if v is not None and v.service}
        return frozenset(owner for owner in owners if owner in self._services)

    def _upsert_node(self, view: NodeView) -> Affected:
        old = self._nodes.get(view.key)
        self._nodes[view.key] = view
        if old == view:
            return NOTHING  # a heartbeat, a status image list, a label nobody reads...
        return self._services_on_node(view.key)

    def _upsert_pod(self, view: PodView) -> Affected:
        old = self._anchors.get(view.key)
        if old == view.anchor:
            return NOTHING
        if view.anchor is None:
            del self._anchors[view.key]
        else:
            self._anchors[view.key] = view.anchor
        return self._services_targeting(view.key)

    # --- reverse lookups (scans of the opted-in Services only: few, and rare to need) ------

    def _endpoints_of(self, service: ServiceKey) -> Iterable[SliceView]:
        return (self._slices[k] for k in self._slices_of.get(service, ()))

    def _services_on_node(self, node_name: str) -> Affected:
        return frozenset(
            key
            for key, view in self._services.items()
            if view.holder == node_name
            or any(e.node == node_name for s in self._endpoints_of(key) for e in s.endpoints)
        )

    def _services_targeting(self, pod: ObjectKey) -> Affected:
        namespace, name = pod
        return frozenset(
            key
            for key in self._services
            if key[0] == namespace
            and any(e.pod == name for s in self._endpoints_of(key) for e in s.endpoints)
        )
