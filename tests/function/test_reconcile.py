"""One reconcile, observe → plan → apply, on fakes of both adapters: a first placement makes
its writes in order, a lost race (409) observes again, and dry run writes nothing."""

from __future__ import annotations

from typing import Any

import pytest

from floating_ip import observe, reconcile
from floating_ip.config import Config
from floating_ip.errors import ConflictError
from floating_ip.trigger import Trigger
from floating_ip_common import contract
from tests.function.fakes import FakeDeadline, FakeDigitalOcean, FakeKube, Journal

CLUSTER_ID = "2c9a5b3e-6f1d-4e8a-9b7c-0d1e2f3a4b5c"
IP = "203.0.113.10"
CONFIG = Config(
    "token",
    "https://api.invalid",
    CLUSTER_ID,
    "https://kube.invalid",
    None,
    "s" * 16,
    False,
    (),
)
RESYNC = Trigger(contract.EVENT_RESYNC, "1", contract.EVENT_SOURCE)
LISTED: dict[str, list[dict[str, Any]]] = {
    "services": [
        {
            "metadata": {
                "namespace": "ingress",
                "name": "traefik",
                "uid": "u1",
                "resourceVersion": "5",
                "annotations": {contract.ADDRESS: IP},
            },
            "spec": {
                "type": "NodePort",
                "externalTrafficPolicy": "Local",
                "ports": [{"port": 443, "protocol": "TCP"}],
            },
        }
    ],
    "endpointslices": [
        {
            "metadata": {
                "namespace": "ingress",
                "name": "traefik-x",
                "labels": {contract.SERVICE_NAME_LABEL: "traefik"},
            },
            "endpoints": [{"nodeName": "node-a", "conditions": {"ready": True}}],
        }
    ],
    "pods": [],
    "nodes": [
        {
            "metadata": {
                "name": "node-a",
                "labels": {contract.REGION_LABEL: "nyc3"},
                "annotations": {contract.ANCHOR_IPV4: "10.20.0.5"},
            },
            "spec": {"providerID": "digitalocean://101"},
            "status": {"conditions": [{"type": "Ready", "status": "True"}]},
        }
    ],
}


@pytest.fixture
def journal(monkeypatch: pytest.MonkeyPatch) -> Journal:
    """The reconcile's adapters are fakes writing into this journal."""
    journal = Journal()
    reserved = [{"ip": IP, "region": {"slug": "nyc3"}, "droplet": None}]
    monkeypatch.setattr(observe, "_regions", {})
    monkeypatch.setattr(reconcile, "Kubernetes", lambda *_: FakeKube(journal, LISTED))
    monkeypatch.setattr(
        reconcile, "DigitalOcean", lambda *_: FakeDigitalOcean(journal, reserved_ips=reserved)
    )
    return journal


def writes(journal: Journal) -> list[str]:
    return [c[0] for c in journal.calls if not c[0].startswith(("list", "get", "action"))]


def test_a_first_placement_writes_in_make_before_break_order(journal: Journal) -> None:
    result = reconcile.reconcile(CONFIG, RESYNC, FakeDeadline(), "kube-token")
    assert writes(journal) == [
        "patch",  # the cleanup finalizer, before any cloud write
        "create firewall",
        "patch",
        "assign",
        "patch",
        "event",
        "event",
    ]
    assert ("assign", IP, "101") in journal.calls
    assert (result.pending, result.failed) == (False, False)
    assert result.report["attempts"] == 1
    assert result.report["observed"]["kubernetes_bytes_read"] > 0
    [service] = result.report["services"]
    assert (service["holder_node"], service["anchor_ip"]) == ("node-a", "10.20.0.5")


def test_a_lost_race_observes_again_and_plans_afresh(journal: Journal) -> None:
    journal.fail("patch", ConflictError("kubernetes patch: 409"))
    result = reconcile.reconcile(CONFIG, RESYNC, FakeDeadline(), "kube-token")
    assert journal.operations().count("list services") == 2
    assert result.report["attempts"] == 2
    assert "assign" in writes(journal)


def test_a_race_lost_every_time_gives_up_after_three_attempts(journal: Journal) -> None:
    journal.fail("patch", *[ConflictError("kubernetes patch: 409")] * 3)
    with pytest.raises(ConflictError, match="kubernetes patch: 409"):
        reconcile.reconcile(CONFIG, RESYNC, FakeDeadline(), "kube-token")
    assert journal.operations().count("list services") == reconcile.MAX_ATTEMPTS == 3
    assert "assign" not in writes(journal)


def test_a_dry_run_trigger_plans_and_reports_but_writes_nothing(journal: Journal) -> None:
    dry = Trigger(contract.EVENT_RESYNC, "2", contract.EVENT_SOURCE, dry_run=True)
    result = reconcile.reconcile(CONFIG, dry, FakeDeadline(), "kube-token")
    assert writes(journal) == []
    assert [c["kind"] for c in result.report["changes"]] == [
        "service",
        "firewall",
        "service",
        "reserved_ip",
        "service",
        "event",
        "event",
    ]
    assert all(c["dry_run"] for c in result.report["changes"])
