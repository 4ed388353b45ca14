"""A projection changes exactly when a placement input changes: that is how the forwarder
tells a real change from a heartbeat or from the function's own writes."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from floating_ip_common import contract
from floating_ip_forwarder.forwarding import projections

Obj = dict[str, Any]


def node_obj() -> Obj:
    return {
        "metadata": {
            "name": "pool-a-1",
            "labels": {contract.REGION_LABEL: "nyc3", "kubernetes.io/hostname": "pool-a-1"},
            "annotations": {contract.ANCHOR_IPV4: "10.20.0.5", "other": "x"},
            "resourceVersion": "10",
        },
        "spec": {"providerID": "digitalocean://101", "taints": []},
        "status": {
            "conditions": [
                {"type": "MemoryPressure", "status": "False", "lastHeartbeatTime": "t0"},
                {"type": "Ready", "status": "True", "lastHeartbeatTime": "t0"},
            ],
            "images": [{"names": ["traefik:v3"], "sizeBytes": 1}],
        },
    }


def service_obj() -> Obj:
    return {
        "metadata": {
            "name": "web",
            "namespace": "apps",
            "annotations": {
                contract.ADDRESS: "203.0.113.10",
                contract.FIREWALL: "true",
                contract.HOLDER_NODE: "pool-a-1",
                contract.STATUS: "assigned",
            },
            "resourceVersion": "5",
        },
        "spec": {
            "clusterIP": "10.96.0.10",
            "ports": [{"port": 443, "protocol": "UDP"}, {"port": 80, "protocol": "TCP"}],
            "externalTrafficPolicy": "Local",
        },
    }


def slice_obj() -> Obj:
    return {
        "metadata": {
            "name": "web-abc",
            "namespace": "apps",
            "labels": {contract.SERVICE_NAME_LABEL: "web"},
        },
        "endpoints": [
            {
                "addresses": ["10.244.0.2"],
                "conditions": {"ready": True, "serving": True, "terminating": False},
                "nodeName": "pool-a-1",
                "targetRef": {"kind": "Pod", "name": "web-1", "namespace": "apps"},
            },
            {
                "addresses": ["10.244.0.3"],
                "conditions": {"ready": False, "serving": False, "terminating": False},
                "nodeName": "pool-a-2",
                "targetRef": {"kind": "Pod", "name": "web-2", "namespace": "apps"},
            },
        ],
    }


def ready_condition(obj: Obj) -> Obj:
    return next(c for c in obj["status"]["conditions"] if c["type"] == "Ready")


def mutate(obj: Obj, change: Callable[[Obj], object]) -> Obj:
    changed = copy.deepcopy(obj)
    change(changed)
    return changed


NODE_CHANGES: list[tuple[str, Callable[[Obj], object], bool]] = [
    ("heartbeat", lambda o: ready_condition(o).update(lastHeartbeatTime="t1"), False),
    ("other condition", lambda o: o["status"]["conditions"][0].update(status="True"), False),
    ("image list", lambda o: o["status"]["images"].append({"names": ["x"]}), False),
    (
        "any label: a node selector may name it",
        lambda o: o["metadata"]["labels"].update(team="a"),
        True,
    ),
    ("unread annotation", lambda o: o["metadata"]["annotations"].update(other="y"), False),
    ("resourceVersion", lambda o: o["metadata"].update(resourceVersion="11"), False),
    ("uid: not a placement input", lambda o: o["metadata"].update(uid="u-2"), False),
    ("not ready", lambda o: ready_condition(o).update(status="False"), True),
    (
        "kubelet upgraded",
        lambda o: o["status"].update(nodeInfo={"kubeletVersion": "v1.32.0"}),
        True,
    ),
    ("unknown", lambda o: ready_condition(o).update(status="Unknown"), True),
    ("cordon", lambda o: o["spec"].update(unschedulable=True), True),
    ("taint", lambda o: o["spec"]["taints"].append({"key": "k", "effect": "NoSchedule"}), True),
    ("deleting", lambda o: o["metadata"].update(deletionTimestamp="2025-01-01T00:00:00Z"), True),
    ("provider id", lambda o: o["spec"].update(providerID="digitalocean://102"), True),
    ("region", lambda o: o["metadata"]["labels"].update({contract.REGION_LABEL: "ams3"}), True),
    (
        "anchor",
        lambda o: o["metadata"]["annotations"].update({contract.ANCHOR_IPV4: "10.0.0.9"}),
        True,
    ),
    ("anchor gone", lambda o: o["metadata"]["annotations"].pop(contract.ANCHOR_IPV4), True),
]


@pytest.mark.parametrize(
    ("what", "change", "matters"), NODE_CHANGES, ids=[c[0] for c in NODE_CHANGES]
)
def test_node_changes(what: str, change: Callable[[Obj], object], matters: bool) -> None:
    before = projections.node(node_obj())
    after = projections.node(mutate(node_obj(), change))
    assert (before != after) is matters


SERVICE_CHANGES: list[tuple[str, Callable[[Obj], object], bool]] = [
    (
        "status annotation",
        lambda o: o["metadata"]["annotations"].update({contract.STATUS: "x"}),
        False,
    ),
    (
        "all status annotations",
        lambda o: o["metadata"]["annotations"].update(
            dict.fromkeys(contract.STATUS_ANNOTATIONS, "changed")
        ),
        False,
    ),
    ("externalIPs", lambda o: o["spec"].update(externalIPs=["10.20.0.5"]), False),
    (
        "load balancer status (our own write)",
        lambda o: o.update(
            status={"loadBalancer": {"ingress": [{"ip": "203.0.113.10", "ipMode": "VIP"}]}}
        ),
        False,
    ),
    (
        "external-dns target (our own write)",
        lambda o: o["metadata"]["annotations"].update(
            {contract.EXTERNAL_DNS_TARGET: "203.0.113.10"}
        ),
        False,
    ),
    ("node ports allocated", lambda o: o["spec"]["ports"][0].update(nodePort=31080), False),
    ("clusterIP", lambda o: o["spec"].update(clusterIP="10.96.0.11"), False),
    ("unread annotation", lambda o: o["metadata"]["annotations"].update(team="a"), False),
    ("port order", lambda o: o["spec"]["ports"].reverse(), False),
    (
        "address",
        lambda o: o["metadata"]["annotations"].update({contract.ADDRESS: "203.0.113.11"}),
        True,
    ),
    ("firewall", lambda o: o["metadata"]["annotations"].update({contract.FIREWALL: "false"}), True),
    (
        "firewall sources",
        lambda o: o["metadata"]["annotations"].update({contract.FIREWALL_SOURCES: "1.2.3.0/24"}),
        True,
    ),
    (
        "deleted (the finalizer holds it)",
        lambda o: o["metadata"].update(deletionTimestamp="2026-01-01T00:00:00Z"),
        True,
    ),
    (
        "node selector",
        lambda o: o["metadata"]["annotations"].update({contract.NODE_SELECTOR: "pool=ingress"}),
        True,
    ),
    ("port added", lambda o: o["spec"]["ports"].append({"port": 8443, "protocol": "TCP"}), True),
    ("protocol", lambda o: o["spec"]["ports"][0].update(protocol="TCP"), True),
    ("traffic policy", lambda o: o["spec"].update(externalTrafficPolicy="Cluster"), True),
    ("opt out", lambda o: o["metadata"]["annotations"].pop(contract.ADDRESS), True),
    ("type", lambda o: o["spec"].update(type="LoadBalancer"), True),
    (
        "load balancer class",
        lambda o: o["spec"].update(loadBalancerClass=contract.LOAD_BALANCER_CLASS),
        True,
    ),
    ("source ranges", lambda o: o["spec"].update(loadBalancerSourceRanges=["1.2.3.0/24"]), True),
]


@pytest.mark.parametrize(
    ("what", "change", "matters"), SERVICE_CHANGES, ids=[c[0] for c in SERVICE_CHANGES]
)
def test_service_changes(what: str, change: Callable[[Obj], object], matters: bool) -> None:
    before = projections.service(service_obj())
    after = projections.service(mutate(service_obj(), change))
    assert (before.inputs != after.inputs) is matters


def test_a_defaulted_traffic_policy_is_no_change() -> None:
    # The apiserver writes "Cluster" when the function first sets externalIPs.
    bare = mutate(service_obj(), lambda o: o["spec"].pop("externalTrafficPolicy"))
    defaulted = mutate(bare, lambda o: o["spec"].update(externalTrafficPolicy="Cluster"))
    assert projections.service(bare).inputs == projections.service(defaulted).inputs


def test_service_without_address_has_no_inputs_and_holder_is_kept_apart() -> None:
    obj = mutate(service_obj(), lambda o: o["metadata"]["annotations"].pop(contract.ADDRESS))
    assert projections.service(obj).inputs is None
    moved = mutate(
        service_obj(), lambda o: o["metadata"]["annotations"].update({contract.HOLDER_NODE: "b"})
    )
    assert projections.service(moved).holder == "b"
    assert projections.service(moved).inputs == projections.service(service_obj()).inputs


SLICE_CHANGES: list[tuple[str, Callable[[Obj], object], bool]] = [
    ("endpoint order", lambda o: o["endpoints"].reverse(), False),
    ("pod IP", lambda o: o["endpoints"][0].update(addresses=["10.244.9.9"]), False),
    ("zone hint", lambda o: o["endpoints"][0].update(zone="nyc3-a"), False),
    ("ports", lambda o: o.update(ports=[{"port": 80}]), False),
    ("ready", lambda o: o["endpoints"][1]["conditions"].update(ready=True), True),
    ("serving", lambda o: o["endpoints"][1]["conditions"].update(serving=True), True),
    ("terminating", lambda o: o["endpoints"][0]["conditions"].update(terminating=True), True),
    ("node", lambda o: o["endpoints"][0].update(nodeName="pool-a-3"), True),
    ("target", lambda o: o["endpoints"][0]["targetRef"].update(name="web-3"), True),
    ("endpoint gone", lambda o: o["endpoints"].pop(), True),
    (
        "service label",
        lambda o: o["metadata"]["labels"].update({contract.SERVICE_NAME_LABEL: "x"}),
        True,
    ),
]


@pytest.mark.parametrize(
    ("what", "change", "matters"), SLICE_CHANGES, ids=[c[0] for c in SLICE_CHANGES]
)
def test_endpoint_slice_changes(what: str, change: Callable[[Obj], object], matters: bool) -> None:
    before = projections.endpoint_slice(slice_obj())
    after = projections.endpoint_slice(mutate(slice_obj(), change))
    assert (before != after) is matters


def test_missing_endpoint_conditions_mean_ready_and_serving() -> None:
    obj = mutate(slice_obj(), lambda o: o["endpoints"][0].pop("conditions"))
    endpoint = next(e for e in projections.endpoint_slice(obj).endpoints if e.pod == "web-1")
    assert (endpoint.ready, endpoint.serving, endpoint.terminating) == (True, True, False)


def test_pod_projection_is_its_anchor_only() -> None:
    pod = {
        "metadata": {
            "name": "web-1",
            "namespace": "apps",
            "annotations": {contract.ANCHOR_IPV4: "10.20.0.5"},
            "resourceVersion": "9",
        }
    }
    assert projections.pod(pod) == projections.PodView(("apps", "web-1"), "10.20.0.5")
    bare = mutate(pod, lambda o: o["metadata"].pop("annotations"))
    assert projections.pod(bare).anchor is None


# --- what an object projects to, sparse or malformed ------------------------------------------
# The apiserver sends well-formed objects, but a field may be absent (an older object, a
# controller that leaves it out) and the watcher must never crash on one: each row is an
# object and the exact projection, with the defaults the function's reading agrees with.

ADDRESS = {contract.ADDRESS: "203.0.113.10"}
NO_INPUTS = projections.ServiceInputs(
    "203.0.113.10", None, None, (), "Cluster", "ClusterIP", None, ()
)


def inputs(**changes: Any) -> projections.ServiceInputs:
    return replace(NO_INPUTS, **changes)


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        pytest.param({}, projections.ServiceView(("", ""), None, None), id="empty"),
        pytest.param(
            {"metadata": "not a mapping", "spec": ["nor", "this"]},
            projections.ServiceView(("", ""), None, None),
            id="malformed",
        ),
        pytest.param(
            {"metadata": {"annotations": ADDRESS}, "spec": "not a mapping"},
            projections.ServiceView(("", ""), NO_INPUTS, None),
            id="opted-in-without-name-or-spec",
        ),
        pytest.param(
            {
                "metadata": {"annotations": ADDRESS},
                "spec": {"ports": [{}, {"port": 53, "protocol": None}]},
            },
            projections.ServiceView(("", ""), inputs(ports=((0, "TCP"), (53, "TCP"))), None),
            id="ports-without-number-or-protocol",
        ),
        pytest.param(
            {
                "metadata": {"annotations": ADDRESS},
                "spec": {"type": "LoadBalancer", "loadBalancerSourceRanges": ["10.0.0.0/8"]},
            },
            projections.ServiceView(
                ("", ""), inputs(service_type="LoadBalancer", source_ranges=("10.0.0.0/8",)), None
            ),
            id="load-balancer-with-source-ranges",
        ),
        pytest.param(
            {"metadata": {"annotations": ADDRESS}, "spec": {"type": 5, "loadBalancerClass": 7}},
            projections.ServiceView(("", ""), NO_INPUTS, None),
            id="non-text-type-and-class",
        ),
    ],
)
def test_what_a_service_projects_to(obj: Obj, expected: projections.ServiceView) -> None:
    assert projections.service(obj) == expected


def endpoint(node: str | None, pod: str | None, **fields: Any) -> Obj:
    raw: Obj = {"addresses": ["10.244.0.9"], **fields}
    if node is not None:
        raw["nodeName"] = node
    if pod is not None:
        raw["targetRef"] = {"kind": "Pod", "name": pod}
    return raw


@pytest.mark.parametrize(
    ("raw", "endpoint_view", "probed"),
    [
        pytest.param(
            endpoint(None, "web-1"),
            projections.EndpointView(None, "web-1", True, True, False),
            (),
            id="no-node-is-never-probed",
        ),
        pytest.param(
            {
                "nodeName": "n1",
                "addresses": "10.244.0.9",
                "targetRef": {"kind": "Node", "name": "n1"},
            },
            projections.EndpointView("n1", None, True, True, False),
            (),
            id="addresses-not-a-list-and-a-target-that-is-no-pod",
        ),
        pytest.param(
            endpoint("n1", "web-1"),
            projections.EndpointView("n1", "web-1", True, True, False),
            (("n1", "10.244.0.9"),),
            id="ready",
        ),
    ],
)
def test_what_an_endpoint_projects_to(
    raw: Obj, endpoint_view: projections.EndpointView, probed: tuple[tuple[str, str], ...]
) -> None:
    view = projections.endpoint_slice({"endpoints": [raw]})
    assert (view.endpoints, view.probed) == ((endpoint_view,), probed)


@pytest.mark.parametrize(
    "endpoints",
    [
        pytest.param([endpoint("n2", None), endpoint("n1", None)], id="same-pod-other-nodes"),
        pytest.param([endpoint("n1", "web-2"), endpoint("n1", "web-1")], id="same-node-other-pods"),
        pytest.param([endpoint("n1", "web-1"), endpoint(None, "web-2")], id="one-without-node"),
    ],
)
def test_endpoints_in_another_order_are_no_change(endpoints: list[Obj]) -> None:
    forward = projections.endpoint_slice({"endpoints": endpoints})
    backward = projections.endpoint_slice({"endpoints": endpoints[::-1]})
    assert forward == backward
    assert forward.endpoints == backward.endpoints


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        pytest.param(
            {"metadata": "x", "spec": "y", "status": "z"},
            projections.NodeView("", None, False, False, (), None, None, None),
            id="malformed",
        ),
        pytest.param(
            {
                "metadata": {"name": "n1", "deletionTimestamp": "2026-01-01T00:00:00Z"},
                "spec": {
                    "unschedulable": True,
                    "taints": [{}, {"key": "k", "effect": "NoSchedule", "value": "v"}],
                },
                "status": {"conditions": [{"type": "MemoryPressure", "status": "False"}]},
            },
            projections.NodeView(
                "n1", None, True, True, (("", "", ""), ("k", "NoSchedule", "v")), None, None, None
            ),
            id="cordoned-deleting-tainted-no-ready-condition",
        ),
        pytest.param(
            {"metadata": {"name": "n2"}, "spec": {"unschedulable": "yes"}},
            projections.NodeView("n2", None, False, False, (), None, None, None),
            id="unschedulable-is-true-only-when-true",
        ),
    ],
)
def test_what_a_node_projects_to(obj: Obj, expected: projections.NodeView) -> None:
    assert projections.node(obj) == expected


@pytest.mark.parametrize(
    ("spec", "address"),
    [
        pytest.param(
            {"type": "LoadBalancer", "loadBalancerClass": contract.LOAD_BALANCER_CLASS},
            contract.AUTO,
            id="our-class-asks-unasked",
        ),
        pytest.param(
            {"type": "LoadBalancer", "loadBalancerClass": "other.example/lb"},
            None,
            id="another-class",
        ),
        pytest.param(
            {"type": "ClusterIP", "loadBalancerClass": contract.LOAD_BALANCER_CLASS},
            None,
            id="not-a-load-balancer",
        ),
        pytest.param({"type": "LoadBalancer"}, None, id="no-class"),
    ],
)
def test_a_load_balancer_of_our_class_opts_in_without_the_annotation(
    spec: Obj, address: str | None
) -> None:
    view = projections.service({"metadata": {"name": "web", "namespace": "apps"}, "spec": spec})
    assert (view.inputs.address if view.inputs else None) == address


def test_a_node_keeps_its_uid_for_the_events_about_it() -> None:
    assert projections.node({"metadata": {"name": "n1", "uid": "u-1"}}).uid == "u-1"
    assert projections.node({"metadata": {"name": "n1"}}).uid is None


def test_a_node_keeps_its_labels_for_the_node_selector() -> None:
    obj = {"metadata": {"name": "n1", "labels": {"pool": "edge", "zone": "a"}}}
    assert projections.node(obj).labels == (("pool", "edge"), ("zone", "a"))
