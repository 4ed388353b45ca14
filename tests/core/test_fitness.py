"""Node fitness: every reason a node may not hold an IP, one row each."""

from __future__ import annotations

from typing import Any

import pytest

from floating_ip.core.fitness import anchor_of, verdict
from floating_ip.core.model import ConditionStatus, Endpoint, Unfit
from tests.core.builders import anchor, endpoint, node, pod, svc

NOT_READY = "node.kubernetes.io/not-ready"
UNREACHABLE = "node.kubernetes.io/unreachable"
UNSCHEDULABLE = "node.kubernetes.io/unschedulable"
AUTOSCALER = "ToBeDeletedByClusterAutoscaler"


FALSE, UNKNOWN = ConditionStatus.FALSE, ConditionStatus.UNKNOWN


@pytest.mark.parametrize(
    ("attributes", "expected"),
    [
        pytest.param({}, [], id="fit"),
        pytest.param({"ready": FALSE}, [Unfit.NOT_READY], id="not-ready"),
        pytest.param({"ready": UNKNOWN}, [Unfit.NOT_READY], id="ready-unknown"),
        pytest.param({"unschedulable": True}, [Unfit.CORDONED], id="cordoned"),
        pytest.param({"deleting": True}, [Unfit.DELETING], id="deleting"),
        pytest.param({"taints": [(NOT_READY, "NoExecute")]}, [Unfit.TAINTED], id="not-ready-taint"),
        pytest.param({"taints": [(UNREACHABLE, "NoExecute")]}, [Unfit.TAINTED], id="unreachable"),
        pytest.param({"taints": [(UNSCHEDULABLE, "NoSchedule")]}, [Unfit.TAINTED], id="drained"),
        pytest.param({"taints": [(AUTOSCALER, "NoSchedule")]}, [Unfit.TAINTED], id="scale-down"),
        pytest.param({"taints": [("dedicated", "NoExecute")]}, [], id="users-taint-tolerated"),
        pytest.param({"taints": [(NOT_READY, "PreferNoSchedule")]}, [], id="soft-taint"),
        pytest.param({"with_droplet": False}, [Unfit.NO_DROPLET], id="no-droplet-id"),
        pytest.param({"region": "nyc1"}, [Unfit.WRONG_REGION], id="other-region"),
        pytest.param({"region": None}, [], id="no-region-label-means-cluster-region"),
        pytest.param({"with_anchor": False}, [Unfit.NO_ANCHOR_IP], id="no-anchor"),
        pytest.param({"anchor_text": "10.10.0"}, [Unfit.NO_ANCHOR_IP], id="garbled-anchor"),
        pytest.param(
            {"ready": FALSE, "unschedulable": True, "with_droplet": False},
            [Unfit.NOT_READY, Unfit.CORDONED, Unfit.NO_DROPLET],
            id="every-reason-reported",
        ),
    ],
)
def test_node_fitness(attributes: dict[str, Any], expected: list[Unfit]) -> None:
    service = svc("web", on=["n1"])
    the_node = node("n1", **attributes)
    assert verdict(the_node, (service,), "ams3", "ams3", {}).reasons == tuple(expected)


@pytest.mark.parametrize(
    ("endpoints", "expected"),
    [
        pytest.param([endpoint("web", "n1")], [], id="ready-here"),
        pytest.param([], [Unfit.NO_READY_ENDPOINT], id="none"),
        pytest.param([endpoint("web", "n2")], [Unfit.NO_READY_ENDPOINT], id="elsewhere"),
        pytest.param([endpoint("web", "n1", ready=False)], [Unfit.NO_READY_ENDPOINT], id="unready"),
        pytest.param(
            [endpoint("web", "n1", terminating=True)], [Unfit.NO_READY_ENDPOINT], id="terminating"
        ),
        pytest.param(
            [endpoint("web", "n1", ready=False), endpoint("web", "n1")], [], id="one-of-two-ready"
        ),
    ],
)
def test_endpoint_fitness(endpoints: list[Endpoint], expected: list[Unfit]) -> None:
    service = svc("web", endpoints=endpoints)
    assert verdict(node("n1"), (service,), "ams3", "ams3", {}).reasons == tuple(expected)


def test_shared_ip_needs_a_ready_endpoint_of_every_service() -> None:
    web = svc("web", on=["n1", "n2"])
    api = svc("api", on=["n2"])
    assert verdict(node("n1"), (web, api), "ams3", "ams3", {}).reasons == (Unfit.NO_READY_ENDPOINT,)
    assert verdict(node("n2"), (web, api), "ams3", "ams3", {}).reasons == ()


@pytest.mark.parametrize(
    ("node_anchor", "pod_anchor", "expected"),
    [
        pytest.param(True, None, anchor("n1"), id="node-annotation"),
        pytest.param(False, "10.20.0.9", "10.20.0.9", id="pod-annotation"),
        pytest.param(True, "10.20.0.9", "10.20.0.9", id="pod-read-on-the-droplet-wins"),
        pytest.param(True, "garbage", anchor("n1"), id="garbled-pod-falls-back-to-node"),
        pytest.param(False, None, None, id="unknown"),
    ],
)
def test_anchor_source(node_anchor: bool, pod_anchor: str | None, expected: str | None) -> None:
    service = svc("web", on=["n1"])
    pods = {p.ref: p for p in [pod("web", "n1", pod_anchor)]}
    assert anchor_of(node("n1", with_anchor=node_anchor), (service,), pods) == expected
