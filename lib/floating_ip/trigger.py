"""What woke the function: a CloudEvent, in binary or structured mode, turned into a Trigger.

The event only says what to look at; it never carries state the function acts on (no URLs,
no IPs, no node names), so a stale, repeated or forged event cannot move an IP by itself.

The body is hostile until checked: its size, media type, encoding and nesting are checked
before the CloudEvents SDK parses it, and whatever the SDK still raises on a body it cannot
read is a ``BadEvent`` too, so no request can raise out of the handler.

The SDK is lenient (it fills in a missing ``time``, keeps an empty ``id``, a numeric ``id`` or
an object ``source``), so the attributes are checked against the CloudEvents 1.0
specification first, as they came (headers in binary mode, members in structured mode): the
four required ones present, strings and non-empty; ``subject`` and ``time`` well-formed when
present; extension names lower-case letters and digits, values scalars. A Service's subject
must name one that can exist: the namespace a DNS label (RFC 1123), the name a DNS label as
Kubernetes requires of Services (RFC 1035).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cloudevents.exceptions import GenericException
from cloudevents.http import from_http

from floating_ip.adapters.relayed_kubernetes import BadState, ClusterState
from floating_ip_common import contract

CLUSTER_ID_ATTRIBUTE = "clusterid"
"""CloudEvents extension naming the cluster an event comes from (set by the forwarder)."""
DRY_RUN_ATTRIBUTE = "dryrun"
"""CloudEvents extension asking for a plan without writes (``true``; the doctor sends it)."""
_NAMESPACE = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
"""A namespace: an RFC 1123 DNS label (fullmatch: ``$`` would also accept a trailing newline)."""
_SERVICE = re.compile(r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?")
"""A Service's name: an RFC 1035 DNS label (Kubernetes validates Services so)."""
REQUIRED_ATTRIBUTES = ("specversion", "id", "source", "type")
_EXTENSION_NAME = re.compile(r"[a-z0-9]{1,20}")
"""CloudEvents 1.0: lower-case ASCII letters and digits; at most 20 SHOULD be used."""
_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})")
"""RFC 3339 (fullmatch), as CloudEvents' ``time`` requires."""
_CONTEXT = frozenset({*REQUIRED_ATTRIBUTES, "datacontenttype", "dataschema", "subject", "time"})
_BINARY_PREFIX = "ce-"
MAX_BODY_BYTES = 64 * 1024
"""The forwarder's events are a few hundred bytes; anything near this is not one of them."""
MAX_RELAY_BODY_BYTES = 1_000_000
"""Relay mode's events carry the cluster's state: DigitalOcean Functions accept up to 1 MB."""
MAX_JSON_DEPTH = 32
SPEC_VERSION = "1.0"
STRUCTURED = "application/cloudevents+json"
ACCEPTED_MEDIA_TYPES = ("application/json", STRUCTURED)
SEND_THIS = (
    f"send {STRUCTURED!r} (structured mode) or 'application/json' with ce-* headers (binary mode)"
)


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
    state: ClusterState | None = field(default=None, repr=False, compare=False)
    """Relay mode: the cluster as the forwarder sees it (the event's ``data.state``)."""


def check_body(headers: Mapping[str, str], body: bytes, max_bytes: int = MAX_BODY_BYTES) -> None:
    """Refuse what no CloudEvent of ours looks like, before any parser sees it.

    ``headers`` have lower-case names."""
    if len(body) > max_bytes:
        raise TooLarge(f"the body is {len(body)} bytes; an event is at most {max_bytes}")
    media_type = headers.get("content-type", "").partition(";")[0].strip().lower()
    if not media_type:
        raise BadEvent(f"no Content-Type: a CloudEvent over HTTP says its mode; {SEND_THIS}")
    if media_type not in ACCEPTED_MEDIA_TYPES:
        raise UnsupportedMediaType(
            f"content type {media_type[:100]!r} is not accepted: {SEND_THIS}"
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


def check_attributes(headers: Mapping[str, str], body: bytes) -> None:
    """The context attributes as sent, against the CloudEvents 1.0 specification.

    ``headers`` have lower-case names; ``check_body`` has passed."""
    media_type = headers.get("content-type", "").partition(";")[0].strip().lower()
    attributes: dict[str, Any]
    if media_type == STRUCTURED:
        try:
            parsed = json.loads(body.decode("utf-8") or "null")
        except ValueError as error:
            raise BadEvent(f"not a CloudEvent: the body is not JSON ({error})") from None
        if not isinstance(parsed, dict):
            raise BadEvent("not a CloudEvent: a structured-mode body is a JSON object")
        attributes = {
            k: v for k, v in parsed.items() if k not in ("data", "data_base64") and v is not None
        }
        where = "member"
    else:
        attributes = {
            k[len(_BINARY_PREFIX) :]: v for k, v in headers.items() if k.startswith(_BINARY_PREFIX)
        }
        where = "header ce-"
    for name in REQUIRED_ATTRIBUTES:
        if name not in attributes:
            raise BadEvent(
                f"not a CloudEvent: the required attribute {name!r} is missing ({where}{name})"
            )
    for name, value in attributes.items():
        _check_attribute(name, value)
    time = attributes.get("time")
    if time is not None and not _is_timestamp(str(time)):
        raise BadEvent(f"attribute 'time' is not an RFC 3339 timestamp: {str(time)[:40]!r}")


def _check_attribute(name: str, value: Any) -> None:
    shown = name[:40]
    if name not in _CONTEXT:
        if not _EXTENSION_NAME.fullmatch(name):
            raise BadEvent(
                f"attribute name {shown!r} is not a CloudEvents name "
                "(lower-case letters and digits, at most 20)"
            )
        if not isinstance(value, str | int | bool):
            raise BadEvent(f"extension {shown!r} must be a string, number or boolean")
        return
    if not isinstance(value, str):
        raise BadEvent(f"attribute {shown!r} must be a string, got {type(value).__name__}")
    if not value.strip():
        raise BadEvent(f"attribute {shown!r} is empty")
    if not value.isprintable():
        raise BadEvent(f"attribute {shown!r} holds control characters")


def _is_timestamp(text: str) -> bool:
    if not _TIMESTAMP.fullmatch(text):
        return False
    try:
        datetime.fromisoformat(text.upper().replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def parse_trigger(
    headers: Mapping[str, str], body: bytes, max_bytes: int = MAX_BODY_BYTES
) -> Trigger:
    lowered = {k.lower(): v for k, v in headers.items()}
    check_body(lowered, body, max_bytes)
    check_attributes(lowered, body)
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
    state = _state(event.data)
    if kind == contract.EVENT_RESYNC:
        return Trigger(
            kind,
            str(event["id"]),
            str(event["source"]),
            cluster_id=cluster_id,
            dry_run=dry_run,
            state=state,
        )
    if kind != contract.EVENT_SERVICE_CHANGED:
        raise BadEvent(
            f"unknown event type {kind[:100]!r}: expected {contract.EVENT_SERVICE_CHANGED!r} "
            f"or {contract.EVENT_RESYNC!r}"
        )
    subject = str(event.get("subject") or "")
    namespace, _, name = subject.partition("/")
    if not subject or "/" not in subject:
        raise BadEvent(f"{kind} needs a subject '<namespace>/<name>', got {subject[:300]!r}")
    if not _NAMESPACE.fullmatch(namespace):
        raise BadEvent(
            f"the subject's namespace {namespace[:70]!r} cannot exist: a namespace is a DNS "
            "label (at most 63 of a-z, 0-9 and '-', starting and ending with a letter or digit)"
        )
    if not _SERVICE.fullmatch(name):
        raise BadEvent(
            f"the subject's Service name {name[:70]!r} cannot exist: a Service's name is a DNS "
            "label (at most 63 of a-z, 0-9 and '-', starting with a letter, not ending with '-')"
        )
    return Trigger(
        kind, str(event["id"]), str(event["source"]), subject, cluster_id, dry_run, state
    )


def _state(data: object) -> ClusterState | None:
    if not isinstance(data, Mapping) or "state" not in data:
        return None
    try:
        return ClusterState.from_json(data["state"])
    except BadState as error:
        raise BadEvent(f"data.state: {error}") from None
