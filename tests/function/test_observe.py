"""Observe reads the current state with a fixed, small number of calls, keeps only what the
core decides from, and retries a transient read inside the deadline. Fakes of the adapters
journal every call (tests/function/fakes.py)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from floating_ip import observe
from floating_ip.config import Config
from floating_ip.errors import TransientError
from floating_ip_common import contract
from tests.function.fakes import FakeDeadline, FakeDigitalOcean, FakeKube, Journal

CLUSTER_ID = "2c9a5b3e-6f1d-4e8a-9b7c-0d1e2f3a4b5c"
JSON = dict[str, Any]


def config(*namespaces: str) -> Config:
    return Config(
        "token",
        "https://api.invalid",
        CLUSTER_ID,
        "https://kube.invalid",
        None,
        "s" * 16,
        False,
        namespaces,
    )


def service(namespace: str, name: str, address: str | None) -> JSON:
    annotations = {contract.ADDRESS: address} if address else {}
    return {
        "metadata": {"namespace": namespace, "name": name, "uid": name, "annotations": annotations},
        "spec": {"ports": [{"port": 443, "protocol": "TCP"}]},
    }


def namespaced(kind: str, namespace: str, name: str, **rest: Any) -> JSON:
    return {"metadata": {"namespace": namespace, "name": name}, **rest}


LISTED = {
    "services": [
        service("ingress", "traefik", "203.0.113.10"),
        service("ingress", "plain", None),
        service("apps", "web", None),
    ],
    "endpointslices": [
        {
            "metadata": {
                "namespace": "ingress",
                "name": "traefik-x",
                "labels": {contract.SERVICE_NAME_LABEL: "traefik"},
            },
            "endpoints": [{"nodeName": "node-a", "conditions": {"ready": True}}],
        },
        {
            "metadata": {
                "namespace": "apps",
                "name": "web-x",
                "labels": {contract.SERVICE_NAME_LABEL: "web"},
            }
        },
    ],
    "pods": [namespaced("pod", "ingress", "traefik-1"), namespaced("pod", "apps", "web-1")],
    "nodes": [{"metadata": {"name": "node-a"}, "spec": {"providerID": "digitalocean://101"}}],
}
FIREWALLS = [
    {"id": "fw-other", "name": "someone-elses"},
    {"id": "fw-ours", "name": contract.FIREWALL_NAME_PREFIX + CLUSTER_ID},
]
RESERVED = [{"ip": "203.0.113.10", "region": {"slug": "nyc3"}, "droplet": {"id": 101}}]


@pytest.fixture(autouse=True)
def no_remembered_regions(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(observe, "_regions", {})


def adapters(journal: Journal) -> tuple[FakeKube, FakeDigitalOcean]:
    return FakeKube(journal, LISTED), FakeDigitalOcean(
        journal, reserved_ips=RESERVED, firewalls=FIREWALLS
    )


def test_only_annotated_services_and_their_namespaces_are_read() -> None:
    journal = Journal()
    kube, do = adapters(journal)
    seen = observe.observe(config(), kube, do, FakeDeadline())
    assert [str(s.ref) for s in seen.services] == ["ingress/traefik"]
    assert [e.node_name for e in seen.services[0].endpoints] == ["node-a"]
    assert [p.name for p in seen.pods] == ["traefik-1"]  # not the apps namespace's
    assert [n.droplet_id for n in seen.nodes] == [101]
    assert seen.cluster.region == "nyc3"
    assert seen.firewall is not None and seen.firewall.id == "fw-ours"
    assert [r.droplet_id for r in seen.reserved_ips] == [101]
    # Two lanes, each in its order: the Services and what they lead to, and beside them
    # what does not depend on them.
    services_lane = [
        ("list services", "*"),
        ("list endpointslices", "ingress"),
        ("list pods", "ingress"),
    ]
    beside = [
        ("list nodes", "*"),
        ("get configmap", f"{contract.SUSPICIONS_NAMESPACE}/{contract.SUSPICIONS_CONFIGMAP}"),
        ("list reserved IPs",),
        ("get cluster", CLUSTER_ID),
        ("list firewalls",),
    ]
    assert [c for c in journal.calls if c in services_lane] == services_lane
    assert [c for c in journal.calls if c not in services_lane] == beside


def test_digitalocean_is_read_while_the_services_are() -> None:
    """The Services' list waits until DigitalOcean's reserved IPs have been asked for: read
    one after the other, it would wait in vain."""
    asked = threading.Event()

    class SlowServices(FakeKube):
        def list_services(
            self, namespace: str | None, keep: Callable[[JSON], bool] | None = None
        ) -> list[JSON]:
            assert asked.wait(10), "the reserved IPs were not read beside the Services"
            return super().list_services(namespace, keep)

    class Signalling(FakeDigitalOcean):
        def reserved_ips(self) -> list[JSON]:
            asked.set()
            return super().reserved_ips()

    journal = Journal()
    kube = SlowServices(journal, LISTED)
    do = Signalling(journal, reserved_ips=RESERVED, firewalls=FIREWALLS)
    seen = observe.observe(config(), kube, do, FakeDeadline())
    assert [str(s.ref) for s in seen.services] == ["ingress/traefik"]


def test_the_forwarders_suspicions_mark_their_nodes_on_every_run() -> None:
    journal = Journal()
    kube, do = adapters(journal)
    key = f"{contract.SUSPICIONS_NAMESPACE}/{contract.SUSPICIONS_CONFIGMAP}"
    kube.config_maps[key] = {
        "node-a": '{"probe": "lease", "since": "2026-01-31T12:00:00Z", "detail": "x"}'
    }
    seen = observe.observe(config(), kube, do, FakeDeadline())
    [node] = seen.nodes
    assert node.suspicion is not None and node.suspicion.probe == "lease"


def test_the_region_is_read_once_per_warm_instance() -> None:
    journal = Journal()
    kube, do = adapters(journal)
    observe.observe(config(), kube, do, FakeDeadline())
    observe.observe(config(), kube, do, FakeDeadline())
    assert journal.operations().count("get cluster") == 1
    assert journal.operations().count("list services") == 2


def test_namespaces_limit_the_services_read() -> None:
    journal = Journal()
    kube, do = adapters(journal)
    seen = observe.observe(config("apps", "ingress"), kube, do, FakeDeadline())
    assert [c for c in journal.calls if c[0] == "list services"] == [
        ("list services", "apps"),
        ("list services", "ingress"),
    ]
    assert [str(s.ref) for s in seen.services] == ["ingress/traefik"]


def test_without_managed_services_nothing_namespaced_is_read() -> None:
    journal = Journal()
    kube = FakeKube(journal, {"services": [service("apps", "web", None)]})
    do = FakeDigitalOcean(journal)
    seen = observe.observe(config(), kube, do, FakeDeadline())
    assert seen.services == () and seen.firewall is None
    assert "list endpointslices" not in journal.operations()
    assert "list pods" not in journal.operations()


def test_a_transient_read_is_retried_inside_the_deadline() -> None:
    journal = Journal()
    journal.fail("list nodes", TransientError("kubernetes list nodes: 503", retry_after=1.0))
    kube, do = adapters(journal)
    deadline = FakeDeadline()
    seen = observe.observe(config(), kube, do, deadline)
    assert journal.operations().count("list nodes") == 2
    assert [s for s, _ in deadline.slept] == [1.0]  # the server's Retry-After, honoured
    assert len(seen.nodes) == 1


def test_a_read_failing_until_the_deadline_propagates() -> None:
    journal = Journal()
    journal.fail("list reserved IPs", *[TransientError("digitalocean: 503")] * 1000)
    kube, do = adapters(journal)
    with pytest.raises(TransientError):
        observe.observe(config(), kube, do, FakeDeadline(3.0))
