"""What a node's pods and kubelet look like from the network and the apiserver, in a
private network namespace (``testbed.netns``): TCP listeners on pod IPs, Lease renewals.

A node "loses power" in both ways it happens: its listeners refuse (the host is up, the
process gone) or go silent (no answer at all, so connects time out), and its kubelet stops
renewing its Lease.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from datetime import UTC, datetime
from enum import Enum

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

NODE_LEASE_NAMESPACE = "kube-node-lease"


class Power(Enum):
    ON = "on"
    REFUSING = "refusing"
    """Connection refused: the port has no listener."""
    SILENT = "silent"
    """No answer: the listener's accept queue is full and never drained, so SYNs are
    dropped."""


class PodListener:
    """A TCP listener on ``address:port`` that accepts and closes every connection."""

    def __init__(self, address: str, port: int) -> None:
        self.address = (address, port)
        self.power = Power.REFUSING
        self._server: socket.socket | None = None
        self._fillers: list[socket.socket] = []
        self._thread: threading.Thread | None = None

    def set_power(self, power: Power) -> None:
        self._close()
        self.power = power
        if power is Power.ON:
            self._server = socket.create_server(self.address)
            self._thread = threading.Thread(target=self._serve, args=(self._server,), daemon=True)
            self._thread.start()
        elif power is Power.SILENT:
            self._server = socket.create_server(self.address, backlog=0)
            self._fill(self._server)

    def stop(self) -> None:
        self._close()
        self.power = Power.REFUSING

    def _serve(self, server: socket.socket) -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return  # closed
            conn.close()

    def _fill(self, server: socket.socket) -> None:
        """Connect until one connect gets no answer: the accept queue is then full."""
        for _ in range(16):
            filler = socket.socket()
            filler.settimeout(0.2)
            self._fillers.append(filler)
            try:
                filler.connect(server.getsockname())
            except TimeoutError:
                return
        raise RuntimeError("the accept queue of a silent listener never filled up")

    def _close(self) -> None:
        for sock in (*self._fillers, *([self._server] if self._server else [])):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        self._fillers, self._server = [], None
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None


class KubeletLease:
    """Renews ``kube-node-lease/<node>`` every ``period`` seconds, as a kubelet does."""

    def __init__(self, api: k8s.ApiClient, node: str, period: float) -> None:
        self.coordination = k8s.CoordinationV1Api(api)
        self.node = node
        self.period = period
        self.renewals = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> KubeletLease:
        self._stop.clear()
        self._renew()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """The node lost power: no more renewals."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None

    def delete(self) -> None:
        self.stop()
        with contextlib.suppress(ApiException):
            self.coordination.delete_namespaced_lease(self.node, NODE_LEASE_NAMESPACE)

    def _run(self) -> None:
        while not self._stop.wait(self.period):
            with contextlib.suppress(ApiException, OSError):
                self._renew()

    def _renew(self) -> None:
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        spec = {"holderIdentity": self.node, "leaseDurationSeconds": 40, "renewTime": now}
        try:
            self.coordination.patch_namespaced_lease(
                self.node, NODE_LEASE_NAMESPACE, {"spec": spec}
            )
        except ApiException as error:
            if error.status != 404:
                raise
            body = {"metadata": {"name": self.node}, "spec": spec}
            self.coordination.create_namespaced_lease(NODE_LEASE_NAMESPACE, body)
        self.renewals += 1
