"""POSTs one CloudEvent to the function over HTTPS (keep-alive, one connection per sender),
with the shared secret and, when given a ``FunctionToken``, the function's short-lived
Kubernetes token."""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import ssl
import threading
from dataclasses import dataclass
from urllib.parse import urlsplit

from floating_ip_common import contract
from floating_ip_forwarder.forwarding.cloudevent import HttpEvent
from floating_ip_forwarder.forwarding.function_token import FunctionToken, TokenUnavailable
from floating_ip_forwarder.forwarding.relay import Relay, RelayError, TooLarge

STALE_CONNECTION = (
    http.client.RemoteDisconnected,
    ConnectionResetError,
    BrokenPipeError,
    ssl.SSLEOFError,  # the server closed it cleanly (TLS close_notify) while it was idle
    ssl.SSLZeroReturnError,
)
"""How writing to or reading from a connection the server already closed fails."""


@dataclass(frozen=True, slots=True)
class Delivery:
    status: int | None
    """``None`` when no answer came."""
    retry_after: str | None = None
    error: str | None = None


def function_context(ca_file: str | None) -> ssl.SSLContext:
    """Trust ``ca_file`` alone when given (a private CA), else the system's trust store."""
    return ssl.create_default_context(cafile=ca_file)


class Sender:
    def __init__(
        self,
        url: str,
        secret: str,
        context: ssl.SSLContext,
        timeout: float,
        *,
        token: FunctionToken | None = None,
        relay: Relay | None = None,
    ) -> None:
        parts = urlsplit(url)
        self.host = parts.hostname or ""
        self.port = parts.port or 443
        self.target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self._secret = secret
        self._token = token
        self._relay = relay
        self.context = context
        self.timeout = timeout
        self._conn: http.client.HTTPSConnection | None = None
        self._lock = threading.Lock()
        self._aborted = False

    def send(self, event: HttpEvent) -> Delivery:
        headers = {**event.headers, contract.AUTH_HEADER: self._secret}
        if self._relay is not None:
            return self._relayed(event, headers)
        if self._token is not None:
            try:
                headers[contract.KUBE_TOKEN_HEADER] = self._token.get()
            except TokenUnavailable as error:
                return Delivery(None, error=str(error))
        return self._post(headers, event.body)[0]

    def _relayed(self, event: HttpEvent, headers: dict[str, str]) -> Delivery:
        """Relay mode: the state goes with the event, the answered writes are made here, and
        the function is called again while it asks to (or a write lost a race)."""
        assert self._relay is not None

        def post(body: bytes) -> tuple[Delivery, int | None, bytes]:
            delivery, answer = self._post(headers, body)
            return delivery, delivery.status, answer

        try:
            calls = self._relay.deliver(json.loads(event.body or b"{}"), post)
        except TooLarge as error:
            return Delivery(413, error=str(error))
        except RelayError as error:
            return Delivery(None, error=str(error))
        return calls[-1].kept

    def _post(self, headers: dict[str, str], body: bytes) -> tuple[Delivery, bytes]:
        """One POST (a second on a fresh connection when a kept-alive one was stale)."""
        for attempt in range(2):
            conn = self._connection()
            if conn is None:
                return Delivery(None, error="shutting down"), b""
            try:
                conn.request("POST", self.target, body=body, headers=headers)
                response = conn.getresponse()
                answer = response.read()
            except (OSError, http.client.HTTPException) as error:
                self._drop()
                # A kept-alive connection the server closed in between fails at once: one
                # fresh connection is worth trying before calling it a failure.
                if attempt == 0 and isinstance(error, STALE_CONNECTION):
                    continue
                return Delivery(None, error=f"{type(error).__name__}: {error}"), b""
            if response.will_close:
                self._drop()
            if self._token is not None and response.status in (401, 500):
                # Refused, or failed with what it was sent: the next try gets a new token.
                self._token.forget()
            return Delivery(response.status, response.getheader("Retry-After")), answer
        return Delivery(None, error="connection closed twice"), b""

    def abort(self) -> None:
        """Break an in-flight request (shutdown) and refuse further ones."""
        if self._relay is not None:
            self._relay.connection.abort()  # a read of the state, too
        with self._lock:
            self._aborted = True
            conn = self._conn
        if conn is not None and conn.sock is not None:
            with contextlib.suppress(OSError):
                conn.sock.shutdown(socket.SHUT_RDWR)

    def _connection(self) -> http.client.HTTPSConnection | None:
        with self._lock:
            if self._aborted:
                return None
            if self._conn is None:
                self._conn = http.client.HTTPSConnection(
                    self.host, self.port, timeout=self.timeout, context=self.context
                )
            return self._conn

    def _drop(self) -> None:
        with self._lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()
