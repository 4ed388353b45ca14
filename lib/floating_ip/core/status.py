"""The sentences people read: the ``contract.STATUS`` annotation and Event messages.

A status is one line. It states where the Service's reserved IP is, or the problem that
stops it, followed by any secondary problem (a bad firewall annotation, for instance).
When no node is fit, the status names each node's reasons (at most ``MAX_NAMED_NODES``,
then counts), so the one line answers "why not there?"; Warnings are emitted only when this
text changes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from floating_ip.core.holders import Holding
from floating_ip.core.model import Assignment, NodeVerdict, Problem, Reason, Suspicion, Unfit
from floating_ip.core.placement import PlacementOutcome
from floating_ip_common import contract


def sentence(message: str) -> str:
    """``message`` as a sentence: capitalised, ending in a full stop."""
    text = message.strip()
    text = text[:1].upper() + text[1:]
    return text if text.endswith(".") else text + "."


def status_text(messages: Iterable[str]) -> str:
    return " ".join(sentence(message) for message in messages)


def location(holding: Holding) -> str:
    """Which droplet holds the IP now (before this plan's assignment)."""
    droplet = holding.reserved.droplet_id
    if holding.previous is not None:
        return f"node {holding.previous.name} (droplet {droplet})"
    return f"droplet {droplet} (not a node of this cluster)"


MAX_NAMED_NODES = 5
"""A status names at most this many unfit nodes and counts the rest, so it stays one line."""


def unfit_summary(verdicts: Iterable[NodeVerdict]) -> str:
    """``"n1: NotReady, Cordoned; n2: NoReadyEndpoint"``: each node's reasons, by name; past
    ``MAX_NAMED_NODES``, how many more fail for each reason."""
    unfit = [v for v in verdicts if v.reasons]
    if not unfit:
        return "the cluster has no nodes"
    named = [f"{v.node_name}: {', '.join(v.reasons)}" for v in unfit[:MAX_NAMED_NODES]]
    rest = unfit[MAX_NAMED_NODES:]
    if rest:
        counts = Counter(reason for v in rest for reason in v.reasons)
        ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
        tally = ", ".join(f"{count} {reason}" for reason, count in ordered)
        named.append(f"{len(rest)} more node{'s' * (len(rest) > 1)}: {tally}")
    return "; ".join(named)


def stays(holding: Holding) -> str:
    """``Reserved IP … stays on node n1 (droplet 101)`` or ``… stays unassigned``."""
    where = f"on {location(holding)}" if holding.reserved.droplet_id is not None else "unassigned"
    return f"Reserved IP {holding.ip} stays {where}"


def unreachable(node_name: str, suspicion: Suspicion) -> str:
    """``node n1 is unreachable: tcp probe failed since 2026-01-31T12:00:00Z (…)``."""
    detail = f" ({suspicion.detail})" if suspicion.detail else ""
    return (
        f"node {node_name} is unreachable: {suspicion.probe} probe failed since "
        f"{suspicion.since}{detail}"
    )


def previous_suspicion(holding: Holding) -> Suspicion | None:
    """The suspicion on the node holding the IP now, if any."""
    return holding.previous.suspicion if holding.previous is not None else None


def unreachable_notes(holding: Holding, ready_on: frozenset[str]) -> tuple[str, ...]:
    """A sentence per suspected node that matters to the Service: the node holding its IP
    now, or one running a ready endpoint of it (Kubernetes has not noticed yet)."""
    previous = holding.previous.name if holding.previous else None
    return tuple(
        unreachable(v.node_name, v.suspicion)
        for v in holding.verdicts
        if v.suspicion is not None and (v.node_name == previous or v.node_name in ready_on)
    )


def holding_problem(holding: Holding) -> Problem | None:
    """The Warning-worthy problem of an IP that could not be placed, if any."""
    suspicion = previous_suspicion(holding)
    if suspicion is not None and holding.placement.outcome in (
        PlacementOutcome.NO_FIT_NODE,
        PlacementOutcome.NO_FREE_DROPLET,
    ):
        assert holding.previous is not None
        others = [v for v in holding.verdicts if v.node_name != holding.previous.name]
        why = (
            "every fit node already holds another reserved IP"
            if holding.placement.outcome is PlacementOutcome.NO_FREE_DROPLET
            else f"no other node is fit ({unfit_summary(others)})"
        )
        message = f"{stays(holding)}: {unreachable(holding.previous.name, suspicion)}, but {why}"
        return Problem(Reason.UNREACHABLE, message)
    if holding.placement.outcome is PlacementOutcome.NO_FREE_DROPLET:
        fit = ", ".join(v.node_name for v in holding.verdicts if not v.reasons)
        message = f"{stays(holding)}: every fit node ({fit}) already holds another reserved IP"
        return Problem(Reason.NO_FIT_NODE, message)
    if holding.placement.outcome is not PlacementOutcome.NO_FIT_NODE:
        return None
    anchorless = [v.node_name for v in holding.verdicts if v.reasons == (Unfit.NO_ANCHOR_IP,)]
    if anchorless:
        message = (
            f"{stays(holding)}: the anchor IP of node{'s' * (len(anchorless) > 1)} "
            f"{', '.join(anchorless)} is unknown "
            f"(no {contract.ANCHOR_IPV4} annotation on its Pod or Node)"
        )
        return Problem(Reason.MISSING_ANCHOR_IP, message)
    message = f"{stays(holding)}: no node is fit ({unfit_summary(holding.verdicts)})"
    return Problem(Reason.NO_FIT_NODE, message)


def holding_message(holding: Holding) -> str:
    """Where the IP is after the plan, for a placed or locked IP."""
    if holding.node is not None and holding.placement.outcome in (
        PlacementOutcome.KEEP,
        PlacementOutcome.MOVE,
    ):
        return (
            f"Reserved IP {holding.ip} is on node {holding.node.name} "
            f"(droplet {holding.droplet_id}), anchor IP {holding.anchor}"
        )
    return f"{stays(holding)} until DigitalOcean finishes a pending action on it"


def move_message(holding: Holding, assignment: Assignment) -> str:
    """The Normal Event's message for an assignment."""
    target = f"node {assignment.node_name} (droplet {assignment.droplet_id})"
    if assignment.from_droplet_id is None:
        return f"Reserved IP {holding.ip} assigned to {target}"
    previous = holding.previous.name if holding.previous else None
    reasons = next((v.reasons for v in holding.verdicts if v.node_name == previous), ())
    why = f" ({', '.join(reasons)})" if reasons else ""
    return f"Reserved IP {holding.ip} moved from {location(holding)}{why} to {target}"


def unreachable_message(holding: Holding, assignment: Assignment) -> str | None:
    """The ``Unreachable`` Warning's message when the IP leaves a suspected node."""
    suspicion = previous_suspicion(holding)
    if suspicion is None or holding.previous is None:
        return None
    return (
        f"{unreachable(holding.previous.name, suspicion)}; reserved IP {holding.ip} moved to "
        f"node {assignment.node_name} (droplet {assignment.droplet_id})"
    )
