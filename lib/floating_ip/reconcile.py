"""One reconcile: observe → plan (pure core) → apply, repeated when a write lost a race."""

from __future__ import annotations

import dataclasses
from typing import Any

from floating_ip.adapters.digitalocean import DigitalOcean
from floating_ip.adapters.kubernetes import Kubernetes, KubernetesApi
from floating_ip.adapters.relayed_kubernetes import RelayedKubernetes
from floating_ip.apply import Applier
from floating_ip.config import Config
from floating_ip.core.model import Observation, Plan
from floating_ip.core.plan import plan
from floating_ip.deadline import Deadline
from floating_ip.errors import ConflictError
from floating_ip.observe import observe
from floating_ip.trigger import Trigger

MAX_ATTEMPTS = 3
"""A 409 means someone else wrote in between: observe again, at most this often."""

JSON = dict[str, Any]


@dataclasses.dataclass
class ReconcileResult:
    report: JSON
    pending: bool
    """An assignment was still in progress at the deadline: ask the sender to come back."""
    failed: bool
    """A write failed permanently (details in the report)."""


def reconcile(
    config: Config, trigger: Trigger, deadline: Deadline, kube_token: str
) -> ReconcileResult:
    """``kube_token``: the caller's short-lived token for the function's ServiceAccount
    (callback mode). In relay mode the trigger brings the state and the report carries the
    Kubernetes writes (``kubernetes_writes``, in order) and whether to call again."""
    relayed = RelayedKubernetes(trigger.state) if trigger.state is not None else None
    kube: KubernetesApi = relayed or Kubernetes(config.kube_api_url, kube_token, config.kube_ca_pem)
    do = DigitalOcean(config.digitalocean_token, config.digitalocean_api_url)
    try:
        for attempt in range(1, MAX_ATTEMPTS + 1):
            observation = observe(config, kube, do, deadline)
            decided = plan(observation)
            try:
                dry_run = config.dry_run or trigger.dry_run
                applied = Applier(kube, do, deadline, dry_run=dry_run).apply(decided)
            except ConflictError:
                if attempt == MAX_ATTEMPTS:
                    raise
                continue
            report = _report(trigger, config, observation, decided, attempt)
            report["changes"] = applied.changes
            report["errors"] = applied.errors
            report["pending"] = sorted(applied.pending_ips)
            # As received (gzip-compressed when big) and as parsed.
            report["observed"]["kubernetes_bytes_read"] = kube.bytes_read
            report["observed"]["kubernetes_bytes_decoded"] = kube.bytes_decoded
            report["unclaimed"] = [unclaimed.message for unclaimed in decided.unclaimed]
            if relayed is not None:
                report["kubernetes_writes"] = [w.as_json() for w in relayed.writes]
                report["again"] = applied.again
            pending = bool(applied.pending_ips) or applied.follow_up
            return ReconcileResult(report, pending, bool(applied.errors))
        raise AssertionError("unreachable")  # pragma: no cover
    finally:
        kube.close()
        do.close()


def _report(
    trigger: Trigger, config: Config, observation: Observation, decided: Plan, attempts: int
) -> JSON:
    return {
        "trigger": {
            "type": trigger.type,
            "id": trigger.id,
            "source": trigger.source,
            "service": trigger.service,
            "cluster_id": trigger.cluster_id,
            "dry_run": trigger.dry_run,
        },
        "dry_run": config.dry_run or trigger.dry_run,
        "attempts": attempts,
        "observed": {
            "services": len(observation.services),
            "nodes": len(observation.nodes),
            "pods": len(observation.pods),
            "reserved_ips": len(observation.reserved_ips),
            "firewall": observation.firewall.id if observation.firewall else None,
        },
        "services": [_jsonable(dataclasses.asdict(r)) for r in decided.reports],
    }


def _jsonable(value: Any) -> Any:
    """``asdict`` output with tuples as lists and enums as their text."""
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, str):
        return str(value)
    return value
