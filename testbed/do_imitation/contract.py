"""Checks requests and responses against DigitalOcean's own OpenAPI description.

A request the spec rejects is a bug of the client under test; a response the spec rejects
is a bug of the imitation. Both are collected as ``ContractViolation`` records.

The spec is the committed subset ``digitalocean-openapi-subset.json`` (derived from the bundled
description by ``derive_openapi``; see its ``x-provenance``), loaded once per process;
openapi-core's whole-document check of the spec itself is switched off (the document is
DigitalOcean's, not ours). The bundle carries ``discriminator`` mappings that
point into the unbundled source tree (``models/*.yml#/...``); they cannot resolve, so they
are dropped at load: the ``anyOf`` they annotate still validates the body.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal

from openapi_core import Config, OpenAPI
from openapi_core.datatypes import RequestParameters
from werkzeug.datastructures import Headers, ImmutableMultiDict

SUBSET = Path(__file__).parent / "digitalocean-openapi-subset.json"
"""The committed subset of DigitalOcean's description (written by ``make openapi-subset``)."""


def default_spec_path() -> Path:
    """The committed subset of DigitalOcean's description that the imitation serves."""
    return SUBSET


@dataclass(frozen=True)
class LoadedSpec:
    openapi: OpenAPI
    server_url: str  # requests are checked as if sent there
    seconds: float  # time taken to load, for the record


@cache
def load_spec(path: Path) -> LoadedSpec:
    started = time.perf_counter()
    if not path.is_file():
        raise FileNotFoundError(f"DigitalOcean OpenAPI subset not found at {path}")
    document = json.loads(path.read_bytes())
    _drop_unresolvable_discriminators(document, document)
    openapi = OpenAPI.from_dict(document, config=Config(spec_validator_cls=None))
    server_url = str(document["servers"][0]["url"]).rstrip("/")
    return LoadedSpec(openapi, server_url, time.perf_counter() - started)


def _drop_unresolvable_discriminators(node: Any, document: Any) -> None:
    if isinstance(node, dict):
        discriminator = node.get("discriminator")
        if isinstance(discriminator, dict):
            targets = (discriminator.get("mapping") or {}).values()
            if not all(_resolves(target, document) for target in targets):
                del node["discriminator"]
        for value in node.values():
            _drop_unresolvable_discriminators(value, document)
    elif isinstance(node, list):
        for value in node:
            _drop_unresolvable_discriminators(value, document)


def _resolves(reference: Any, document: Any) -> bool:
    if not isinstance(reference, str) or not reference.startswith("#/"):
        return False
    node = document
    for part in reference[2:].split("/"):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


@dataclass(frozen=True)
class ContractViolation:
    side: Literal["request", "response"]
    method: str
    path: str
    status: int | None
    detail: str

    def describe(self) -> str:
        if self.side == "request":
            culprit = "the CLIENT sent a request the spec rejects"
        else:
            culprit = f"the IMITATION answered {self.status} in a way the spec rejects"
        return f"{self.method} {self.path}: {culprit}: {self.detail}"


@dataclass(frozen=True)
class HttpExchange:
    """What was sent and answered, as plain data."""

    method: str
    path: str
    query: list[tuple[str, str]]
    headers: Mapping[str, str]
    body: bytes
    status: int = 0
    response_headers: Mapping[str, str] | None = None
    response_body: bytes = b""


class _SpecRequest:
    def __init__(self, exchange: HttpExchange, server_url: str) -> None:
        self.host_url = server_url
        self.path = exchange.path
        self.method = exchange.method.lower()
        self.body: bytes | None = exchange.body or None
        headers = Headers(list(exchange.headers.items()))
        self.content_type = (headers.get("Content-Type") or "").lower()
        self.parameters = RequestParameters(
            query=ImmutableMultiDict(exchange.query), header=headers
        )


class _SpecResponse:
    def __init__(self, exchange: HttpExchange) -> None:
        self.status_code = exchange.status
        self.headers = Headers(list((exchange.response_headers or {}).items()))
        self.content_type = (self.headers.get("Content-Type") or "").lower()
        self.data: bytes | None = exchange.response_body or None


class ContractChecker:
    def __init__(self, spec_path: Path | None = None) -> None:
        self.spec = load_spec(spec_path or default_spec_path())
        self._lock = threading.Lock()  # openapi-core builds caches lazily; keep it serial

    def check_request(self, exchange: HttpExchange) -> list[ContractViolation]:
        request = _SpecRequest(exchange, self.spec.server_url)
        with self._lock:
            errors = list(self.spec.openapi.iter_request_errors(request))
        return [
            ContractViolation("request", exchange.method, _shown(exchange), None, _describe(e))
            for e in errors
        ]

    def check_response(self, exchange: HttpExchange) -> list[ContractViolation]:
        """Problems of the answer; none when the spec has no such operation (the request's
        check reports that)."""
        request = _SpecRequest(exchange, self.spec.server_url)
        response = _SpecResponse(exchange)
        with self._lock:
            errors = list(self.spec.openapi.iter_response_errors(request, response))
        return [
            ContractViolation(
                "response", exchange.method, _shown(exchange), exchange.status, _describe(e)
            )
            for e in errors
            if type(e).__name__ not in _NO_OPERATION
        ]


_NO_OPERATION = {"PathNotFound", "OperationNotFound", "ServerNotFound"}


def _shown(exchange: HttpExchange) -> str:
    if not exchange.query:
        return exchange.path
    return exchange.path + "?" + "&".join(f"{k}={v}" for k, v in exchange.query)


def _describe(error: BaseException) -> str:
    """The error and its causes down to the JSON-schema messages, on one line."""
    parts = [f"{type(error).__name__}: {_without_cause(error)}"]
    for cause in _causes(error):
        schema_errors: Iterable[Any] = getattr(cause, "schema_errors", ()) or ()
        details = [_schema_error(e) for e in schema_errors]
        parts.append("; ".join(details) if details else _without_cause(cause))
    return " <- ".join(dict.fromkeys(p for p in parts if p))


def _without_cause(error: BaseException) -> str:
    text = str(error)
    if error.__cause__ is not None:
        text = text.replace(f": {error.__cause__}", "")
    return _clip(text)


def _clip(text: str, limit: int = 400) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _causes(error: BaseException) -> Iterator[BaseException]:
    cause = error.__cause__
    while cause is not None:
        yield cause
        cause = cause.__cause__


def _schema_error(error: Any) -> str:
    where = "/".join(str(p) for p in getattr(error, "absolute_path", ())) or "(root)"
    message = str(getattr(error, "message", error))
    context = [str(getattr(sub, "message", sub)) for sub in getattr(error, "context", ()) or ()]
    if context:
        message += " [" + " | ".join(context[:4]) + "]"
    return f"at {where}: {_clip(message)}"


def summarise(violations: Iterable[ContractViolation]) -> str:
    return "\n".join(f"- {v.describe()}" for v in violations)
