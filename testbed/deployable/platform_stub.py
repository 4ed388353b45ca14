"""The one platform answer the deployer needs offline: ``GET /api/v1`` with the runtimes table.

Without it the deployer cannot check ``runtime:`` in project.yml. Served on loopback from a
thread; the requests it got are kept so a test can tell the deployer really asked.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

# The Python kinds DigitalOcean Functions lists; 3.11 is the one project.yml asks for.
RUNTIMES: dict[str, Any] = {
    "runtimes": {
        "python": [
            {"kind": "python:3.9", "deprecated": False},
            {"kind": "python:3.11", "default": True, "deprecated": False},
            {"kind": "python:3.12", "deprecated": False},
            {"kind": "python:3.13", "deprecated": False},
        ]
    }
}


class RuntimesStub:
    def __init__(self) -> None:
        self.requests: list[str] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                stub.requests.append(self.path)
                if self.path.rstrip("/") != "/api/v1":
                    self.send_error(404)
                    return
                body = json.dumps(RUNTIMES).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> RuntimesStub:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(10)
