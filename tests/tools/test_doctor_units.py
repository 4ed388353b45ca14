"""The doctor's forwarder check on canned kubectl answers: what a bed without a kubelet cannot
show (the leader's metrics come through the API server's pod proxy)."""

from __future__ import annotations

import json
import subprocess
from typing import Any

from tools import doctor

NOW = 1_800_000_000.0
RENEWED = "2027-01-15T08:00:00.000000Z"  # 1_800_000_000 is 2027-01-15T08:00:00Z


class CannedKubectl(doctor.Kubectl):
    """kubectl answering ``get lease`` and ``get --raw`` from fixed texts."""

    def __init__(self, lease: dict[str, Any] | None, metrics: str | None) -> None:
        super().__init__("kubectl")
        self.lease, self.metrics = lease, metrics

    def run(self, *args: str, input_text: str | None = None) -> subprocess.CompletedProcess[str]:
        if args[:2] == ("get", "--raw"):
            if self.metrics is None:
                return subprocess.CompletedProcess(args, 1, "", "Error from server (NotFound)")
            return subprocess.CompletedProcess(args, 0, self.metrics, "")
        if self.lease is None:
            return subprocess.CompletedProcess(args, 1, "", 'leases "event-forwarder" not found')
        return subprocess.CompletedProcess(args, 0, json.dumps(self.lease), "")


def lease(holder: str = "event-forwarder-abc", renewed: str = RENEWED) -> dict[str, Any]:
    spec = {"holderIdentity": holder, "renewTime": renewed, "leaseDurationSeconds": 15}
    return {"spec": spec}


def check(kube: doctor.Kubectl) -> dict[str, doctor.Result]:
    results = doctor.check_forwarder(kube, doctor.Setup("floating-ip"), now=lambda: NOW + 3)
    return {r.name: r for r in results}


def test_a_fresh_leader_with_a_recent_send_passes() -> None:
    metrics = "# TYPE x gauge\nfloating_ip_forwarder_last_success_timestamp_seconds 1799999990\n"
    results = check(CannedKubectl(lease(), metrics))
    assert results["forwarder leader"].ok
    assert results["forwarder leader"].detail == "event-forwarder-abc, renewed 3s ago"
    assert results["forwarder last send"].ok
    assert results["forwarder last send"].detail == "13s ago"


def test_a_leader_that_never_sent_fails_naming_the_logs() -> None:
    metrics = "floating_ip_forwarder_last_success_timestamp_seconds 0\n"
    results = check(CannedKubectl(lease(), metrics))
    assert not results["forwarder last send"].ok
    assert results["forwarder last send"].detail == "no event accepted yet"
    assert (
        "kubectl -n floating-ip logs deploy/event-forwarder" in results["forwarder last send"].fix
    )


def test_a_stale_or_empty_lease_fails() -> None:
    stale = check(CannedKubectl(lease(renewed="2027-01-15T07:59:00Z"), None))
    assert not stale["forwarder leader"].ok
    assert "renewed 63s ago" in stale["forwarder leader"].detail
    assert "forwarder last send" not in stale

    released = check(CannedKubectl(lease(holder=""), None))
    assert not released["forwarder leader"].ok
    assert "held by nobody" in released["forwarder leader"].detail


def test_unreadable_metrics_fail_the_last_send_only() -> None:
    results = check(CannedKubectl(lease(), None))
    assert results["forwarder leader"].ok
    assert not results["forwarder last send"].ok
    assert "NotFound" in results["forwarder last send"].detail
