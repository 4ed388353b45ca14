"""One HTTP request with urllib, network failures turned into :class:`Transient`."""

from __future__ import annotations

import http.client
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass

from floating_ip_annotator.errors import Transient


@dataclass(frozen=True)
class Reply:
    status: int
    body: str


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

    Raises :class:`Transient` when no complete reply came (refused, reset, timed out).
    """
    response: http.client.HTTPResponse | urllib.error.HTTPError
    try:
        response = director.open(request, timeout=timeout)
    except urllib.error.HTTPError as error:
        response = error
    except urllib.error.URLError as error:
        raise Transient(describe(error.reason, timeout)) from None
    except (OSError, http.client.HTTPException) as error:
        raise Transient(describe(error, timeout)) from None
    try:
        with response:
            body = response.read(max_bytes)
    except (OSError, http.client.HTTPException) as error:
        raise Transient(describe(error, timeout)) from None
    return Reply(response.status or 0, body.decode("utf-8", errors="replace"))


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
