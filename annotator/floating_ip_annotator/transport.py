"""One HTTP request with urllib, network failures turned into :class:`Transient`."""

from __future__ import annotations

import http.client
import ssl
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

from floating_ip_annotator.errors import Transient


@dataclass(frozen=True)
class Reply:
    status: int
    body: str
    oversized: bool = False
    """The answer went on past ``max_bytes``: ``body`` is only its start."""
    location: str = ""
    """The ``Location`` header of a redirect (never followed)."""


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """urllib would follow a redirect and resend the Authorization header to wherever it
    points; neither service redirects, so a 3xx is answered as it is."""

    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def opener(context: ssl.SSLContext | None = None) -> urllib.request.OpenerDirector:
    """Direct connections only: both services are link-local or in-cluster, and a proxy from
    the environment (``HTTPS_PROXY``) must never see the token."""
    handlers: list[urllib.request.BaseHandler] = [
        urllib.request.ProxyHandler({}),
        _NoRedirects(),
    ]
    if context is not None:
        handlers.append(urllib.request.HTTPSHandler(context=context))
    return urllib.request.build_opener(*handlers)


def send(
    director: urllib.request.OpenerDirector,
    request: urllib.request.Request,
    *,
    timeout: float,
    max_bytes: int,
) -> Reply:
    """The reply's status and body (any status; the body cut at ``max_bytes``).

    ``timeout`` bounds the whole answer, not only each read: a server dripping a byte at a
    time would otherwise hold the run for as long as it likes.
    Raises :class:`Transient` when no complete reply came (refused, reset, timed out).
    """
    started = time.monotonic()
    response: http.client.HTTPResponse | urllib.error.HTTPError
    try:
        response = director.open(request, timeout=timeout)
    except urllib.error.HTTPError as error:
        response = error
    except urllib.error.URLError as error:
        raise Transient(describe(error.reason, timeout)) from None
    except (OSError, http.client.HTTPException) as error:
        raise Transient(describe(error, timeout)) from None
    body = bytearray()
    try:
        with response:
            while len(body) <= max_bytes:
                chunk = response.read1(max_bytes + 1 - len(body))
                if not chunk:
                    break
                body += chunk
                if time.monotonic() - started > timeout:
                    raise Transient(f"answer too slow: {len(body)} bytes in {timeout:g}s")
            # read1 answers b"" when the server closes early, without complaint.
            missing = getattr(response, "length", None)
            if len(body) <= max_bytes and missing:
                raise Transient(f"answer cut short: {len(body)} of {len(body) + missing} bytes")
    except http.client.IncompleteRead as error:
        raise Transient(f"answer cut short after {len(body) + len(error.partial)} bytes") from None
    except (OSError, http.client.HTTPException) as error:
        raise Transient(describe(error, timeout)) from None
    return Reply(
        response.status or 0,
        bytes(body[:max_bytes]).decode("utf-8", errors="replace"),
        oversized=len(body) > max_bytes,
        location=response.headers.get("Location", "")
        if 300 <= (response.status or 0) < 400
        else "",
    )


def describe(error: object, timeout: float) -> str:
    """A short cause for a log line: "connection refused", "timed out after 2s", ..."""
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
