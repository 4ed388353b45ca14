"""The HTTP contract of the function, independent of the platform that calls it.

401 wrong or missing shared secret (checked in constant time), or a cluster token that is not
one; 405 not a POST; 400 no cluster token with the secret (a forwarder of release 0.1.0 sends
none), not a CloudEvent by the specification or not one we understand (naming the attribute),
or a Service that cannot exist; 413 a body larger than any event, 415 a media type events do
not use;
500 the function is misconfigured or a permanent error stopped it; 503 with Retry-After when
a dependency failed transiently, time ran out or a decided change could not be completed
(the report names it); 200 otherwise, with a JSON report of what was observed, decided and
changed.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from floating_ip.config import RELAY, Config
from floating_ip.deadline import Deadline
from floating_ip.errors import FunctionConfigError, OutOfTime, PermanentError, TransientError
from floating_ip.reconcile import reconcile
from floating_ip.trigger import (
    MAX_BODY_BYTES,
    MAX_RELAY_BODY_BYTES,
    BadEvent,
    Trigger,
    parse_trigger,
)
from floating_ip_common import contract

log = logging.getLogger("floating_ip")

DEFAULT_RETRY_AFTER = 5


@dataclass(frozen=True)
class Request:
    method: str
    headers: Mapping[str, str]
    body: bytes
    remaining_ms: int | None = None
    """What the platform leaves for this invocation, when it says."""


@dataclass(frozen=True)
class Response:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


def handle(request: Request, env: Mapping[str, str] | None = None) -> Response:
    try:
        config, trigger, kube_token = _admit(request, os.environ if env is None else env)
    except _Refused as refusal:
        return refusal.response
    deadline = Deadline.from_platform(request.remaining_ms)
    try:
        outcome = reconcile(config, trigger, deadline, kube_token)
    except TransientError as error:
        retry_after = error.retry_after or DEFAULT_RETRY_AFTER
        kind = "out of time" if isinstance(error, OutOfTime) else "dependency unavailable"
        return _answer(
            503, {"error": f"{kind}: {error}"}, {"Retry-After": str(max(1, round(retry_after)))}
        )
    except PermanentError as error:
        return _answer(500, {"error": str(error)})
    report = outcome.report
    report["seconds"] = round(deadline.elapsed(), 3)
    if outcome.pending or outcome.failed:
        # A change was decided but not made (an errored or unfinished action, a refused
        # write): the sender decides on the status code alone, so only a 503 gets it retried.
        return _answer(503, report, {"Retry-After": str(DEFAULT_RETRY_AFTER)})
    return _answer(200, report)


class _Refused(Exception):
    def __init__(self, response: Response) -> None:
        self.response = response


def _admit(request: Request, env: Mapping[str, str]) -> tuple[Config, Trigger, str]:
    """Who may call, how, and with what: checked in that order, before any call is made.

    Also returns the caller's Kubernetes token (``contract.KUBE_TOKEN_HEADER``): the function
    holds no cluster credential of its own."""
    headers = {k.lower(): v for k, v in request.headers.items()}
    # Authenticate before saying anything about the configuration.
    secret = env.get("WEB_SECRET", "")
    offered = headers.get(contract.AUTH_HEADER.lower(), "")
    if not secret or not hmac.compare_digest(offered.encode(), secret.encode()):
        raise _Refused(_answer(401, {"error": f"missing or wrong {contract.AUTH_HEADER} header"}))
    if request.method.upper() != "POST":
        raise _Refused(_answer(405, {"error": "only POST is accepted"}, {"Allow": "POST"}))
    try:
        config = Config.from_env(env)
    except FunctionConfigError as error:
        raise _Refused(_answer(500, {"error": str(error)})) from None
    relay = config.cluster_access == RELAY
    # Relay mode never calls the cluster: no token is needed (one sent is not used).
    kube_token = "" if relay else _kube_token(headers)
    try:
        limit = MAX_RELAY_BODY_BYTES if relay else MAX_BODY_BYTES
        trigger = parse_trigger(headers, request.body, limit)
    except BadEvent as error:
        raise _Refused(_answer(error.status, {"error": str(error)})) from None
    if relay and trigger.state is None:
        stateless = (
            "CLUSTER_ACCESS is relay but the event carries no cluster state (data.state): "
            "set CLUSTER_ACCESS=relay on the forwarder too"
        )
        raise _Refused(_answer(400, {"error": stateless}))
    if not relay and trigger.state is not None:
        # Callback mode reads the cluster itself and never acts on state an event claims.
        stateful = (
            "the event carries cluster state (data.state) but CLUSTER_ACCESS is callback: "
            "set the same CLUSTER_ACCESS on the forwarder and the function"
        )
        raise _Refused(_answer(400, {"error": stateful}))
    if trigger.cluster_id not in (None, config.cluster_id):
        # A forwarder of another cluster is pointed at this function: say so, change nothing.
        wrong = f"event from cluster {trigger.cluster_id}; this function serves {config.cluster_id}"
        raise _Refused(_answer(400, {"error": wrong}))
    return config, trigger, kube_token


MAX_TOKEN_LENGTH = 16 * 1024
"""A ServiceAccount token is about a kilobyte; far more is not one."""


def _kube_token(headers: Mapping[str, str]) -> str:
    """The forwarder's short-lived token for the function's ServiceAccount. Never quoted back:
    a wrong one is described, not shown.

    None at all is a 400, not a 401: the caller proved the secret, and what it lacks is what
    release 0.1.0's forwarder never sent (its function held a standing credential). That
    forwarder logs a 400 as "versions out of step?" (a 401 as a wrong WEB_SECRET) and retries
    it minutes later."""
    token = headers.get(contract.KUBE_TOKEN_HEADER.lower(), "").strip()
    name = contract.KUBE_TOKEN_HEADER
    if not token:
        missing = (
            f"missing {name} header: this function holds no cluster credential and acts with "
            "the short-lived token the event forwarder mints and sends with each event. The "
            "forwarder of release 0.1.0 sends none: upgrade the event forwarder first (the "
            "cluster side), then the function. A forwarder with CLUSTER_ACCESS=relay sends "
            "none either: set the same CLUSTER_ACCESS on both sides"
        )
        raise _Refused(_answer(400, {"error": missing}))
    if len(token) > MAX_TOKEN_LENGTH or not all(0x21 <= ord(c) <= 0x7E for c in token):
        error = f"the {name} header is not a token (too long, or not printable ASCII)"
        raise _Refused(_answer(401, {"error": error}))
    return token


def _answer(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    summary = {
        "status": status,
        "error": body.get("error"),
        "changes": len(body.get("changes", [])),
        "errors": body.get("errors", []),
        "unclaimed": body.get("unclaimed", []),
        "trigger": (body.get("trigger") or {}).get("type"),
        "seconds": body.get("seconds"),
    }
    log.info(json.dumps({k: v for k, v in summary.items() if v not in (None, [])}))
    return Response(status, body, {"Content-Type": "application/json", **(headers or {})})
