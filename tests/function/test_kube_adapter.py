"""The Kubernetes adapter over a loopback HTTP server that answers like a kube-apiserver: the
paths, pages, headers and bodies it sends, and how it sorts failures."""

from __future__ import annotations

import gzip
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from floating_ip.adapters import kubernetes
from floating_ip.adapters.kubernetes import Kubernetes
from floating_ip.errors import ConflictError, PermanentError, TransientError

Reply = tuple[int, dict[str, Any], dict[str, str]]


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any


@dataclass
class FakeApiserver:
    answer: Callable[[Seen], Reply]
    url: str = ""
    seen: list[Seen] = field(default_factory=list)
    gzip_over: int | None = None
    """Like the kube-apiserver: a body over this many bytes is gzipped when the client asks."""
    sent: list[int] = field(default_factory=list)
    """Body bytes put on the connection, per response."""


@pytest.fixture
def apiserver() -> Iterator[FakeApiserver]:
    fake = FakeApiserver(lambda seen: (200, {"items": []}, {}))

    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            url = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            seen = Seen(
                self.command,
                url.path,
                {k: v[0] for k, v in parse_qs(url.query).items()},
                {k.lower(): v for k, v in self.headers.items()},
                json.loads(raw) if raw else None,
            )
            fake.seen.append(seen)
            status, body, headers = fake.answer(seen)
            data = json.dumps(body).encode()
            compress = fake.gzip_over is not None and len(data) > fake.gzip_over
            if compress and "gzip" in seen.headers.get("accept-encoding", ""):
                data = gzip.compress(data)
                headers = {**headers, "Content-Encoding": "gzip"}
            fake.sent.append(len(data))
            self.send_response(status)
            for key, value in {"Content-Type": "application/json", **headers}.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PATCH = _serve

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def client(apiserver: FakeApiserver) -> Kubernetes:
    return Kubernetes(apiserver.url, "secret-token", None)


def paged(objects: list[dict[str, Any]], size: int) -> Callable[[Seen], Reply]:
    def answer(seen: Seen) -> Reply:
        start = int(seen.query.get("continue") or 0)
        limit = int(seen.query["limit"])
        assert limit == size
        end = start + limit
        meta = {"continue": str(end)} if end < len(objects) else {}
        return 200, {"items": objects[start:end], "metadata": meta}, {}

    return answer


def test_lists_are_read_in_pages_and_filtered_page_by_page(
    apiserver: FakeApiserver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(kubernetes, "PAGE_SIZE", 3)
    services = [{"metadata": {"name": f"s{i}", "keep": i % 4 == 0}} for i in range(10)]
    apiserver.answer = paged(services, 3)
    kube = client(apiserver)
    kept = kube.list_services(None, lambda s: bool(s["metadata"]["keep"]))
    assert [s["metadata"]["name"] for s in kept] == ["s0", "s4", "s8"]
    assert [(s.path, s.query.get("continue")) for s in apiserver.seen] == [
        ("/api/v1/services", None),
        ("/api/v1/services", "3"),
        ("/api/v1/services", "6"),
        ("/api/v1/services", "9"),
    ]
    assert apiserver.seen[0].headers["authorization"] == "Bearer secret-token"
    assert kube.bytes_read > 0


def test_big_answers_come_gzipped_and_are_counted_as_sent_and_as_decoded(
    apiserver: FakeApiserver,
) -> None:
    apiserver.gzip_over = 1000
    nodes = [
        {"metadata": {"name": f"node-{i}"}, "status": {"images": ["x" * 100]}} for i in range(50)
    ]
    small = {"kind": "ConfigMap", "data": {"a": "b"}}
    apiserver.answer = lambda seen: (
        (200, {"items": nodes, "metadata": {}}, {}) if "nodes" in seen.path else (200, small, {})
    )
    kube = client(apiserver)
    assert kube.list_nodes() == nodes
    assert apiserver.seen[0].headers["accept-encoding"] == "gzip"
    big_sent = apiserver.sent[0]
    big_body = len(json.dumps({"items": nodes, "metadata": {}}))
    assert big_sent < big_body / 5, "compressed on the way"
    assert (kube.bytes_read, kube.bytes_decoded) == (big_sent, big_body)
    # Under the threshold the body comes as it is: both counts grow alike.
    assert kube.read_config_map_data("kube-system", "small") == {"a": "b"}
    assert kube.bytes_read == big_sent + len(json.dumps(small))
    assert kube.bytes_decoded == big_body + len(json.dumps(small))


def test_an_expired_continue_token_starts_the_list_over(
    apiserver: FakeApiserver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(kubernetes, "PAGE_SIZE", 2)
    pods = [{"metadata": {"name": f"p{i}"}} for i in range(3)]
    pages = paged(pods, 2)
    expired: list[Seen] = []

    def answer(seen: Seen) -> Reply:
        if seen.query.get("continue") and not expired:
            expired.append(seen)
            return 410, {"kind": "Status", "message": "too old resource version"}, {}
        return pages(seen)

    apiserver.answer = answer
    listed = client(apiserver).list_pods("ingress")
    assert [p["metadata"]["name"] for p in listed] == ["p0", "p1", "p2"]
    assert {s.path for s in apiserver.seen} == {"/api/v1/namespaces/ingress/pods"}
    assert len(apiserver.seen) == 4


def test_endpoint_slices_of_named_services_only(apiserver: FakeApiserver) -> None:
    kube = client(apiserver)
    kube.list_endpoint_slices("ingress", ["web", "api"])
    kube.list_endpoint_slices(None)
    first, second = apiserver.seen
    assert first.path == "/apis/discovery.k8s.io/v1/namespaces/ingress/endpointslices"
    assert first.query["labelSelector"] == "kubernetes.io/service-name in (api,web)"
    assert second.path == "/apis/discovery.k8s.io/v1/endpointslices"
    assert second.query["labelSelector"] == "kubernetes.io/service-name"


def test_writes_send_a_merge_patch_and_an_event(apiserver: FakeApiserver) -> None:
    apiserver.answer = lambda seen: (200, {"kind": "Service"}, {})
    kube = client(apiserver)
    patch = {"metadata": {"resourceVersion": "7", "annotations": {"a": "b"}}}
    assert kube.patch_service("ingress", "web", patch) == {"kind": "Service"}
    kube.create_event("ingress", {"reason": "IPAssigned"})
    patched, created = apiserver.seen
    assert (patched.method, patched.path) == ("PATCH", "/api/v1/namespaces/ingress/services/web")
    assert patched.headers["content-type"] == "application/merge-patch+json"
    assert patched.query == {"fieldManager": "floating-ip"}
    assert patched.body == patch
    assert (created.method, created.path) == ("POST", "/api/v1/namespaces/ingress/events")
    assert created.body == {"reason": "IPAssigned"}


@pytest.mark.parametrize(
    ("status", "headers", "kind", "retry_after", "text"),
    [
        (409, {}, ConflictError, None, "409 the object has been modified"),
        (429, {"Retry-After": "3"}, TransientError, 3.0, "429"),
        (503, {}, TransientError, None, "503"),
        (403, {}, PermanentError, None, "check the function's RBAC"),
        (404, {}, PermanentError, None, "404 the object has been modified"),
    ],
)
def test_failures_are_sorted_by_what_the_caller_should_do(
    apiserver: FakeApiserver,
    status: int,
    headers: dict[str, str],
    kind: type[Exception],
    retry_after: float | None,
    text: str,
) -> None:
    message = {"kind": "Status", "message": "the object has been modified"}
    apiserver.answer = lambda seen: (status, message, headers)
    with pytest.raises(kind) as raised:
        client(apiserver).patch_service("ingress", "web", {})
    assert text in str(raised.value)
    assert "PATCH /api/v1/namespaces/ingress/services/web" in str(raised.value)
    if isinstance(raised.value, TransientError):
        assert raised.value.retry_after == retry_after
    assert type(raised.value) is kind


def test_an_unreachable_apiserver_is_transient() -> None:
    kube = Kubernetes("http://127.0.0.1:9", "t", None)
    with pytest.raises(TransientError) as raised:
        kube.list_nodes()
    assert "GET /api/v1/nodes" in str(raised.value)
