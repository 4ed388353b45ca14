"""The CloudEvents the forwarder sends, in HTTP binary mode (``ce-*`` headers, JSON body).

The shared secret is not part of the event: the sender adds ``contract.AUTH_HEADER``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from floating_ip_common import contract

RESYNC_KEY = "*"
"""The coalescer's key for a resync; Service keys are ``namespace/name`` (always a slash)."""


@dataclass(frozen=True, slots=True)
class HttpEvent:
    headers: dict[str, str]
    body: bytes


def subject_of(namespace: str, name: str) -> str:
    return f"{namespace}/{name}"


def build(key: str, *, cluster_id: str, event_id: str, time: datetime) -> HttpEvent:
    """The event for a coalescer key: a resync, or a change of Service ``key``."""
    headers = {
        "ce-specversion": "1.0",
        "ce-id": event_id,
        "ce-source": contract.EVENT_SOURCE,
        "ce-time": time.isoformat().replace("+00:00", "Z"),
        # An extension attribute: lets one function serve, and tell apart, several clusters.
        "ce-clusterid": cluster_id,
        # What the events mean: the function accepts this version and the previous one.
        f"ce-{contract.EVENT_SCHEMA_ATTRIBUTE}": str(contract.EVENT_SCHEMA_VERSION),
        "content-type": "application/json",
    }
    body: dict[str, str]
    if key == RESYNC_KEY:
        headers["ce-type"] = contract.EVENT_RESYNC
        body = {}
    else:
        headers["ce-type"] = contract.EVENT_SERVICE_CHANGED
        headers["ce-subject"] = key
        body = {"service": key}
    return HttpEvent(headers, json.dumps(body, separators=(",", ":")).encode())
