"""An imitation of the DigitalOcean droplet metadata service, for several droplets at once.

The real service answers plain HTTP at ``http://169.254.169.254/metadata/v1/...``, each droplet
seeing only its own data. Here ONE server on a free loopback port serves every droplet, each
under its own root::

    http://127.0.0.1:<port>/droplets/<droplet id>      <- give this as METADATA_URL
        /metadata/v1/id                                 "101"
        /metadata/v1/interfaces/public/0/anchor_ipv4/address
        /metadata/v1.json                               everything, as the real one shapes it
        /metadata/v1/                                   a listing ("id", "interfaces/", ...)

so a demo with three droplets runs one server and hands each "droplet" its own URL
(:meth:`MetadataService.url`). A droplet made from a custom image has no anchor IPv4: its
``anchor_ipv4`` paths answer 404 and ``v1.json`` has no ``anchor_ipv4`` key, as on
DigitalOcean.

Faults are injected per droplet and, optionally, per path, for a number of requests or for
good: 404, 500, a delayed answer (a hang, cut short when the server stops), a body that is not
an IP, an IPv6 address, an empty body. "Connection refused" is a stopped server
(:meth:`MetadataService.stop`). Every request is logged in :attr:`MetadataService.requests`.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

ANCHOR_PATH = "interfaces/public/0/anchor_ipv4/address"
ID_PATH = "id"
_PREFIX = "/droplets/"
_V1 = "metadata/v1"


@dataclass
class Droplet:
    """What the metadata service knows about one droplet."""

    droplet_id: int
    hostname: str
    region: str
    anchor_ipv4: str | None
    public_ipv4: str
    private_ipv4: str
    reserved_ipv4: str | None = None

    @property
    def mac(self) -> str:
        raw = self.droplet_id.to_bytes(4, "big")
        return "ca:fe:" + ":".join(f"{b:02x}" for b in raw)

    def as_json(self) -> dict[str, Any]:
        """``/metadata/v1.json`` as the real service shapes it (the fields this project reads
        and their neighbours)."""
        public: dict[str, Any] = {
            "ipv4": {
                "ip_address": self.public_ipv4,
                "netmask": "255.255.240.0",
                "gateway": _gateway(self.public_ipv4),
            },
            "mac": self.mac,
            "type": "public",
        }
        if self.anchor_ipv4 is not None:
            public["anchor_ipv4"] = {
                "ip_address": self.anchor_ipv4,
                "netmask": "255.255.0.0",
                "gateway": _gateway(self.anchor_ipv4),
            }
        private = {
            "ipv4": {
                "ip_address": self.private_ipv4,
                "netmask": "255.255.240.0",
                "gateway": "0.0.0.0",
            },
            "mac": "ca:fe:00:00:00:01",
            "type": "private",
        }
        reserved: dict[str, Any] = {"ipv4": {"active": self.reserved_ipv4 is not None}}
        if self.reserved_ipv4 is not None:
            reserved["ipv4"]["ip_address"] = self.reserved_ipv4
        return {
            "droplet_id": self.droplet_id,
            "hostname": self.hostname,
            "region": self.region,
            "interfaces": {"public": [public], "private": [private]},
            "reserved_ip": reserved,
            "floating_ip": json.loads(json.dumps(reserved)),
            "dns": {"nameservers": ["67.207.67.2", "67.207.67.3"]},
            "features": {"dhcp_enabled": False},
            "tags": ["k8s", "k8s-worker"],
        }

    def as_tree(self) -> dict[str, Any]:
        """The text endpoints under ``/metadata/v1/``: a leaf is a body, a dict a listing."""
        document = self.as_json()

        def interface(entry: dict[str, Any]) -> dict[str, Any]:
            node: dict[str, Any] = {"mac": entry["mac"], "type": entry["type"]}
            for family in ("ipv4", "anchor_ipv4"):
                if family in entry:
                    values = entry[family]
                    node[family] = {
                        "address": values["ip_address"],
                        "netmask": values["netmask"],
                        "gateway": values["gateway"],
                    }
            return node

        def reserved(section: dict[str, Any]) -> dict[str, Any]:
            ipv4 = section["ipv4"]
            leaf = {"active": "true" if ipv4["active"] else "false"}
            if "ip_address" in ipv4:
                leaf["ip_address"] = ipv4["ip_address"]
            return {"ipv4": leaf}

        return {
            "id": str(self.droplet_id),
            "hostname": self.hostname,
            "region": self.region,
            "interfaces": {
                kind: {str(i): interface(e) for i, e in enumerate(document["interfaces"][kind])}
                for kind in ("public", "private")
            },
            "reserved_ip": reserved(document["reserved_ip"]),
            "floating_ip": reserved(document["floating_ip"]),
            "tags": "\n".join(document["tags"]),
        }


@dataclass(frozen=True)
class Fault:
    """A wrong answer: ``status`` and ``body``, after ``delay`` seconds."""

    status: int = 200
    body: str = ""
    delay: float = 0.0


NOT_FOUND = Fault(404, "not found")
SERVER_ERROR = Fault(500, "internal error")
NOT_AN_IP = Fault(200, "<html><body>not-an-ip</body></html>")
IPV6 = Fault(200, "2604:a880:800:10::1")
EMPTY = Fault(200, "")


def hang(seconds: float = 60.0) -> Fault:
    """An answer that comes only after ``seconds`` (or never, if the server stops first)."""
    return Fault(200, "10.17.0.99", delay=seconds)


@dataclass
class _Rule:
    droplet_id: int
    path: str | None
    fault: Fault
    remaining: int | None


@dataclass(frozen=True)
class Seen:
    """One request the service answered (or started answering)."""

    droplet_id: int | None
    path: str
    status: int


@dataclass
class MetadataService:
    """The server; start it, add droplets, hand out :meth:`url`, stop it."""

    droplets: dict[int, Droplet] = field(default_factory=dict)
    requests: list[Seen] = field(default_factory=list)
    _rules: list[_Rule] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stopping: threading.Event = field(default_factory=threading.Event)
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None
    port: int = 0

    # --- lifecycle -------------------------------------------------------------------------

    def start(self) -> MetadataService:
        server = ThreadingHTTPServer(("127.0.0.1", self.port), _handler_for(self))
        server.daemon_threads = False
        server.block_on_close = True  # stop() joins every request thread
        self.port = int(server.server_address[1])
        self._stopping.clear()
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, name="metadata-imitation", kwargs={"poll_interval": 0.05}
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving; the port then refuses connections. Idempotent."""
        self._stopping.set()  # releases hanging answers
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, droplet_id: int) -> str:
        """The droplet's metadata root: what its pods would reach at 169.254.169.254."""
        return f"{self.base_url}{_PREFIX}{droplet_id}"

    # --- droplets ----------------------------------------------------------------------------

    def add_droplet(
        self,
        droplet_id: int,
        *,
        anchor_ipv4: str | None = None,
        custom_image: bool = False,
        hostname: str | None = None,
        region: str = "nyc3",
        public_ipv4: str | None = None,
        private_ipv4: str | None = None,
    ) -> Droplet:
        """A droplet; its anchor defaults to a 10.17.x.y address derived from its id, and a
        ``custom_image`` droplet has none."""
        n = droplet_id % 62500
        droplet = Droplet(
            droplet_id=droplet_id,
            hostname=hostname or f"pool-floating-{droplet_id}",
            region=region,
            anchor_ipv4=None if custom_image else anchor_ipv4 or f"10.17.{n // 250}.{n % 250 + 5}",
            public_ipv4=public_ipv4 or f"203.0.113.{droplet_id % 200 + 10}",
            private_ipv4=private_ipv4 or f"10.116.0.{droplet_id % 200 + 10}",
        )
        with self._lock:
            self.droplets[droplet_id] = droplet
        return droplet

    def set_reserved_ip(self, droplet_id: int, address: str | None) -> None:
        """What DigitalOcean shows once a reserved IP is assigned to (or taken from) it."""
        with self._lock:
            self.droplets[droplet_id].reserved_ipv4 = address

    # --- faults and the request log ---------------------------------------------------------

    def inject(
        self,
        droplet_id: int,
        fault: Fault,
        *,
        path: str | None = ANCHOR_PATH,
        times: int | None = None,
    ) -> None:
        """Answer ``fault`` for ``path`` under ``/metadata/v1/`` (None: every path) of the
        droplet, ``times`` times or for good. The newest rule wins."""
        with self._lock:
            self._rules.insert(0, _Rule(droplet_id, path, fault, times))

    def clear_faults(self) -> None:
        with self._lock:
            self._rules.clear()

    def count(self, droplet_id: int, path: str | None = None) -> int:
        """Requests seen for the droplet (and path under ``/metadata/v1/``)."""
        with self._lock:
            return sum(
                1
                for seen in self.requests
                if seen.droplet_id == droplet_id and (path is None or seen.path == path)
            )

    # --- answering (request threads) ----------------------------------------------------------

    def answer(self, raw_path: str) -> tuple[int | None, str, Fault]:
        """(droplet id, path under /metadata/v1/, answer) for a request path."""
        droplet_id, path = _split(raw_path)
        with self._lock:
            droplet = self.droplets.get(droplet_id) if droplet_id is not None else None
            fault = self._take_fault(droplet_id, path) if droplet is not None else None
            if fault is None:
                fault = _normal_answer(droplet, path)
            self.requests.append(Seen(droplet_id, path, fault.status))
        return droplet_id, path, fault

    def wait_or_stop(self, seconds: float) -> bool:
        """Wait ``seconds``; False when the server stopped first (then send nothing)."""
        return not self._stopping.wait(seconds) if seconds > 0 else True

    def _take_fault(self, droplet_id: int | None, path: str) -> Fault | None:
        for rule in self._rules:
            if rule.droplet_id != droplet_id or rule.path not in (None, path):
                continue
            if rule.remaining == 0:
                continue
            if rule.remaining is not None:
                rule.remaining -= 1
            return rule.fault
        return None


def _split(raw_path: str) -> tuple[int | None, str]:
    """``/droplets/101/metadata/v1/id`` -> (101, "id"); the JSON document is path ".json"."""
    path = raw_path.split("?", 1)[0]
    if not path.startswith(_PREFIX):
        return None, path
    head, _, rest = path[len(_PREFIX) :].partition("/")
    if not head.isdigit():
        return None, path
    if rest == _V1 + ".json":
        return int(head), ".json"
    if rest == _V1 or rest.startswith(_V1 + "/"):
        return int(head), rest[len(_V1) :].strip("/")
    return int(head), "/" + rest


def _normal_answer(droplet: Droplet | None, path: str) -> Fault:
    if droplet is None:
        return NOT_FOUND
    if path == ".json":
        return Fault(200, json.dumps(droplet.as_json()))
    node: Any = droplet.as_tree()
    for segment in path.split("/") if path else []:
        if not isinstance(node, dict) or segment not in node:
            return NOT_FOUND
        node = node[segment]
    if isinstance(node, dict):
        return Fault(200, "\n".join(k + "/" if isinstance(v, dict) else k for k, v in node.items()))
    return Fault(200, str(node))


def _gateway(address: str) -> str:
    return ".".join([*address.split(".")[:3], "1"])


def _handler_for(service: MetadataService) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "metadata-imitation"

        def do_GET(self) -> None:
            _, path, answer = service.answer(self.path)
            if not service.wait_or_stop(answer.delay):
                return  # stopped while hanging: the client sees the connection drop
            body = answer.body.encode()
            content_type = "application/json" if path == ".json" else "text/plain; charset=utf-8"
            try:
                self.send_response(answer.status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up waiting: expected for hangs

        def log_message(self, format: str, *args: Any) -> None:
            """Requests are logged in ``service.requests``, not on stderr."""

    return Handler


@pytest.fixture
def metadata_service() -> Iterator[MetadataService]:
    """A running imitation with no droplets yet (``add_droplet``); stopped after the test."""
    service = MetadataService().start()
    try:
        yield service
    finally:
        service.stop()
