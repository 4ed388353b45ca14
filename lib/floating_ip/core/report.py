"""The per-Service summary of the decision, for logs and the JSON report."""

from __future__ import annotations

from floating_ip.core.model import ServiceReport
from floating_ip.core.outcomes import ServiceOutcome


def service_report(outcome: ServiceOutcome) -> ServiceReport:
    return ServiceReport(
        service=outcome.ref,
        address=outcome.intent.address,
        holder_node=outcome.node_name,
        holder_droplet=outcome.droplet_id,
        anchor_ip=outcome.anchor,
        status=outcome.status,
        nodes=outcome.verdicts,
        problems=outcome.problems,
        uid=outcome.intent.service.uid,
    )
