"""Planning an uninstall: every Service seen as if it had opted out.

The plan then removes everything the function ever wrote, with the code that does it for
one Service that opts out: our entries in ``spec.externalIPs`` and the ingress, our
annotations, the finalizer, the IPs created for ``address: auto`` (released), and the
firewall (no rule left). What the user wrote (the input annotations, their own entries,
their own reserved IPs) is never touched: the patches name only what is ours.
"""

from __future__ import annotations

from dataclasses import replace

from floating_ip.core.model import Observation, Plan
from floating_ip.core.plan import plan
from floating_ip_common import contract


def as_opted_out(observation: Observation) -> Observation:
    """The observation with every way of opting in hidden from the core (only): the user's
    input annotations, and the LoadBalancer class (which asks for an IP by itself). The
    patches planned from it name only what is ours, so neither is written back."""
    services = tuple(
        replace(
            service,
            annotations=tuple(
                (key, value)
                for key, value in service.annotations
                if key not in contract.INPUT_ANNOTATIONS
            ),
            type="ClusterIP" if service.load_balancer_class else service.type,
            load_balancer_class=None,
        )
        for service in observation.services
    )
    return replace(observation, services=services)


def uninstall_plan(observation: Observation) -> Plan:
    """What removes every trace of the function; no Events (they would be its last trace)."""
    return replace(plan(as_opted_out(observation)), events=())
