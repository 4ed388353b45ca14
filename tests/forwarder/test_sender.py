"""The sender survives a kept-alive connection that the function's side closed while idle:
the next POST goes out on a fresh connection instead of counting as a failed delivery."""

from __future__ import annotations

import contextlib
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from floating_ip_forwarder.forwarding.cloudevent import HttpEvent
from floating_ip_forwarder.forwarding.sender import Sender, function_context
from testbed.tls import TestCA


class _IdleClosingServer(ThreadingHTTPServer):
    """Answers each POST with keep-alive promised, then closes the connection anyway (as an
    HTTPS front does when its idle timeout passes), cleanly, with a TLS close_notify."""

    daemon_threads = True

    def __init__(self, context: ssl.SSLContext) -> None:
        self.context = context
        self.closed = threading.Semaphore(0)
        self.answered = 0
        super().__init__(("127.0.0.1", 0), _Handler)

    def get_request(self) -> tuple[Any, Any]:
        plain, address = super().get_request()
        return self.context.wrap_socket(plain, server_side=True), address

    def shutdown_request(self, request: Any) -> None:
        # Send close_notify (the client sees a clean TLS close); do not wait for the reply.
        request.settimeout(0.2)
        with contextlib.suppress(OSError, ValueError):
            request.unwrap()
        super().shutdown_request(request)
        self.closed.release()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _IdleClosingServer

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.server.answered += 1
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()
        self.close_connection = True  # without saying "Connection: close"

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[_IdleClosingServer, TestCA]]:
    ca = TestCA(tmp_path)
    cert = ca.issue("receiver", "127.0.0.1")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(cert.cert), str(cert.key))
    httpd = _IdleClosingServer(context)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield httpd, ca
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


def test_a_connection_closed_while_idle_is_replaced_not_reported(
    server: tuple[_IdleClosingServer, TestCA],
) -> None:
    httpd, ca = server
    url = f"https://127.0.0.1:{httpd.server_address[1]}/fn"
    sender = Sender(url, "s" * 20, function_context(str(ca.ca_file)), timeout=5)
    event = HttpEvent({"content-type": "application/json"}, b"{}")
    for _ in range(3):
        delivery = sender.send(event)
        assert (delivery.status, delivery.error) == (200, None)
        assert httpd.closed.acquire(timeout=5)  # the server has closed the idle connection
    assert httpd.answered == 3
