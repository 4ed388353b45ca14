"""A recording CloudEvent sink over HTTPS, standing in for the reconcile function.

It checks the shared secret as the platform does (401 otherwise), records every request, and
can be told to answer something else (503 with ``Retry-After``) or to go away entirely.
"""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from floating_ip_common import contract
from testbed.processes import wait_until
from testbed.tls import CertFiles


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    """Lower-cased names."""
    body: dict[str, Any]
    at: float
    """``time.monotonic()`` when it arrived."""
    status: int
    """What the receiver answered."""

    @property
    def type(self) -> str:
        return self.headers.get("ce-type", "")

    @property
    def subject(self) -> str | None:
        return self.headers.get("ce-subject")

    @property
    def is_resync(self) -> bool:
        return self.type == contract.EVENT_RESYNC


class _Server(ThreadingHTTPServer):
    """Remembers its open connections: a function that goes down drops kept-alive ones too."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(address, handler)
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def close_open_connections(self) -> None:
        with self._open_lock:
            connections, self._open = list(self._open), set()
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
            connection.close()


class Receiver:
    def __init__(self, cert: CertFiles, secret: str) -> None:
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.context.load_cert_chain(str(cert.cert), str(cert.key))
        self.secret = secret
        self.port = 0
        self._lock = threading.Lock()
        self._received: list[Received] = []
        self._answer: tuple[int, dict[str, str]] = (200, {})
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> Receiver:
        """Listen (again on the same port after ``stop``)."""
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as a real function endpoint

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                headers = {k.lower(): v for k, v in self.headers.items()}
                status, extra = receiver._answer_for(headers)
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    body = {"unparsable": raw.decode(errors="replace")}
                receiver._record(Received(self.path, headers, body, time.monotonic(), status))
                reply = b'{"ok": true}' if status == 200 else b'{"error": "no"}'
                self.send_response(status)
                for name, value in extra.items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        server = _Server(("127.0.0.1", self.port), Handler)
        server.socket = self.context.wrap_socket(server.socket, server_side=True)
        self.port = int(server.server_address[1])
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening: the function is down (connections are refused)."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server.close_open_connections()
            self._server = None
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def url(self, path: str = "/api/v1/web/fn/floating-ip/reconcile") -> str:
        return f"https://127.0.0.1:{self.port}{path}"

    # --- behaviour ---------------------------------------------------------------------------

    def answer(self, status: int, **headers: str) -> None:
        """Answer every following request with ``status`` (and ``headers``)."""
        with self._lock:
            self._answer = (status, {k.replace("_", "-"): v for k, v in headers.items()})

    def _answer_for(self, headers: dict[str, str]) -> tuple[int, dict[str, str]]:
        if headers.get(contract.AUTH_HEADER.lower()) != self.secret:
            return 401, {}
        with self._lock:
            return self._answer

    def _record(self, received: Received) -> None:
        with self._lock:
            self._received.append(received)

    # --- what arrived ------------------------------------------------------------------------

    def received(self, path: str | None = None) -> list[Received]:
        with self._lock:
            return [r for r in self._received if path is None or r.path == path]

    def accepted(self, path: str | None = None) -> list[Received]:
        return [r for r in self.received(path) if r.status == 200]

    def subjects(self, since: float = 0.0) -> list[str]:
        """Subjects of the accepted service events that arrived after ``since``."""
        return [r.subject or "" for r in self.accepted() if r.at >= since and not r.is_resync]

    def resyncs(self, since: float = 0.0, path: str | None = None) -> list[Received]:
        return [r for r in self.accepted(path) if r.at >= since and r.is_resync]

    def wait_for(self, condition: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
        wait_until(condition, timeout=timeout, what=what)

    def wait_subject(
        self, subject: str, since: float, *, or_resync: bool = False, timeout: float = 20.0
    ) -> Received:
        """The first accepted event for ``subject`` after ``since`` (or a resync, which
        covers every Service, when ``or_resync``)."""

        def matches(r: Received) -> bool:
            return r.at >= since and (r.subject == subject or (or_resync and r.is_resync))

        self.wait_for(
            lambda: any(matches(r) for r in self.accepted()), f"an event for {subject}", timeout
        )
        return next(r for r in self.accepted() if matches(r))
