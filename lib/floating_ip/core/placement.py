"""Which droplet each reserved IP should be on, at most one managed IP per droplet.

1. An IP whose current droplet is still fit for it stays there (stickiness: no needless move
   breaks connections, even when the rendezvous order now prefers another node).
2. A locked IP (pending action) stays where it is: DigitalOcean would refuse a new action.
3. The other IPs are matched to free fit droplets by augmenting paths (Kuhn's algorithm):
   IPs are taken in the given order; each takes its first free candidate in rendezvous
   order, and only when none is free does it displace an earlier IP to that IP's next
   choice. The result places as many IPs as possible and otherwise follows preference.

A droplet that holds any reserved IP at the start (ours, one that stays, or one this plan
moves away) is not a target in the same plan: DigitalOcean allows one reserved IP per
droplet, and freeing a droplet first would need ordering between actions. A droplet freed by
this plan becomes available to the next run, which the resulting Service changes trigger.

An IP with no free fit droplet is not unassigned: nothing better exists, and traffic may
still partly work where it is.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum


class PlacementOutcome(StrEnum):
    KEEP = "keep"
    """Stays on its current droplet, which is fit."""
    MOVE = "move"
    """Is assigned to another droplet."""
    LOCKED = "locked"
    """Stays because DigitalOcean has an action pending for it."""
    NO_FIT_NODE = "no-fit-node"
    """Stays: no node is fit."""
    NO_FREE_DROPLET = "no-free-droplet"
    """Stays: every fit node already holds another reserved IP."""


@dataclass(frozen=True, slots=True)
class Seat:
    """One IP to place."""

    ip: str
    current_droplet: int | None
    locked: bool
    fit: tuple[tuple[str, int], ...]
    """Fit ``(node name, droplet id)`` pairs in rendezvous order."""


@dataclass(frozen=True, slots=True)
class Placement:
    ip: str
    outcome: PlacementOutcome
    node_name: str | None = None
    """The chosen node for ``KEEP`` and ``MOVE``; ``None`` otherwise."""
    droplet_id: int | None = None


def place(seats: Sequence[Seat], occupied: frozenset[int]) -> tuple[Placement, ...]:
    """Place every seat (in the given order); ``occupied``: droplets holding any IP now."""
    settled: dict[str, Placement] = {}
    for seat in seats:
        kept = next((pair for pair in seat.fit if pair[1] == seat.current_droplet), None)
        if kept is not None:
            settled[seat.ip] = Placement(seat.ip, PlacementOutcome.KEEP, *kept)
        elif seat.locked:
            settled[seat.ip] = Placement(seat.ip, PlacementOutcome.LOCKED)
    movable = [seat for seat in seats if seat.ip not in settled]
    matched = match(movable, occupied)
    for seat in movable:
        if seat.ip in matched:
            node_name, droplet_id = matched[seat.ip]
            settled[seat.ip] = Placement(seat.ip, PlacementOutcome.MOVE, node_name, droplet_id)
        else:
            outcome = PlacementOutcome.NO_FREE_DROPLET if seat.fit else PlacementOutcome.NO_FIT_NODE
            settled[seat.ip] = Placement(seat.ip, outcome)
    return tuple(settled[seat.ip] for seat in seats)


def match(seats: Sequence[Seat], occupied: frozenset[int]) -> dict[str, tuple[str, int]]:
    """A maximum matching of seats to free droplets, each seat preferring its order."""
    owner: dict[int, Seat] = {}
    chosen: dict[str, tuple[str, int]] = {}

    def take(seat: Seat, node_name: str, droplet_id: int) -> bool:
        owner[droplet_id] = seat
        chosen[seat.ip] = (node_name, droplet_id)
        return True

    def augment(seat: Seat, visited: set[int]) -> bool:
        candidates = [pair for pair in seat.fit if pair[1] not in occupied]
        # A free droplet first (in preference order), so an IP already placed is displaced
        # from its choice only when that is the only way to place one more IP.
        for node_name, droplet_id in candidates:
            if droplet_id not in owner:
                return take(seat, node_name, droplet_id)
        for node_name, droplet_id in candidates:
            if droplet_id not in visited:
                visited.add(droplet_id)
                if augment(owner[droplet_id], visited):
                    return take(seat, node_name, droplet_id)
        return False

    for seat in seats:
        augment(seat, set())
    return chosen
