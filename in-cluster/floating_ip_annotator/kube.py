"""The Kubernetes API as an in-cluster client sees it: read one object, merge-patch it."""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import os
import re
import ssl
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from floating_ip_annotator import transport
from floating_ip_annotator.errors import (
    AnnotatorConfigError,
    KubeRejected,
    PermissionDenied,
    Transient,
)

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
TOKEN_FILE = SERVICE_ACCOUNT_DIR / "token"
CA_FILE = SERVICE_ACCOUNT_DIR / "ca.crt"
# A Node with many cached images is a few hundred KiB of JSON; stop well above that.
MAX_OBJECT_BYTES = 8 * 1024 * 1024
# A projected ServiceAccount token is about 1 KiB; a larger "token" is the wrong file.
MAX_TOKEN_BYTES = 64 * 1024
_HOSTNAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?")
_PORT = re.compile(r"[1-9][0-9]{0,4}")


@dataclass(frozen=True)
class Target:
    """The object to annotate: this container's own Pod, or the Node it runs on."""

    kind: str  # "pod" or "node"
    name: str
    namespace: str | None = None

    @property
    def path(self) -> str:
        name = urllib.parse.quote(self.name, safe="")
        if self.namespace is None:
            return f"/api/v1/nodes/{name}"
        namespace = urllib.parse.quote(self.namespace, safe="")
        return f"/api/v1/namespaces/{namespace}/pods/{name}"

    def __str__(self) -> str:
        if self.namespace is None:
            return f"{self.kind} {self.name}"
        return f"{self.kind} {self.namespace}/{self.name}"


@dataclass(frozen=True)
class Credentials:
    server: str
    token: str = field(repr=False)  # never in a log line, not even by accident
    context: ssl.SSLContext = field(repr=False)


def in_cluster(environ: Mapping[str, str], token_file: Path, ca_file: Path) -> Credentials:
    """What every in-cluster client uses: the service env vars, the mounted token and CA."""
    host = environ.get("KUBERNETES_SERVICE_HOST", "")
    port = environ.get("KUBERNETES_SERVICE_PORT", "")
    if not host or not port:
        raise AnnotatorConfigError(
            "KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set: "
            "not running in a Kubernetes pod?"
        )
    _check_server(host, port)
    if ":" in host:
        host = f"[{host}]"
    token = _read_token(token_file)
    try:
        context = ssl.create_default_context(cafile=os.fspath(ca_file))
    except (OSError, ssl.SSLError) as error:
        raise AnnotatorConfigError(f"cannot load the cluster CA from {ca_file}: {error}") from None
    return Credentials(f"https://{host}:{port}", token, context)


def _check_server(host: str, port: str) -> None:
    """Refused here, not found "unreachable" after every retry (or sent somewhere else)."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if not _HOSTNAME.fullmatch(host):
            raise AnnotatorConfigError(
                f"KUBERNETES_SERVICE_HOST {host!r} is not an IP address or host name"
            ) from None
    if not _PORT.fullmatch(port) or int(port) > 65535:
        raise AnnotatorConfigError(f"KUBERNETES_SERVICE_PORT {port!r} is not a port (1-65535)")


def _read_token(token_file: Path) -> str:
    """The token, checked without ever quoting it: it goes into a header as it is."""
    try:
        with token_file.open("rb") as file:
            raw = file.read(MAX_TOKEN_BYTES + 1)
    except OSError as error:
        raise AnnotatorConfigError(
            f"cannot read the ServiceAccount token at {token_file}: {error.strerror} "
            "(is automountServiceAccountToken false?)"
        ) from None
    if len(raw) > MAX_TOKEN_BYTES:
        raise AnnotatorConfigError(
            f"the ServiceAccount token file {token_file} is larger than {MAX_TOKEN_BYTES} bytes: "
            "not a token"
        )
    token = raw.strip()
    if not token:
        raise AnnotatorConfigError(f"the ServiceAccount token file {token_file} is empty")
    if not all(0x21 <= byte <= 0x7E for byte in token):
        raise AnnotatorConfigError(
            f"the ServiceAccount token in {token_file} contains bytes a token never has "
            "(spaces, line breaks, control or non-ASCII characters)"
        )
    return token.decode("ascii")


class KubeApi:
    """GET and PATCH of single objects; statuses mapped to the annotator's errors."""

    def __init__(self, credentials: Credentials) -> None:
        self._credentials = credentials
        self._director = transport.opener(credentials.context)

    def get(self, target: Target, timeout: float) -> dict[str, Any]:
        return self._call("GET", target, None, timeout)

    def patch(self, target: Target, body: Mapping[str, Any], timeout: float) -> dict[str, Any]:
        return self._call("PATCH", target, body, timeout)

    def _call(
        self, method: str, target: Target, body: Mapping[str, Any] | None, timeout: float
    ) -> dict[str, Any]:
        headers = {
            "Authorization": f"Bearer {self._credentials.token}",
            "Accept": "application/json",
            "User-Agent": "floating-ip-annotator",
        }
        data = None
        if body is not None:
            headers["Content-Type"] = "application/merge-patch+json"
            data = json.dumps(body).encode()
        request = urllib.request.Request(  # noqa: S310 - the URL is https, built here
            self._credentials.server + target.path, data=data, headers=headers, method=method
        )
        reply = transport.send(self._director, request, timeout=timeout, max_bytes=MAX_OBJECT_BYTES)
        # Whatever the answer holds, it never carries the token into a log line.
        reply = dataclasses.replace(
            reply, body=reply.body.replace(self._credentials.token, "<token>")
        )
        if reply.status == 200:
            return _object(reply, target)
        raise _failure(reply, method, target)


def _object(reply: transport.Reply, target: Target) -> dict[str, Any]:
    if reply.oversized:
        raise KubeRejected(
            f"the Kubernetes API answered more than {MAX_OBJECT_BYTES} bytes for {target}: "
            "not a single object"
        )
    try:
        parsed = json.loads(reply.body)
    except (ValueError, RecursionError):
        raise KubeRejected(
            f"the Kubernetes API answered non-JSON for {target}: {_quoted(reply.body)}"
        ) from None
    if not isinstance(parsed, dict):
        raise KubeRejected(f"the Kubernetes API answered a non-object for {target}")
    return parsed


def _failure(reply: transport.Reply, method: str, target: Target) -> Exception:
    message = _status_message(reply.body)
    doing = "reading" if method == "GET" else "patching"
    if reply.status == 401:
        return PermissionDenied(
            f"the Kubernetes API rejected the ServiceAccount token (401) {doing} {target}: "
            f"{message}"
        )
    if reply.status == 403:
        return PermissionDenied(
            f"permission denied {doing} {target}: {message}; {_needed_role(target)}"
        )
    if reply.status in {409, 429} or reply.status >= 500:
        return Transient(f"HTTP {reply.status} {doing} {target}: {message}")
    if reply.status == 404:
        return KubeRejected(f"{target} not found (404): {message}")
    if 300 <= reply.status < 400:
        # Never followed: the token would go along to wherever it points.
        return KubeRejected(
            f"the Kubernetes API redirected {doing} {target} (HTTP {reply.status}) to "
            f"{_quoted(reply.location) if reply.location else 'nowhere'}, not followed: "
            "the API server does not redirect, is KUBERNETES_SERVICE_HOST right?"
        )
    return KubeRejected(f"HTTP {reply.status} {doing} {target}: {message}")


def _needed_role(target: Target) -> str:
    if target.namespace is None:
        return (
            "the ServiceAccount needs the floating-ip-node-annotator ClusterRole "
            "(get and patch nodes)"
        )
    return "the ServiceAccount needs the floating-ip-annotator Role (get and patch pods)"


def _status_message(body: str) -> str:
    """The ``message`` of a Kubernetes Status object, else the body cut short; quoted when
    it holds line breaks or control characters, so it cannot forge log lines."""
    try:
        status = json.loads(body)
    except (ValueError, RecursionError):
        status = None
    if isinstance(status, dict) and isinstance(status.get("message"), str):
        return _quoted(str(status["message"]))
    return _quoted(body.strip()) if body.strip() else "(no message)"


def _quoted(text: str, limit: int = 200) -> str:
    """``text`` cut at ``limit`` characters, as it is when printable, else as a repr."""
    cut = text[:limit] + ("..." if len(text) > limit else "")
    return cut if cut.isprintable() else repr(cut)
