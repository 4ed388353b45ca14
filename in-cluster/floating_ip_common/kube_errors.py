"""What an answer of the apiserver means for the caller, by HTTP status (as kopf's errors
module sorts them), and its message made safe for a log line."""

from __future__ import annotations

import http.client
import json
import ssl
from enum import Enum


class Failure(Enum):
    TRANSIENT = "transient"
    """429, 5xx: the server will likely answer later; retry with backoff."""
    UNAUTHORIZED = "unauthorized"
    """401: the token was refused."""
    FORBIDDEN = "forbidden"
    """403: RBAC lacks a rule."""
    NOT_FOUND = "not found"
    CONFLICT = "conflict"
    """409: changed meanwhile; read again, then decide again."""
    GONE = "gone"
    """410: a watch's resourceVersion is too old; list again."""
    REDIRECTED = "redirected"
    """3xx: the apiserver never redirects; never followed (the token would go along)."""
    REJECTED = "rejected"
    """Any other 4xx: the request itself is wrong; retrying cannot help."""


def failure_of(status: int) -> Failure:
    """The kind of failure an HTTP status (not 2xx) is."""
    if status == 429 or status >= 500:
        return Failure.TRANSIENT
    known = {
        401: Failure.UNAUTHORIZED,
        403: Failure.FORBIDDEN,
        404: Failure.NOT_FOUND,
        409: Failure.CONFLICT,
        410: Failure.GONE,
    }
    if status in known:
        return known[status]
    if 300 <= status < 400:
        return Failure.REDIRECTED
    return Failure.REJECTED


def status_message(body: bytes | str) -> str:
    """The ``message`` of a Kubernetes Status object, else the body cut short; quoted when
    it holds line breaks or control characters, so it cannot forge log lines."""
    text = body.decode("utf-8", errors="replace") if isinstance(body, bytes) else body
    try:
        status = json.loads(text)
    except (ValueError, RecursionError):
        status = None
    if isinstance(status, dict):
        message = status.get("message") or status.get("reason")
        if isinstance(message, str) and message:
            return quoted(message, 300)
    return quoted(text.strip()) if text.strip() else "(no message)"


def quoted(text: str, limit: int = 200) -> str:
    """``text`` cut at ``limit`` characters, as it is when printable, else as a repr."""
    cut = text[:limit] + ("..." if len(text) > limit else "")
    return cut if cut.isprintable() else repr(cut)


def describe(error: object, timeout: float) -> str:
    """A short cause of a failed exchange for a log line: "connection refused", "timed out
    after 2s", ..."""
    if isinstance(error, ConnectionRefusedError):
        return "connection refused"
    if isinstance(error, TimeoutError):
        return f"timed out after {timeout:g}s"
    if isinstance(error, ssl.SSLCertVerificationError):
        return f"TLS certificate not trusted: {error.verify_message}"
    if isinstance(error, http.client.RemoteDisconnected):
        return "connection closed without an answer"
    if isinstance(error, OSError) and error.strerror:
        return error.strerror[0].lower() + error.strerror[1:]
    return str(error) or type(error).__name__
