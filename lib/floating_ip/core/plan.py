"""The single entry point of the decision core: ``plan(observation) -> Plan``.

The core always plans the whole observation: the one-reserved-IP-per-droplet rule and the
shared firewall both span every annotated Service, and planning everything is what makes a
periodic resync repair whatever an event missed. An event that names one Service therefore
changes only what is observed, never what is planned; unchanged Services cost no writes.

Services without the ``contract.ADDRESS`` annotation are never placed: one that still carries
what the function wrote is only cleaned (``written.cleanup_patch``).
"""

from __future__ import annotations

from floating_ip.core import allocation, finalizers
from floating_ip.core.annotations import Intent, read_intent
from floating_ip.core.claims import Claim, claim_all
from floating_ip.core.events import firewall_events, move_events, warning_events
from floating_ip.core.exposure import (
    Exposure,
    exposure_of,
    foreign_class_problem,
    masquerade_problem,
    widened_firewall_problem,
)
from floating_ip.core.firewall import decide_firewall
from floating_ip.core.firewall_rules import inbound_rules
from floating_ip.core.fitness import valid_ipv4
from floating_ip.core.holders import Holding, decide_holders
from floating_ip.core.ip_checks import check_ip
from floating_ip.core.model import (
    ObjectRef,
    Observation,
    Plan,
    Problem,
    ReservedIP,
    ServicePatch,
)
from floating_ip.core.openings import collect_openings
from floating_ip.core.outcomes import ServiceOutcome, outcomes_for
from floating_ip.core.own_writes import cleanups
from floating_ip.core.patches import service_patches
from floating_ip.core.report import service_report
from floating_ip.core.status import status_text
from floating_ip.core.unclaimed import named_addresses, unclaimed_ips

Usable = tuple[tuple[Claim, ReservedIP], ...]


def read_intents(observation: Observation) -> tuple[Intent, ...]:
    """The opted-in Services' intents, in namespace/name order. A Service being deleted has
    none: it is only cleaned up (its ports closed, its IP left unclaimed)."""
    services = sorted(observation.services, key=lambda service: service.ref)
    return tuple(
        intent for service in services if not service.deleting and (intent := read_intent(service))
    )


def known_anchors(observation: Observation) -> frozenset[str]:
    """Every anchor IP any Node or Pod announces: such an externalIP entry is ours."""
    texts = [node.anchor_ipv4 for node in observation.nodes]
    texts += [pod.anchor_ipv4 for pod in observation.pods]
    return frozenset(anchor for text in texts if (anchor := valid_ipv4(text)))


def exposable(intents: tuple[Intent, ...]) -> tuple[tuple[Intent, ...], dict[ObjectRef, Problem]]:
    """Intents we may expose, and the problem of each LoadBalancer Service of another class."""
    foreign = {
        intent.service.ref: foreign_class_problem(intent.service)
        for intent in intents
        if exposure_of(intent.service) is Exposure.FOREIGN_LOAD_BALANCER
    }
    return tuple(i for i in intents if i.service.ref not in foreign), foreign


def advisories(intents: tuple[Intent, ...]) -> dict[ObjectRef, tuple[Problem, ...]]:
    """What a placed Service is told and that moves nothing: the client's address lost to
    masquerading, and class-mode ``firewall-sources`` DigitalOcean's controller may widen."""
    found: dict[ObjectRef, tuple[Problem, ...]] = {}
    for intent in intents:
        problems = [masquerade_problem(intent.service)]
        if intent.firewall and exposure_of(intent.service) is Exposure.LOAD_BALANCER_STATUS:
            problems.append(widened_firewall_problem(intent.service, intent.sources))
        told = tuple(problem for problem in problems if problem is not None)
        if told:
            found[intent.service.ref] = told
    return found


def usable_claims(
    claims: tuple[Claim, ...], observation: Observation
) -> tuple[Usable, dict[ObjectRef, Problem]]:
    """Claims whose IP exists in our region, and the problem of every Service of the rest."""
    reserved = {ip.ip: ip for ip in observation.reserved_ips}
    usable: list[tuple[Claim, ReservedIP]] = []
    blocked: dict[ObjectRef, Problem] = {}
    for claim in claims:
        problem = check_ip(claim.ip, reserved, observation.cluster)
        if problem is None:
            usable.append((claim, reserved[claim.ip]))
        else:
            blocked.update(dict.fromkeys((s.ref for s in claim.services), problem))
    return tuple(usable), blocked


def split_patches(
    outcomes: tuple[ServiceOutcome, ...], anchors: frozenset[str]
) -> tuple[tuple[ServicePatch, ...], tuple[ServicePatch, ...]]:
    pairs = [service_patches(outcome, anchors) for outcome in outcomes]
    before = tuple(patch for patch, _ in pairs if patch)
    after = tuple(patch for _, patch in pairs if patch)
    return before, after


def decide_ownership(
    intents: tuple[Intent, ...], holdings: tuple[Holding, ...], observation: Observation
) -> allocation.Decisions:
    """Reserved IPs to create for ``address: auto`` Services, and owned ones to release."""
    named = named_addresses(intents) | allocation.recorded_ips(observation.services)
    taken = {ip.droplet_id for ip in observation.reserved_ips if ip.droplet_id is not None}
    taken |= {h.assignment.droplet_id for h in holdings if h.assignment}
    taken |= allocation.marked_droplets(observation.services)
    decided = allocation.Decisions()
    allocation.allocate(intents, observation, named, taken, decided)
    asking = {intent.service.ref: intent for intent in intents}
    allocation.release(observation.services, asking, observation, named, decided)
    return decided


def waiting_outcome(outcome: ServiceOutcome, waiting: allocation.Waiting) -> ServiceOutcome:
    """An ``address: auto`` Service whose IP is not there yet: the status says why."""
    problems = (*([waiting.problem] if waiting.problem else []), *outcome.intent.problems)
    messages = (waiting.status, *(p.message for p in outcome.intent.problems))
    return ServiceOutcome(outcome.intent, None, problems, status_text(messages))


def plan(observation: Observation) -> Plan:
    """Everything to do to bring the cluster and the account in line with the Services."""
    intents = read_intents(observation)
    exposed, foreign = exposable(intents)
    claims, rejections = claim_all(exposed)
    usable, blocked = usable_claims(claims, observation)
    blocked.update({r.intent.service.ref: r.problem for r in rejections})
    blocked.update(foreign)
    holdings = decide_holders(usable, observation, allocation.marked_droplets(observation.services))

    openings = collect_openings(intent for claim, _ in usable for intent in claim.intents)
    firewall = decide_firewall(
        observation.firewall, inbound_rules(openings.openings), observation.cluster
    )
    extras = advisories(tuple(i for claim, _ in usable for i in claim.intents))
    for ref, problem in openings.problems:
        extras[ref] = (*extras.get(ref, ()), problem)
    if firewall.problem is not None:
        for ref in openings.contributors:
            extras[ref] = (*extras.get(ref, ()), firewall.problem)

    outcomes = outcomes_for(intents, holdings, blocked, extras)
    ours = decide_ownership(intents, holdings, observation)
    outcomes = tuple(
        waiting_outcome(outcome, ours.waiting[outcome.ref])
        if outcome.ref in ours.waiting
        else outcome
        for outcome in outcomes
    )
    before, after = split_patches(outcomes, known_anchors(observation))
    events = firewall_events(outcomes, firewall.change, openings.contributors)
    for outcome in outcomes:
        events += move_events(outcome) + warning_events(outcome)
    cleaned, cleanup_events = cleanups(s for s in observation.services if not s.deleting)
    return Plan(
        finalizers_added=finalizers.additions(observation.services),
        allocations=tuple(ours.allocations),
        firewall=firewall.change,
        before_assign=before,
        assignments=tuple(h.assignment for h in holdings if h.assignment),
        after_assign=after + cleaned + tuple(ours.records),
        events=events + cleanup_events,
        reports=tuple(service_report(outcome) for outcome in outcomes),
        unclaimed=unclaimed_ips(observation, named_addresses(intents) | ours.spoken_for),
        releases=tuple(ours.releases),
        finalizers_removed=tuple(
            patch
            for patch in finalizers.removals(observation.services)
            if patch.service not in ours.held
        ),
    )
