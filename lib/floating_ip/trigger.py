"""What woke the function: a CloudEvent, in binary or structured mode, turned into a Trigger.

The event only says what to look at; it never carries state the function acts on (no URLs,
no IPs, no node names), so a stale, repeated or forged event cannot move an IP by itself.

The body is hostile until checked: its size, media type, encoding and nesting are checked
before the CloudEvents SDK parses it, and whatever the SDK still raises on a body it cannot
read is a ``BadEvent`` too, so no request can raise out of the handler.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from cloudevents.exceptions import GenericException
from cloudevents.http import from_http

from floating_ip_common import contract

CLUSTER_ID_ATTRIBUTE = "clusterid"
"""CloudEvents extension naming the cluster an event comes from (set by the forwarder)."""
DRY_RUN_ATTRIBUTE = "dryrun"
"""CloudEvents extension asking for a plan without writes (``true``; the doctor sends it)."""
_NAME = re.compile(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?")
"""A Kubernetes object name (fullmatch: ``$`` would also accept a trailing newline)."""
MAX_BODY_BYTES = 64 * 1024
"""The forwarder's events are a few hundred bytes; anything near this is not one of them."""
MAX_JSON_DEPTH = 32
SPEC_VERSION = "1.0"
STRUCTURED = "application/cloudevents+json"
ACCEPTED_MEDIA_TYPES = ("", "application/json", STRUCTURED)


class BadEvent(ValueError):
    """The request is not a CloudEvent this function understands (answered with 400)."""

    status = 400


class UnsupportedSchema(BadEvent):
    """An event of a schema version this function does not accept: one of the two parts is
    more than one release ahead of the other."""

    status = contract.UNSUPPORTED_SCHEMA_STATUS


class TooLarge(BadEvent):
    status = 413


class UnsupportedMediaType(BadEvent):
    status = 415


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


def check_body(headers: Mapping[str, str], body: bytes) -> None:
    """Refuse what no CloudEvent of ours looks like, before any parser sees it.

    ``headers`` have lower-case names."""
    if len(body) > MAX_BODY_BYTES:
        raise TooLarge(f"the body is {len(body)} bytes; an event is at most {MAX_BODY_BYTES}")
    media_type = headers.get("content-type", "").partition(";")[0].strip().lower()
    if media_type not in ACCEPTED_MEDIA_TYPES:
        raise UnsupportedMediaType(
            f"content type {media_type[:100]!r} is not accepted: send {STRUCTURED!r} "
            "(structured mode) or 'application/json' with ce-* headers (binary mode)"
        )
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise BadEvent(f"the body is not UTF-8 (byte {error.start})") from None
    if json_depth(text) > MAX_JSON_DEPTH:
        raise BadEvent(f"the body nests JSON deeper than {MAX_JSON_DEPTH} levels")
    version = headers.get("ce-specversion")
    if version is not None and version != SPEC_VERSION:
        raise BadEvent(f"ce-specversion {version[:20]!r} is not supported: send {SPEC_VERSION!r}")


def json_depth(text: str) -> int:
    """The deepest nesting of ``[`` and ``{`` outside strings (no parser, so no recursion)."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def check_schema(attribute: object) -> None:
    """The event's schema version (absent: 1) must be one this function accepts."""
    text = str(attribute).strip() if attribute is not None else "1"
    accepted = ", ".join(str(v) for v in contract.ACCEPTED_EVENT_SCHEMAS)
    if not text.isdigit() or int(text) not in contract.ACCEPTED_EVENT_SCHEMAS:
        raise UnsupportedSchema(
            f"event schema version {text[:20]!r} is not accepted (this function accepts "
            f"{accepted}): upgrade the function, or the forwarder, so they are at most one "
            "release apart"
        )


def parse_trigger(headers: Mapping[str, str], body: bytes) -> Trigger:
    lowered = {k.lower(): v for k, v in headers.items()}
    check_body(lowered, body)
    try:
        event = from_http(lowered, body or None)
    except (GenericException, ValueError, TypeError, KeyError, AttributeError) as error:
        # The SDK raises more than its own exception type on some bodies it cannot read.
        raise BadEvent(f"not a CloudEvent: {str(error)[:200]}") from None
    if str(event["specversion"]) != SPEC_VERSION:
        raise BadEvent(f"specversion {str(event['specversion'])[:20]!r} is not supported")
    check_schema(event.get(contract.EVENT_SCHEMA_ATTRIBUTE))
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
            f"unknown event type {kind[:100]!r}: expected {contract.EVENT_SERVICE_CHANGED!r} "
            f"or {contract.EVENT_RESYNC!r}"
        )
    subject = str(event.get("subject") or "")
    namespace, _, name = subject.partition("/")
    if not (_NAME.fullmatch(namespace) and _NAME.fullmatch(name)):
        raise BadEvent(f"{kind} needs a subject '<namespace>/<name>', got {subject[:300]!r}")
    return Trigger(kind, str(event["id"]), str(event["source"]), subject, cluster_id, dry_run)
