"""One plain-HTTP request to the metadata service with urllib, network failures turned into
:class:`Transient` (the Kubernetes API is reached through ``floating_ip_common``)."""

from __future__ import annotations

import contextlib
import http.client
import socket
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass

from floating_ip_annotator.errors import Transient
from floating_ip_common.kube_errors import describe

WATCHDOG_FACTOR = 1.5
"""A whole answer may take this many request timeouts before its connection is cut."""


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


class _Watchdog:
    """Cuts a request's connection when its time is up. Each read has a timeout, but a
    server dripping a byte at a time (headers included) would never trip it."""

    def __init__(self) -> None:
        self.fired = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()

    def watch(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.append(sock)
            if self.fired:
                _cut(sock)

    def fire(self) -> None:
        with self._lock:
            self.fired = True
            for sock in self._sockets:
                _cut(sock)


def _cut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # already closed
        sock.shutdown(socket.SHUT_RDWR)  # the blocked read returns at once


_current = threading.local()
"""The watchdog of the request this thread is sending (urllib offers no other way in)."""


def _watch(sock: socket.socket) -> None:
    watchdog: _Watchdog | None = getattr(_current, "watchdog", None)
    if watchdog is not None:
        watchdog.watch(sock)


class _WatchedHTTPConnection(http.client.HTTPConnection):
    def connect(self) -> None:
        super().connect()
        _watch(self.sock)


class _HTTPHandler(urllib.request.HTTPHandler):
    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(_WatchedHTTPConnection, req)


def opener() -> urllib.request.OpenerDirector:
    """Direct connections only: the metadata service is link-local, and a proxy from the
    environment (``HTTP_PROXY``) must never see what it answers."""
    handlers: list[urllib.request.BaseHandler] = [
        urllib.request.ProxyHandler({}),
        _NoRedirects(),
        _HTTPHandler(),
    ]
    return urllib.request.build_opener(*handlers)


def send(
    director: urllib.request.OpenerDirector,
    request: urllib.request.Request,
    *,
    timeout: float,
    max_bytes: int,
) -> Reply:
    """The reply's status and body (any status; the body cut at ``max_bytes``).

    ``timeout`` bounds each read and, times :data:`WATCHDOG_FACTOR`, the whole answer: a
    server dripping a byte at a time would otherwise hold the run for as long as it likes.
    Raises :class:`Transient` when no complete reply came (refused, reset, timed out).
    """
    watchdog = _Watchdog()
    # Later than the socket's own timeout, so a plain hang reads "timed out after 5s".
    timer = threading.Timer(timeout * WATCHDOG_FACTOR, watchdog.fire)
    timer.daemon = True
    _current.watchdog = watchdog
    timer.start()
    try:
        return _exchange(director, request, timeout, max_bytes, watchdog)
    finally:
        timer.cancel()
        _current.watchdog = None


def _exchange(
    director: urllib.request.OpenerDirector,
    request: urllib.request.Request,
    timeout: float,
    max_bytes: int,
    watchdog: _Watchdog,
) -> Reply:
    response: http.client.HTTPResponse | urllib.error.HTTPError
    try:
        response = director.open(request, timeout=timeout)
    except urllib.error.HTTPError as error:
        response = error
    except urllib.error.URLError as error:
        raise Transient(_cause(error.reason, timeout, watchdog)) from None
    except (OSError, http.client.HTTPException) as error:
        raise Transient(_cause(error, timeout, watchdog)) from None
    body = bytearray()
    try:
        with response:
            while len(body) <= max_bytes:
                chunk = response.read1(max_bytes + 1 - len(body))
                if not chunk:
                    break
                body += chunk
            if watchdog.fired:
                raise Transient(_cause(None, timeout, watchdog))
            # read1 answers b"" when the server closes early, without complaint.
            missing = getattr(response, "length", None)
            if len(body) <= max_bytes and missing:
                raise Transient(f"answer cut short: {len(body)} of {len(body) + missing} bytes")
    except http.client.IncompleteRead as error:
        if watchdog.fired:
            raise Transient(_cause(error, timeout, watchdog)) from None
        raise Transient(f"answer cut short after {len(body) + len(error.partial)} bytes") from None
    except (OSError, http.client.HTTPException) as error:
        raise Transient(_cause(error, timeout, watchdog)) from None
    return Reply(
        response.status or 0,
        bytes(body[:max_bytes]).decode("utf-8", errors="replace"),
        oversized=len(body) > max_bytes,
        location=response.headers.get("Location", "")
        if 300 <= (response.status or 0) < 400
        else "",
    )


def _cause(error: object, timeout: float, watchdog: _Watchdog) -> str:
    if watchdog.fired:
        return f"answer too slow: not complete within {timeout * WATCHDOG_FACTOR:.3g}s"
    return describe(error, timeout)
