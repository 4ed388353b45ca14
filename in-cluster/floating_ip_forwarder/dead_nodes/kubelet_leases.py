"""When each kubelet Lease last changed, on this process's monotonic clock.

The Lease's own ``renewTime`` is the node's clock: it is only compared with its previous
value (did it change?), never with this process's time, so clock skew cannot suspect a node.
A Lease first seen counts as just changed. Not thread-safe: the caller serialises access.
"""

from __future__ import annotations

from collections.abc import Iterable

from floating_ip_forwarder.forwarding.projections import NodeLeaseView


class NodeLeaseClock:
    def __init__(self) -> None:
        self._seen: dict[str, tuple[str | None, float]] = {}
        """Lease name -> (its renewTime, when that value was first seen)."""

    def saw(self, view: NodeLeaseView, now: float) -> None:
        old = self._seen.get(view.key)
        if old is None or old[0] != view.renew_time:
            self._seen[view.key] = (view.renew_time, now)

    def forget(self, name: str) -> None:
        self._seen.pop(name, None)

    def relisted(self, views: Iterable[NodeLeaseView], now: float) -> None:
        listed = set()
        for view in views:
            listed.add(view.key)
            self.saw(view, now)
        for name in set(self._seen) - listed:
            del self._seen[name]

    def ages(self, now: float) -> dict[str, float]:
        """Seconds since each Lease last changed."""
        return {name: now - changed for name, (_, changed) in self._seen.items()}
