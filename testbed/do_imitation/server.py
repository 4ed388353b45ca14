"""The imitation served over HTTPS on the loopback interface, in a background thread.

TLS uses a certificate of the test bed's CA, so clients trust it the way they would trust
any private CA (``connection_verify=<ca file>`` for pydo, ``REQUESTS_CA_BUNDLE``).
The handshake runs in each connection's own thread, so a stalled client blocks nobody.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import unquote, urlsplit

from testbed.do_imitation.app import ApiRequest, ImitationApp, encode
from testbed.do_imitation.contract import ContractViolation
from testbed.do_imitation.control import CONTROL_PREFIX, handle_control
from testbed.do_imitation.routes import Reply
from testbed.tls import TestCA


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], app: ImitationApp, context: ssl.SSLContext):
        self.app = app
        self.context = context
        self.open_connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def get_request(self) -> tuple[Any, Any]:
        plain, address = super().get_request()
        # Headers and body leave in separate writes; without this, Nagle's algorithm and
        # the client's delayed ACK add ~40 ms to every answer.
        plain.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        wrapped = self.context.wrap_socket(plain, server_side=True, do_handshake_on_connect=False)
        with self.connections_lock:
            self.open_connections.add(wrapped)
        return wrapped, address

    def shutdown_request(self, request: Any) -> None:
        with self.connections_lock:
            self.open_connections.discard(request)
        super().shutdown_request(request)

    def close_open_connections(self) -> None:
        with self.connections_lock:
            connections = list(self.open_connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that hang up, time out or distrust the certificate are normal in tests.
        pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the real API
    timeout = 60  # idle keep-alive connections end eventually
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the request log is the record

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_PATCH(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        url = urlsplit(self.path)
        path = unquote(url.path)  # clients quote ':' in tag names, for one
        app = self.server.app
        reply: Reply | None
        if path.startswith(CONTROL_PREFIX):
            reply = handle_control(app, self.command, path, url.query, body)
        elif path == "/v2" or path.startswith("/v2/"):
            headers = dict(self.headers.items())
            reply = app.handle(ApiRequest(self.command, path, url.query, headers, body))
        else:
            reply = Reply(404, {"id": "not_found", "message": f"nothing at {path}"})
        if reply is None:
            self._hang_up()
        else:
            self._send(reply)

    def _send(self, reply: Reply) -> None:
        data = encode(reply.body)
        self.send_response(reply.status)
        if data:
            self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _hang_up(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)


class DoImitation(ImitationApp):
    """The DigitalOcean API imitation, served at ``url`` once started.

    ``state_dir`` receives the server certificate (and the CA when none is given).
    """

    def __init__(
        self,
        state_dir: Path,
        *,
        ca: TestCA | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        token: str | None = None,
        check_contract: bool = True,
        spec_path: Path | None = None,
        on_violation: Callable[[ContractViolation], None] | None = None,
    ) -> None:
        super().__init__(
            token=token,
            check_contract=check_contract,
            spec_path=spec_path,
            on_violation=on_violation,
        )
        self._ca = ca or TestCA(state_dir)
        self._state_dir = state_dir
        self._address = (host, port)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def ca_file(self) -> Path:
        """The PEM bundle a client must trust."""
        return self._ca.ca_file

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the imitation is not started")
        host, port = self._server.server_address[:2]
        return f"https://{host!s}:{port}"

    @property
    def control_url(self) -> str:
        return self.url + CONTROL_PREFIX

    def start(self) -> DoImitation:
        host = self._address[0]
        names = dict.fromkeys((host, "localhost", "127.0.0.1"))
        certificate = self._ca.issue("do-imitation", *names)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(certificate.cert, certificate.key)
        self._server = _Server(self._address, self, context)
        self.base_url = self.url
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="do-imitation",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        self.abort_in_flight()
        server.shutdown()
        server.close_open_connections()
        server.server_close()
        thread.join(timeout=10)
        self._server = self._thread = None

    def __enter__(self) -> DoImitation:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()
