"""Just enough of a Kubernetes API client: JSON requests and watch streams over HTTPS, for
the forwarder and the annotator alike.

One ``Connection`` per thread (keep-alive); ``abort()`` may be called from another thread to
break a blocking read at shutdown. A request's whole answer must arrive within
``WATCHDOG_FACTOR`` times its read timeout: each read has a timeout, but a server dripping a
byte at a time would never trip it. Redirects are never followed and no proxy is used (the
token would go along).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import ssl
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

from floating_ip_common.kube_access import KubeAccess, KubeAccessError, read_token
from floating_ip_common.kube_errors import Failure, failure_of, quoted, status_message

JSON_TYPE = "application/json"
MERGE_PATCH_TYPE = "application/merge-patch+json"
USER_AGENT = "doks-floating-ip"
WATCHDOG_FACTOR = 1.5
"""A whole answer may take this many read timeouts before its connection is cut."""


class ApiError(Exception):
    """A non-2xx answer (or a watch ERROR event) from the apiserver."""

    def __init__(
        self, status: int, message: str, retry_after: str | None = None, location: str = ""
    ) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message
        self.retry_after = retry_after
        self.location = location
        """A redirect's ``Location`` (never followed)."""

    @property
    def failure(self) -> Failure:
        return failure_of(self.status)


class AnswerTooSlow(ConnectionError):
    """The whole answer did not arrive within the watchdog's time."""


class AnswerTooLarge(Exception):
    """The answer went on past the request's ``max_bytes``."""


class AnswerCutShort(ConnectionError):
    """The connection ended before the length the answer announced."""


class NotAnObject(ValueError):
    """The answer is JSON, but not an object."""


class KubeClient:
    def __init__(self, access: KubeAccess, timeout: float = 30.0, user_agent: str = "") -> None:
        parts = urlsplit(access.api_url)
        self.api_url = access.api_url
        self.host = parts.hostname or ""
        self.port = parts.port or 443
        self.base_path = parts.path.rstrip("/")
        self.token_file = access.token_file
        self.timeout = timeout
        self.user_agent = user_agent or USER_AGENT
        self.context = ssl_context(access.ca_file)

    def connection(self, read_timeout: float | None = None) -> Connection:
        return Connection(self, read_timeout or self.timeout)

    def headers(self, accept: str) -> tuple[dict[str, str], str]:
        """The request headers, and the token they carry (to keep it out of messages)."""
        token = read_token(self.token_file)
        headers = {
            "Authorization": f"Bearer {token}",
            "Accept": accept,
            "User-Agent": self.user_agent,
        }
        return headers, token


def ssl_context(ca_file: str | None) -> ssl.SSLContext:
    """Verifies the apiserver against ``ca_file`` (``None``: the system's trust store)."""
    try:
        return ssl.create_default_context(cafile=ca_file)
    except (OSError, ssl.SSLError) as error:
        raise KubeAccessError(f"cannot load the cluster CA from {ca_file}: {error}") from None


class Connection:
    def __init__(self, client: KubeClient, timeout: float) -> None:
        self.client = client
        self.timeout = timeout
        self._conn: http.client.HTTPSConnection | None = None
        self._lock = threading.Lock()
        self._aborted = False
        self._cut = False

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
        self._shutdown()

    def _shutdown(self) -> None:
        with self._lock:
            conn = self._conn
            sock = conn.sock if conn is not None else None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def _watchdog_fired(self) -> None:
        self._cut = True
        self._shutdown()

    def _send(
        self, method: str, path: str, accept: str, body: Any, content_type: str
    ) -> tuple[http.client.HTTPResponse, str]:
        headers, token = self.client.headers(accept)
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
                return conn.getresponse(), token
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.close()
                # The server dropped an idle kept-alive connection: one fresh try. (Writes
                # carry a resourceVersion, so a repeat cannot apply twice.)
                if not reused or retried or self._cut:
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
        *,
        accept: str = JSON_TYPE,
        content_type: str = JSON_TYPE,
        max_bytes: int | None = None,
    ) -> dict[str, Any]:
        """One request; the decoded JSON answer, or ``ApiError``. Raises ``AnswerTooSlow``
        when the whole answer took longer than the watchdog allows, ``AnswerTooLarge`` past
        ``max_bytes``, and ``OSError`` or ``http.client.HTTPException`` when no complete
        answer came."""
        self._cut = False
        timer = threading.Timer(self.timeout * WATCHDOG_FACTOR, self._watchdog_fired)
        timer.daemon = True
        timer.start()
        try:
            response, token = self._send(method, path, accept, body, content_type)
            data = self._read(response, max_bytes)
            if self._cut:  # the socket was shut mid-answer: what was read is not all of it
                raise ConnectionAbortedError("cut by the watchdog")
        except (OSError, http.client.HTTPException) as error:
            self.close()
            if self._cut:
                raise AnswerTooSlow(
                    f"answer too slow: not complete within {self.timeout * WATCHDOG_FACTOR:.3g}s"
                ) from error
            raise
        except BaseException:
            self.close()
            raise
        finally:
            timer.cancel()
        if response.will_close:
            self.close()
        if not 200 <= response.status < 300:
            location = response.getheader("Location", "") if 300 <= response.status < 400 else ""
            raise ApiError(
                response.status,
                status_message(data.replace(token.encode(), b"<token>")),
                response.getheader("Retry-After"),
                quoted(location) if location else "",
            )
        decoded = json.loads(data)
        if not isinstance(decoded, dict):
            raise NotAnObject("the answer is not a JSON object")
        return decoded

    def _read(self, response: http.client.HTTPResponse, max_bytes: int | None) -> bytes:
        if max_bytes is None:
            return response.read()
        data = response.read(max_bytes + 1)
        if len(data) > max_bytes:
            self.close()
            raise AnswerTooLarge(f"the answer is larger than {max_bytes} bytes")
        missing = response.length  # a read of a given size ends early without complaint
        if missing:
            raise AnswerCutShort(f"answer cut short: {len(data)} of {len(data) + missing} bytes")
        return data

    def stream(self, path: str, accept: str = JSON_TYPE) -> Iterator[dict[str, Any]]:
        """A watch: one decoded event per line until the server ends the stream."""
        response, token = self._send("GET", path, accept, None, JSON_TYPE)
        try:
            if response.status != 200:
                data = response.read()
                raise ApiError(
                    response.status,
                    status_message(data.replace(token.encode(), b"<token>")),
                    response.getheader("Retry-After"),
                )
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
