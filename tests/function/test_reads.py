"""What the function reads on the real control plane: no more than the decision needs. Pods
and EndpointSlices only where annotated Services are, lists in pages. The calls are recorded
at the adapter's transport (the one place every Kubernetes request passes)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from floating_ip.adapters import kubernetes
from floating_ip.adapters.kubernetes import Kubernetes
from floating_ip_common import contract
from testbed.controlplane import ControlPlane
from testbed.doks import DoksWorld, function_token
from testbed.function_harness import FunctionRunner, serve_traefik
from testbed.kube import KubeBed, Port

IP = "192.0.2.10"


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, str, dict[str, str]]]]:
    calls: list[tuple[str, str, dict[str, str]]] = []
    send = Kubernetes._send

    def recording(self: Kubernetes, method: str, path: str, query: dict[str, str], *a: Any) -> Any:
        calls.append((method, path, dict(query)))
        return send(self, method, path, query, *a)

    monkeypatch.setattr(Kubernetes, "_send", recording)
    yield calls


def test_pods_and_slices_are_read_only_where_annotated_services_are(
    runner: FunctionRunner,
    world: DoksWorld,
    kube: KubeBed,
    namespace: str,
    recorded: list[tuple[str, str, dict[str, str]]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    serve_traefik(world, namespace, IP, "a")
    # Unannotated neighbours in the same namespace, and a busy namespace of no interest.
    for n in range(4):
        kube.create_service(namespace, f"plain-{n}", [Port(80)])
    unrelated = kube.create_namespace("unrelated")
    for n in range(5):
        kube.create_service(unrelated, f"app-{n}", [Port(80)])
        kube.create_pod(unrelated, f"app-{n}-1", world.node("b"), {"app": f"app-{n}"})
    monkeypatch.setattr(kubernetes, "PAGE_SIZE", 2)  # pages, against the real apiserver

    report = runner.ok(env={**runner.env, "NAMESPACES": f"{namespace},{unrelated}"})

    assert world.holder_of(IP) == "a", "the decision had all it needed"
    assert report["observed"]["services"] == 1
    paths = [(method, path) for method, path, _ in recorded]
    assert ("GET", f"/api/v1/namespaces/{unrelated}/pods") not in paths
    assert not any("endpointslices" in p and unrelated in p for _, p in paths)
    assert ("GET", f"/api/v1/namespaces/{namespace}/pods") in paths
    slices = [q for _, p, q in recorded if p.endswith(f"{namespace}/endpointslices")]
    assert slices and all(
        q["labelSelector"] == f"{contract.SERVICE_NAME_LABEL} in (traefik)" for q in slices
    )
    # Services of both namespaces were read in pages of 2: 5 in ours, 5 in the other one.
    for ns in (namespace, unrelated):
        pages = [q for _, p, q in recorded if p == f"/api/v1/namespaces/{ns}/services"]
        assert len(pages) >= 3 and all(q["limit"] == "2" for q in pages), pages
        assert "continue" not in pages[0] and all("continue" in q for q in pages[1:3])
    assert report["observed"]["kubernetes_bytes_read"] > 0


def test_a_big_list_comes_gzipped_and_is_counted_as_sent(
    control_plane: ControlPlane, kube: KubeBed, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Four Services with 60 kB of annotations each: one page of them is over the 128 KiB
    # above which the kube-apiserver compresses; the namespace's (empty) Pod list is not.
    notes = {
        f"example.com/note-{n}": f"release {n} of app, build {n * 7}; " * 270 for n in range(8)
    }
    for n in range(4):
        kube.create_service(namespace, f"big-{n}", [Port(80)], annotations=notes)
    encodings: list[str | None] = []
    send = Kubernetes._send

    def recording(self: Kubernetes, *a: Any) -> Any:
        status, data, headers, reason = send(self, *a)
        encodings.append(headers.get("Content-Encoding"))
        return status, data, headers, reason

    monkeypatch.setattr(Kubernetes, "_send", recording)
    function = Kubernetes(
        control_plane.url, function_token(control_plane, kube), control_plane.ca.ca_pem
    )
    listed = {"verb": "LIST", "resource": "services", "scope": "namespace"}
    try:
        before = control_plane.response_bytes(**listed)
        services = function.list_services(namespace)
        sent = control_plane.response_bytes(**listed) - before
        read, decoded = function.bytes_read, function.bytes_decoded
        assert function.list_pods(namespace) == []
    finally:
        function.close()

    assert sorted(s["metadata"]["name"] for s in services) == [f"big-{n}" for n in range(4)]
    assert all(s["metadata"]["annotations"] == notes for s in services), "decoded whole"
    assert encodings == ["gzip", None]
    assert decoded > 128 * 1024 > read
    assert read == sent, "what the apiserver put on the connection"
    # The small list is counted alike both ways.
    assert function.bytes_decoded - decoded == function.bytes_read - read > 0
