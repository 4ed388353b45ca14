"""Who holds each usable reserved IP after this plan, and the assignment that gets it there."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from floating_ip.core.claims import Claim
from floating_ip.core.external_ips import recorded_anchors
from floating_ip.core.fitness import anchor_of, verdict
from floating_ip.core.model import (
    Assignment,
    Node,
    NodeVerdict,
    ObjectRef,
    Observation,
    Pod,
    ReservedIP,
)
from floating_ip.core.placement import Placement, PlacementOutcome, Seat, place
from floating_ip.core.rendezvous import rendezvous_order
from floating_ip.core.upgrades import newest_first
from floating_ip_common import contract


@dataclass(frozen=True, slots=True)
class Holding:
    """One reserved IP, the Services sharing it, and where it ends up."""

    claim: Claim
    reserved: ReservedIP
    verdicts: tuple[NodeVerdict, ...]
    """Every node's fitness for this IP, by node name."""
    placement: Placement
    node: Node | None
    """The node holding the IP after the plan (``None``: unassigned or not a node of ours)."""
    previous: Node | None
    """The node holding it now, if it is one of ours."""
    anchor: str | None
    """The holder's anchor IP to list in ``spec.externalIPs`` (``None``: list none)."""
    assignment: Assignment | None

    @property
    def ip(self) -> str:
        return self.claim.ip

    @property
    def droplet_id(self) -> int | None:
        """The droplet holding the IP after the plan."""
        if self.assignment is not None:
            return self.assignment.droplet_id
        return self.reserved.droplet_id


def seat_for(
    claim: Claim, reserved: ReservedIP, verdicts: Sequence[NodeVerdict], nodes: Mapping[str, Node]
) -> Seat:
    fit = [v.node_name for v in verdicts if not v.reasons]
    versions = {name: nodes[name].kubelet_version for name in fit}
    ordered = newest_first(rendezvous_order(claim.ip, fit), versions)
    pairs = tuple(
        (name, droplet) for name in ordered if (droplet := nodes[name].droplet_id) is not None
    )
    return Seat(claim.ip, reserved.droplet_id, reserved.locked, pairs)


def remembered_anchor(claim: Claim, droplet_id: int | None) -> str | None:
    """The anchor a Service recorded for this very droplet, for an IP that stays put while
    no Pod on it can tell (a restarting Pod should not make its anchor flap)."""
    for service in claim.services:
        recorded = sorted(recorded_anchors(service.annotation(contract.ANCHOR_IP)))
        if service.annotation(contract.HOLDER_DROPLET) == str(droplet_id) and len(recorded) == 1:
            return recorded[0]
    return None


def holding_for(
    claim: Claim,
    reserved: ReservedIP,
    *,
    verdicts: tuple[NodeVerdict, ...],
    placement: Placement,
    observation: Observation,
    pods: Mapping[ObjectRef, Pod],
) -> Holding:
    by_name = {node.name: node for node in observation.nodes}
    by_droplet = {node.droplet_id: node for node in observation.nodes if node.droplet_id}
    previous = by_droplet.get(reserved.droplet_id) if reserved.droplet_id else None
    assignment = None
    node = previous
    if placement.outcome is PlacementOutcome.MOVE and placement.node_name and placement.droplet_id:
        node = by_name[placement.node_name]
        assignment = Assignment(claim.ip, placement.droplet_id, node.name, reserved.droplet_id)
    anchor = anchor_of(node, claim.services, pods) if node else None
    if node is not None and anchor is None and assignment is None:
        anchor = remembered_anchor(claim, reserved.droplet_id)
    return Holding(claim, reserved, verdicts, placement, node, previous, anchor, assignment)


def decide_holders(
    usable: Sequence[tuple[Claim, ReservedIP]],
    observation: Observation,
    reserved_droplets: frozenset[int] = frozenset(),
) -> tuple[Holding, ...]:
    """Place every usable IP at once (the one-IP-per-droplet rule spans all Services);
    ``reserved_droplets`` hold no IP yet but one is being created on each."""
    pods = {pod.ref: pod for pod in observation.pods}
    nodes = sorted(observation.nodes, key=lambda node: node.name)
    by_name = {node.name: node for node in nodes}
    region = observation.cluster.region
    verdicts = [
        tuple(verdict(node, claim.services, reserved.region, region, pods) for node in nodes)
        for claim, reserved in usable
    ]
    seats = [
        seat_for(claim, reserved, node_verdicts, by_name)
        for (claim, reserved), node_verdicts in zip(usable, verdicts, strict=True)
    ]
    occupied = reserved_droplets | {r.droplet_id for r in observation.reserved_ips if r.droplet_id}
    placements = place(seats, occupied)
    return tuple(
        holding_for(
            claim,
            reserved,
            verdicts=node_verdicts,
            placement=placement,
            observation=observation,
            pods=pods,
        )
        for (claim, reserved), node_verdicts, placement in zip(
            usable, verdicts, placements, strict=True
        )
    )
