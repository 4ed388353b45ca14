"""``/healthz``, ``/readyz`` and ``/metrics`` over plain HTTP (for the kubelet and Prometheus)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

METRICS_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class OpsServer:
    def __init__(
        self,
        address: str,
        port: int,
        *,
        healthy: Callable[[], bool],
        ready: Callable[[], bool],
        metrics: Callable[[], str],
    ) -> None:
        routes: dict[str, Callable[[], tuple[int, str, str]]] = {
            "/healthz": lambda: _check(healthy(), "ok", "unhealthy"),
            "/readyz": lambda: _check(ready(), "ok", "not synced yet"),
            "/metrics": lambda: (200, METRICS_TYPE, metrics()),
        }

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                route = routes.get(self.path.split("?", 1)[0])
                status, content_type, text = route() if route else (404, "text/plain", "no\n")
                body = text.encode()
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass  # probes every few seconds would drown the useful lines

        self.server = ThreadingHTTPServer((address, port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, name="ops", daemon=True)

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _check(ok: bool, good: str, bad: str) -> tuple[int, str, str]:
    return (200, "text/plain", good + "\n") if ok else (503, "text/plain", bad + "\n")
