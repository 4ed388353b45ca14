"""One run: read the droplet's identity, then bring the target's annotations up to date."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from floating_ip_annotator import kube, metadata
from floating_ip_annotator.errors import KubeUnreachable
from floating_ip_annotator.identity import DropletIdentity
from floating_ip_annotator.kube import KubeApi, Target
from floating_ip_annotator.plan import (
    annotation_patch,
    check_node_droplet,
    desired_annotations,
    object_state,
)
from floating_ip_annotator.retry import GaveUp, RetryPolicy, with_retries
from floating_ip_common.deadline import Deadline


class WriteOutcome(enum.Enum):
    WRITTEN = "written"
    UNCHANGED = "unchanged"


@dataclass(frozen=True)
class AnnotatorSettings:
    target: Target
    metadata_root: str
    token_file: Path
    ca_file: Path
    environ: Mapping[str, str] = field(repr=False)
    timeout: float = 30.0
    """Seconds for the whole run, retries included."""
    policy: RetryPolicy = field(default_factory=RetryPolicy)


@dataclass(frozen=True)
class Result:
    outcome: WriteOutcome
    identity: DropletIdentity


def run(settings: AnnotatorSettings) -> Result:
    """Everything is read and checked before the one write, so a failure writes nothing."""
    deadline = Deadline(settings.timeout)
    # Local configuration first: a missing token should not wait for the network.
    client = kube.in_cluster(settings.environ, settings.token_file, settings.ca_file)
    identity = metadata.read_identity(settings.metadata_root, settings.policy, deadline)
    api = KubeApi(client)
    target = settings.target
    try:
        outcome = with_retries(
            lambda timeout: _bring_up_to_date(api, target, identity, timeout, deadline),
            policy=settings.policy,
            deadline=deadline,
        )
    except GaveUp as gave_up:
        raise KubeUnreachable(
            f"Kubernetes API at {api.server} failing after " + gave_up.summary(settings.timeout)
        ) from None
    return Result(outcome, identity)


def _bring_up_to_date(
    api: KubeApi, target: Target, identity: DropletIdentity, timeout: float, deadline: Deadline
) -> WriteOutcome:
    """Read, compare, patch only if needed; a 409 (changed meanwhile) retries the whole."""
    current = object_state(api.get(target, timeout), str(target))
    if target.namespace is None:
        check_node_droplet(target.name, current.provider_id, identity)
    patch = annotation_patch(
        current.annotations, desired_annotations(identity), current.resource_version
    )
    if patch is None:
        return WriteOutcome.UNCHANGED
    # The read used part of this attempt's time; the write gets what is left of the run
    # (never zero: urllib would take that for a non-blocking socket).
    api.patch(target, patch, min(timeout, max(deadline.remaining(), 0.1)))
    return WriteOutcome.WRITTEN
