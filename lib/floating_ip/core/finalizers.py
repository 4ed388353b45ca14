"""The function's own finalizer (``contract.FINALIZER``): on while a Service is ours, off once
its cleanup is done.

Kubernetes deletes a Service only once its finalizers are gone, so with ours on it a Service
deleted while the function is down (or failing) waits for the function's cleanup instead of
leaving firewall rules behind. The cloud provider's own finalizer cannot serve: it skips
Services of a foreign ``loadBalancerClass``, ours included.

- Every opted-in Service that is not being deleted gets it, in a patch the apply step makes
  before any cloud write; except a LoadBalancer of another class: nothing of it is ours to
  write or clean (its Warning says so).
- A Service being deleted, or one that opted out, loses it; the apply step removes it only
  when the run's cloud writes succeeded (the plan already leaves that Service out of the
  firewall), so a failed cleanup is retried while the Service still exists.
"""

from __future__ import annotations

from collections.abc import Iterable

from floating_ip.core.annotations import requested_address
from floating_ip.core.exposure import Exposure, exposure_of
from floating_ip.core.model import Service, ServicePatch
from floating_ip_common import contract


def finalized(service: Service) -> bool:
    return contract.FINALIZER in service.finalizers


def wanted(service: Service) -> bool:
    """Opted in, not being deleted, and exposed by us: the function may write cloud state
    for it, so its cleanup must be waited for."""
    return (
        not service.deleting
        and requested_address(service) is not None
        and exposure_of(service) is not Exposure.FOREIGN_LOAD_BALANCER
    )


def _patch(service: Service, finalizers: tuple[str, ...]) -> ServicePatch:
    # The list is replaced whole (a merge patch), so the precondition keeps another
    # controller's finalizer, added meanwhile, from being dropped.
    return ServicePatch(service.ref, service.uid, service.resource_version, finalizers=finalizers)


def additions(services: Iterable[Service]) -> tuple[ServicePatch, ...]:
    """The finalizer on each opted-in Service that lacks it, by namespace/name."""
    return tuple(
        _patch(service, (*service.finalizers, contract.FINALIZER))
        for service in sorted(services, key=lambda service: service.ref)
        if wanted(service) and not finalized(service)
    )


def removals(services: Iterable[Service]) -> tuple[ServicePatch, ...]:
    """The finalizer off each deleted or opted-out Service (or any other it is not wanted
    on) that carries it."""
    return tuple(
        _patch(service, tuple(f for f in service.finalizers if f != contract.FINALIZER))
        for service in sorted(services, key=lambda service: service.ref)
        if not wanted(service) and finalized(service)
    )
