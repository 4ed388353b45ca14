"""Kubernetes Events: Normal for changes made, Warning for problems newly seen.

A Warning is emitted only for a problem the Service's status did not state yet, so a problem
that persists across resyncs and moves is announced once, not every few minutes; its text
stays in the status annotation for anyone who looks. Events about a Service whose IP moves
are tied to that assignment (``after_ip``): if it fails, the status is not written and the
next run repeats them.
"""

from __future__ import annotations

from collections.abc import Iterable

from floating_ip.core.model import (
    Event,
    EventType,
    FirewallAction,
    FirewallChange,
    ObjectRef,
    Reason,
)
from floating_ip.core.outcomes import ServiceOutcome
from floating_ip.core.status import move_message, sentence, unreachable_message
from floating_ip_common import contract


def _event(
    outcome: ServiceOutcome, kind: EventType, reason: Reason, message: str, *, tied: bool = True
) -> Event:
    """An Event about the outcome's Service; ``tied``: only if its IP's assignment succeeds."""
    service = outcome.intent.service
    after = outcome.assignment.ip if tied and outcome.assignment else None
    return Event(service.ref, service.uid, kind, reason, sentence(message), after)


def warning_events(outcome: ServiceOutcome) -> tuple[Event, ...]:
    """One Warning per problem the status written before did not state: a problem that
    persists across a move (which rewrites the status's headline) is announced once."""
    previous = outcome.intent.service.annotation(contract.STATUS) or ""
    if previous == outcome.status:
        return ()
    return tuple(
        _event(outcome, EventType.WARNING, problem.reason, problem.message)
        for problem in outcome.problems
        if sentence(problem.message) not in previous
    )


def move_events(outcome: ServiceOutcome) -> tuple[Event, ...]:
    """``IPAssigned`` (from no droplet) or ``IPMoved`` when this plan assigns the IP, and an
    ``Unreachable`` Warning when it leaves a node the forwarder suspects is dead."""
    assignment = outcome.assignment
    if assignment is None or outcome.holding is None:
        return ()
    reason = Reason.IP_ASSIGNED if assignment.from_droplet_id is None else Reason.IP_MOVED
    message = move_message(outcome.holding, assignment)
    events: tuple[Event, ...] = (_event(outcome, EventType.NORMAL, reason, message),)
    why = unreachable_message(outcome.holding, assignment)
    if why is not None:
        events += (_event(outcome, EventType.WARNING, Reason.UNREACHABLE, why),)
    return events


def firewall_events(
    outcomes: Iterable[ServiceOutcome],
    change: FirewallChange | None,
    contributors: frozenset[ObjectRef],
) -> tuple[Event, ...]:
    """``FirewallUpdated`` on every Service with rules in a created or replaced firewall."""
    if change is None or change.body is None or change.action is FirewallAction.DELETE:
        return ()
    verb = "created" if change.action is FirewallAction.CREATE else "updated"
    rules = len(change.body.inbound_rules)
    message = f"Firewall {change.body.name} {verb}: {rules} inbound rule{'s' * (rules != 1)}"
    return tuple(
        _event(outcome, EventType.NORMAL, Reason.FIREWALL_UPDATED, message, tied=False)
        for outcome in outcomes
        if outcome.ref in contributors
    )
