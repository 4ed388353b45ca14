"""Just enough of a Kubernetes API client: JSON requests and watch streams over HTTPS.

One ``Connection`` per thread (keep-alive); ``abort()`` may be called from another thread to
break a blocking read at shutdown.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from floating_ip_common.kube_access import KubeAccess

JSON_TYPE = "application/json"
USER_AGENT = "doks-floating-ip-event-forwarder"


class ApiError(Exception):
    """A non-2xx answer (or a watch ERROR event) from the apiserver."""

    def __init__(self, status: int, message: str, retry_after: str | None = None) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.retry_after = retry_after


class KubeClient:
    def __init__(self, access: KubeAccess, timeout: float = 30.0) -> None:
        parts = urlsplit(access.api_url)
        self.host = parts.hostname or ""
        self.port = parts.port or 443
        self.base_path = parts.path.rstrip("/")
        self.token_file = Path(access.token_file)
        self.timeout = timeout
        self.context = ssl.create_default_context(cafile=access.ca_file)

    def connection(self, read_timeout: float | None = None) -> Connection:
        return Connection(self, read_timeout or self.timeout)

    def headers(self, accept: str) -> dict[str, str]:
        token = self.token_file.read_bytes().strip()
        if not token or not all(0x21 <= byte <= 0x7E for byte in token):
            # Never quoted: a line break would otherwise make http.client raise with the
            # whole header, token included, in a message that ends up in the log.
            raise ValueError(
                f"the token in {self.token_file} is empty or contains spaces, line breaks, "
                "control or non-ASCII characters"
            )
        return {
            "Authorization": f"Bearer {token.decode()}",
            "Accept": accept,
            "User-Agent": USER_AGENT,
        }


class Connection:
    def __init__(self, client: KubeClient, timeout: float) -> None:
        self.client = client
        self.timeout = timeout
        self._conn: http.client.HTTPSConnection | None = None
        self._lock = threading.Lock()
        self._aborted = False

    def _open(self) -> http.client.HTTPSConnection:
        with self._lock:
            if self._aborted:
                raise ConnectionAbortedError("connection aborted (shutting down)")
            if self._conn is None:
                self._conn = http.client.HTTPSConnection(
                    self.client.host,
                    self.client.port,
                    timeout=self.timeout,
                    context=self.client.context,
                )
            return self._conn

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def abort(self) -> None:
        """Break any blocking read now and refuse further use (from any thread)."""
        with self._lock:
            self._aborted = True
            conn = self._conn
            sock = conn.sock if conn is not None else None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def _send(
        self, method: str, path: str, accept: str, body: Any = None, content_type: str = JSON_TYPE
    ) -> http.client.HTTPResponse:
        headers = self.client.headers(accept)
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            headers["Content-Type"] = content_type
        retried = False
        while True:
            with self._lock:
                reused = self._conn is not None and self._conn.sock is not None
            conn = self._open()
            try:
                conn.request(method, self.client.base_path + path, body=payload, headers=headers)
                return conn.getresponse()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.close()
                # The server dropped an idle kept-alive connection: one fresh try. (Lease
                # writes carry a resourceVersion, so a repeat cannot apply twice.)
                if not reused or retried:
                    raise
                retried = True
            except BaseException:
                self.close()
                raise

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        accept: str = JSON_TYPE,
        *,
        content_type: str = JSON_TYPE,
    ) -> dict[str, Any]:
        """One request; the decoded JSON answer, or ``ApiError``. ``content_type``: of the
        body (``application/merge-patch+json`` for a merge patch)."""
        response = self._send(method, path, accept, body, content_type)
        try:
            data = response.read()
        except BaseException:
            self.close()
            raise
        if response.will_close:
            self.close()
        if not 200 <= response.status < 300:
            raise ApiError(response.status, _message(data), response.getheader("Retry-After"))
        decoded = json.loads(data)
        if not isinstance(decoded, dict):
            raise ApiError(response.status, "answer is not a JSON object")
        return decoded

    def stream(self, path: str, accept: str = JSON_TYPE) -> Iterator[dict[str, Any]]:
        """A watch: one decoded event per line until the server ends the stream."""
        response = self._send("GET", path, accept)
        try:
            if response.status != 200:
                data = response.read()
                raise ApiError(response.status, _message(data), response.getheader("Retry-After"))
            while True:
                line = response.readline()
                if not line:
                    return
                if line.strip():
                    event = json.loads(line)
                    if isinstance(event, dict):
                        yield event
        finally:
            # A watch connection is never reused: the server may have left it mid-stream.
            self.close()


def _message(data: bytes) -> str:
    try:
        status = json.loads(data)
    except ValueError:
        return data[:200].decode(errors="replace")
    if isinstance(status, dict):
        return str(status.get("message") or status.get("reason") or status)[:300]
    return str(status)[:300]
