"""What each opted-in Service should look like after the plan: holder, problems, status."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from floating_ip.core.annotations import Intent
from floating_ip.core.fitness import ready_pods_on
from floating_ip.core.holders import Holding
from floating_ip.core.model import Assignment, NodeVerdict, ObjectRef, Problem
from floating_ip.core.status import (
    holding_message,
    holding_problem,
    status_text,
    unreachable_notes,
)


@dataclass(frozen=True, slots=True)
class ServiceOutcome:
    intent: Intent
    holding: Holding | None
    """``None`` when the Service cannot use its IP (bad address, conflict, unusable IP)."""
    problems: tuple[Problem, ...]
    """Most important first."""
    status: str

    @property
    def ref(self) -> ObjectRef:
        return self.intent.service.ref

    @property
    def node_name(self) -> str | None:
        return self.holding.node.name if self.holding and self.holding.node else None

    @property
    def droplet_id(self) -> int | None:
        return self.holding.droplet_id if self.holding else None

    @property
    def anchor(self) -> str | None:
        return self.holding.anchor if self.holding else None

    @property
    def assignment(self) -> Assignment | None:
        return self.holding.assignment if self.holding else None

    @property
    def verdicts(self) -> tuple[NodeVerdict, ...]:
        return self.holding.verdicts if self.holding else ()


def without_ip(intent: Intent, reason: Problem | None) -> ServiceOutcome:
    """A Service that cannot use its IP: its problems are its whole status."""
    problems = (*([reason] if reason else []), *intent.problems)
    return ServiceOutcome(intent, None, problems, status_text(p.message for p in problems))


def with_ip(intent: Intent, holding: Holding, extra: tuple[Problem, ...]) -> ServiceOutcome:
    """A Service whose IP was placed (or stays where it is)."""
    main = holding_problem(holding)
    problems = (*([main] if main else []), *intent.problems, *extra)
    headline = main.message if main else holding_message(holding)
    messages = (headline, *(p.message for p in problems if p is not main))
    if main is None:
        ready_on = frozenset(
            v.node_name
            for v in holding.verdicts
            if any(ready_pods_on(service, v.node_name) for service in holding.claim.services)
        )
        messages += unreachable_notes(holding, ready_on)
    return ServiceOutcome(intent, holding, problems, status_text(messages))


def outcomes_for(
    intents: tuple[Intent, ...],
    holdings: tuple[Holding, ...],
    blockers: Mapping[ObjectRef, Problem],
    extras: Mapping[ObjectRef, tuple[Problem, ...]],
) -> tuple[ServiceOutcome, ...]:
    """One outcome per intent: placed via its IP's holding, or blocked by a problem."""
    holding_of = {i.service.ref: h for h in holdings for i in h.claim.intents}
    result = []
    for intent in intents:
        ref = intent.service.ref
        holding = holding_of.get(ref)
        if holding is None:
            result.append(without_ip(intent, blockers.get(ref)))
        else:
            result.append(with_ip(intent, holding, extras.get(ref, ())))
    return tuple(result)
