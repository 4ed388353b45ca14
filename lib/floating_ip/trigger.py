"""What woke the function: a CloudEvent, in binary or structured mode, turned into a Trigger.

The event only says what to look at; it never carries state the function acts on (no URLs,
no IPs, no node names), so a stale, repeated or forged event cannot move an IP by itself.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from cloudevents.exceptions import GenericException
from cloudevents.http import from_http

from floating_ip import contract

CLUSTER_ID_ATTRIBUTE = "clusterid"
"""CloudEvents extension naming the cluster an event comes from (set by the forwarder)."""
DRY_RUN_ATTRIBUTE = "dryrun"
"""CloudEvents extension asking for a plan without writes (``true``; the doctor sends it)."""
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")


class BadEvent(ValueError):
    """The request is not a CloudEvent this function understands (answered with 400)."""


@dataclass(frozen=True)
class Trigger:
    type: str
    id: str
    source: str
    service: str | None = None
    """``<namespace>/<name>`` for a service.changed event; ``None`` for a resync."""
    cluster_id: str | None = None
    """The ``clusterid`` extension attribute the forwarder sets, when present."""
    dry_run: bool = False
    """The ``dryrun`` extension attribute was ``true``: observe and plan, write nothing."""


def parse_trigger(headers: Mapping[str, str], body: bytes) -> Trigger:
    lowered = {k.lower(): v for k, v in headers.items()}
    try:
        event = from_http(lowered, body or None)
    except GenericException as error:
        raise BadEvent(f"not a CloudEvent: {error}") from None
    kind = str(event["type"])
    cluster = event.get(CLUSTER_ID_ATTRIBUTE)
    cluster_id = str(cluster).lower() if cluster else None
    dry_run = str(event.get(DRY_RUN_ATTRIBUTE) or "").lower() == "true"
    if kind == contract.EVENT_RESYNC:
        return Trigger(
            kind, str(event["id"]), str(event["source"]), cluster_id=cluster_id, dry_run=dry_run
        )
    if kind != contract.EVENT_SERVICE_CHANGED:
        raise BadEvent(
            f"unknown event type {kind!r}: expected {contract.EVENT_SERVICE_CHANGED!r} "
            f"or {contract.EVENT_RESYNC!r}"
        )
    subject = str(event.get("subject") or "")
    namespace, _, name = subject.partition("/")
    if not (_NAME.match(namespace) and _NAME.match(name)):
        raise BadEvent(f"{kind} needs a subject '<namespace>/<name>', got {subject!r}")
    return Trigger(kind, str(event["id"]), str(event["source"]), subject, cluster_id, dry_run)
