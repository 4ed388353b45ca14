"""A tiny world that applies a plan to an observation, the way the apply step would.

It also checks the platform's rules as it goes (one reserved IP per droplet, phases in
order), so a plan that a real apply step would trip over fails here first.
"""

from __future__ import annotations

from dataclasses import replace

from floating_ip.core.model import (
    Firewall,
    FirewallAction,
    Observation,
    Plan,
    Service,
    ServicePatch,
)
from floating_ip.core.plan import plan


def patch_service(service: Service, patch: ServicePatch) -> Service:
    assert patch.uid == service.uid
    annotations = dict(service.annotations)
    for key, value in patch.annotations:
        if value is None:
            annotations.pop(key, None)
        else:
            annotations[key] = value
    return replace(
        service,
        annotations=tuple(sorted(annotations.items())),
        external_ips=service.external_ips if patch.external_ips is None else patch.external_ips,
        ingress=service.ingress if patch.ingress is None else patch.ingress,
        finalizers=service.finalizers if patch.finalizers is None else patch.finalizers,
        resource_version=str(int(service.resource_version or "0") + 1),
    )


def apply_firewall(observation: Observation, the_plan: Plan) -> Firewall | None:
    change = the_plan.firewall
    current = observation.firewall
    if change is None:
        return current
    if change.action is FirewallAction.DELETE:
        assert current is not None and change.firewall_id == current.id
        return None
    assert change.body is not None
    assert change.body.inbound_rules, "the API refuses a firewall without rules"
    if change.action is FirewallAction.UPDATE:
        assert current is not None and change.firewall_id == current.id
    else:
        assert current is None
    body = change.body
    return Firewall(
        id=current.id if current else "fw-1",
        name=body.name,
        inbound_rules=body.inbound_rules,
        outbound_rules=body.outbound_rules,
        tags=body.tags,
        droplet_ids=body.droplet_ids,
    )


def apply(observation: Observation, the_plan: Plan) -> Observation:
    """The observation after every step of ``the_plan`` succeeded."""
    services = {service.ref: service for service in observation.services}
    for patch in the_plan.finalizers_added:
        services[patch.service] = patch_service(services[patch.service], patch)
    for patch in the_plan.before_assign:
        services[patch.service] = patch_service(services[patch.service], patch)
    reserved = {ip.ip: ip for ip in observation.reserved_ips}
    for assignment in the_plan.assignments:
        current = reserved[assignment.ip]
        assert not current.locked
        assert current.droplet_id == assignment.from_droplet_id
        holders = {ip.droplet_id for ip in reserved.values() if ip.ip != assignment.ip}
        assert assignment.droplet_id not in holders, "one reserved IP per droplet"
        reserved[assignment.ip] = replace(current, droplet_id=assignment.droplet_id)
    for patch in the_plan.after_assign:
        services[patch.service] = patch_service(services[patch.service], patch)
    for released in the_plan.unassignments:
        current = reserved[released.ip]
        assert not current.locked and current.droplet_id == released.droplet_id
        reserved[released.ip] = replace(current, droplet_id=None)
    for patch in the_plan.finalizers_removed:
        services[patch.service] = patch_service(services[patch.service], patch)
    # Kubernetes deletes a deleted Service once its last finalizer is gone.
    services = {ref: s for ref, s in services.items() if not (s.deleting and not s.finalizers)}
    return replace(
        observation,
        services=tuple(services.values()),
        reserved_ips=tuple(reserved.values()),
        firewall=apply_firewall(observation, the_plan),
    )


def converge(observation: Observation, rounds: int = 3) -> tuple[Observation, list[Plan]]:
    """Plan and apply until a plan is empty; the plans made (the last one empty)."""
    plans = []
    for _ in range(rounds):
        plans.append(plan(observation))
        if plans[-1].is_empty:
            return observation, plans
        observation = apply(observation, plans[-1])
    raise AssertionError(f"no empty plan after {rounds} rounds: {plans[-1]}")
