"""Relay mode's in-cluster half without a bed: the state is trimmed to what the function reads,
bounded by what a function call accepts, and only the writes the function makes in callback
mode, in the forwarder's namespaces, are ever made; a write of the same Service follows the
version the previous one made; a lost race asks for a fresh decision."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any, cast

import pytest

from floating_ip_common import contract
from floating_ip_common.kube_client import ApiError, Connection
from floating_ip_forwarder.forwarding.relay import Made, Relay, RelayError, TooLarge

MERGE = "application/merge-patch+json"
SERVICE = "/api/v1/namespaces/web/services/traefik"


def patch_of(subresource: str = "") -> dict[str, Any]:
    """A Service patch as the function answers it, decided from resourceVersion 7."""
    return {
        "method": "PATCH",
        "path": f"{SERVICE}{subresource}?fieldManager=floating-ip",
        "contentType": MERGE,
        "body": {"metadata": {"resourceVersion": "7"}},
    }


class FakeApi:
    def __init__(self, lists: dict[str, list[dict[str, Any]]] | None = None) -> None:
        self.lists = lists or {}
        self.calls: list[tuple[str, str, Any, str]] = []
        self.conflict_on: str | None = None
        self.version = 100

    def request(
        self, method: str, path: str, body: Any = None, accept: str = "", *, content_type: str = ""
    ) -> dict[str, Any]:
        self.calls.append((method, path, body, content_type))
        if method == "GET":
            base = path.partition("?")[0]
            if base.endswith("/configmaps/" + contract.SUSPICIONS_CONFIGMAP):
                raise ApiError(404, "not found")
            return {"items": self.lists.get(base, []), "metadata": {}}
        if self.conflict_on and path.startswith(self.conflict_on):
            raise ApiError(409, "the object has been modified")
        self.version += 1
        return {"metadata": {"resourceVersion": str(self.version)}}


def relay(api: FakeApi, namespaces: tuple[str, ...] = ()) -> Relay:
    return Relay(cast(Connection, api), namespaces)


def node(name: str) -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "managedFields": [{"x": "y" * 100}],
            "labels": {"a": "b", "unread": "x"},
        },
        "spec": {"providerID": "digitalocean://1"},
        "status": {"conditions": [{"type": "Ready", "status": "True"}], "images": ["i"] * 50},
    }


def test_the_state_holds_what_the_function_reads_and_nothing_bulky() -> None:
    opted = {
        "metadata": {
            "name": "traefik",
            "namespace": "web",
            "annotations": {contract.ADDRESS: "192.0.2.1", contract.NODE_SELECTOR: "a=b"},
        }
    }
    other = {"metadata": {"name": "db", "namespace": "web", "annotations": {"x": "y"}}}
    announcing = {
        "metadata": {
            "name": "traefik-1",
            "namespace": "web",
            "annotations": {contract.ANCHOR_IPV4: "10.17.0.5"},
        },
        "spec": {"nodeName": "n1"},
    }
    silent = {"metadata": {"name": "db-1", "namespace": "web", "annotations": {"x": "y"}}}
    api = FakeApi(
        {
            "/api/v1/services": [opted, other],
            "/api/v1/nodes": [node("n1")],
            "/api/v1/namespaces/web/pods": [announcing, silent],
        }
    )
    state = relay(api).state()
    assert [s["metadata"]["name"] for s in state["services"]] == ["traefik"]
    [n1] = state["nodes"]
    assert "managedFields" not in n1["metadata"] and "images" not in n1["status"]
    assert n1["status"]["conditions"] == [{"type": "Ready", "status": "True"}]
    assert n1["metadata"]["labels"] == {"a": "b"}, "the label a node selector names"
    assert [p["metadata"]["name"] for p in state["pods"]] == ["traefik-1"], (
        "only a Pod that announces an anchor counts"
    )
    assert state["suspicions"] == {}
    selector = [p for m, p, _, _ in api.calls if "endpointslices" in p]
    assert selector and "traefik" in selector[0]


def test_a_state_past_what_a_call_accepts_is_refused_naming_the_fix() -> None:
    nodes = [node(f"node-{i:04}") for i in range(5000)]
    for each in nodes:  # what placement reads of a Node, at 5,000 Nodes: over 1 MB
        each["spec"]["taints"] = [{"key": "k" * 100, "effect": "NoSchedule"}]
    api = FakeApi({"/api/v1/nodes": nodes})
    with pytest.raises(TooLarge, match="narrow NAMESPACES"):
        relay(api).body({}, relay(api).state())


@pytest.mark.parametrize(
    "write",
    [
        {
            "method": "DELETE",
            "path": f"{SERVICE}?fieldManager=floating-ip",
            "contentType": MERGE,
            "body": {},
        },
        {"method": "PATCH", "path": "/api/v1/nodes/n1", "contentType": MERGE, "body": {}},
        {
            "method": "PATCH",
            "path": "/api/v1/namespaces/web/secrets/x",
            "contentType": MERGE,
            "body": {},
        },
        {
            "method": "PATCH",
            "path": f"{SERVICE}/../../secrets/x?fieldManager=floating-ip",
            "contentType": MERGE,
            "body": {},
        },
        {"method": "PATCH", "path": SERVICE, "contentType": MERGE, "body": {}},
        {
            "method": "POST",
            "path": "/api/v1/namespaces/web/events",
            "contentType": MERGE,
            "body": {},
        },
        {
            "method": "PATCH",
            "path": f"{SERVICE}?fieldManager=floating-ip",
            "contentType": MERGE,
            "body": [],
        },
    ],
    ids=[
        "delete",
        "node",
        "secret",
        "traversal",
        "no-field-manager",
        "event-as-patch",
        "not-object",
    ],
)
def test_a_write_the_function_never_makes_is_refused_and_nothing_is_written(
    write: dict[str, Any],
) -> None:
    api = FakeApi()
    good = {
        "method": "POST",
        "path": "/api/v1/namespaces/web/events",
        "contentType": "application/json",
        "body": {},
    }
    with pytest.raises(RelayError, match="never makes"):
        relay(api).make([good, write])
    assert api.calls == []


def test_writes_outside_the_forwarders_namespaces_are_refused() -> None:
    api = FakeApi()
    write = {
        "method": "POST",
        "path": "/api/v1/namespaces/other/events",
        "contentType": "application/json",
        "body": {},
    }
    with pytest.raises(RelayError, match="outside NAMESPACES"):
        relay(api, ("web",)).make([write])


def test_a_second_write_of_a_service_follows_the_first_and_a_conflict_asks_again() -> None:
    api = FakeApi()
    status, spec = patch_of("/status"), patch_of()
    assert relay(api).make([status, spec]).conflict is False
    assert [c[2]["metadata"]["resourceVersion"] for c in api.calls] == ["7", "101"]
    assert {c[3] for c in api.calls} == {MERGE}

    api = FakeApi()
    api.conflict_on = SERVICE
    assert relay(api).make([spec, status]).conflict is True
    assert len(api.calls) == 1, "nothing after the lost race"


def service(name: str, version: str, **meta: Any) -> dict[str, Any]:
    annotations = meta.pop("annotations", {contract.ADDRESS: "192.0.2.1"})
    metadata = {"name": name, "namespace": "web", "uid": f"u-{name}", "resourceVersion": version}
    return {
        "metadata": {**metadata, "annotations": annotations, **meta},
        "spec": {"externalIPs": [f"10.0.0.{version}"]},
        "status": {},
    }


def test_a_continued_plan_sees_the_services_as_its_writes_left_them() -> None:
    kept = {"nodes": [{"metadata": {"name": "n1"}}], "pods": [], "endpointslices": []}
    state = {**kept, "services": [service("traefik", "7"), service("api", "8")]}
    replies = (service("traefik", "9", managedFields=[{"big": "x" * 100}]),)
    continued = relay(FakeApi()).continued(state, Made(False, replies))
    assert continued is not None
    assert [s["metadata"]["resourceVersion"] for s in continued["services"]] == ["9", "8"]
    assert continued["services"][0]["spec"]["externalIPs"] == ["10.0.0.9"]
    assert "managedFields" not in continued["services"][0]["metadata"], "trimmed as a list is"
    assert {k: continued[k] for k in kept} == kept, "the rest as this plan was decided on"


@pytest.mark.parametrize(
    ("reply", "left"),
    [
        (service("traefik", "9", annotations={}), ["api"]),  # no longer ours
        (
            service(
                "traefik",
                "9",
                deletionTimestamp="2026-01-01T00:00:00Z",
                finalizers=[contract.FINALIZER],
            ),
            ["traefik", "api"],
        ),
        (service("traefik", "9", deletionTimestamp="2026-01-01T00:00:00Z", finalizers=[]), ["api"]),
    ],
    ids=["opted-out", "deleting-with-finalizer", "deleted"],
)
def test_a_written_service_a_list_would_not_show_leaves_the_state(
    reply: dict[str, Any], left: list[str]
) -> None:
    state = {"services": [service("traefik", "7"), service("api", "8")]}
    continued = relay(FakeApi()).continued(state, Made(False, (reply,)))
    assert continued is not None
    assert [s["metadata"]["name"] for s in continued["services"]] == left


def test_a_reply_that_does_not_say_what_the_service_became_means_a_fresh_read() -> None:
    api = FakeApi()
    made = relay(api).make([patch_of()])
    assert made.services == ({"metadata": {"resourceVersion": "101"}},)
    assert relay(api).continued({"services": [service("traefik", "7")]}, made) is None


POOL = "doks.digitalocean.com/node-pool"


def test_what_the_state_keeps_translates_as_the_whole_objects_do() -> None:
    """The trimming drops only what the function never reads: translate gives the same
    placement inputs from the trimmed objects as from the whole ones."""
    from floating_ip import translate
    from floating_ip.core.node_selector import node_selector_of
    from floating_ip_forwarder.forwarding import relay as relay_module

    raw_node = {
        "metadata": {
            "name": "n1",
            "uid": "u",
            "resourceVersion": "9",
            "labels": {
                contract.REGION_LABEL: "nyc3",
                "kubernetes.io/hostname": "n1",
                POOL: "edge",
            },
            "annotations": {contract.ANCHOR_IPV4: "10.17.0.5", "other": "x"},
            "deletionTimestamp": "2026-12-06T17:00:00Z",
            "managedFields": [{}],
        },
        "spec": {
            "providerID": "digitalocean://42",
            "unschedulable": True,
            "taints": [{"key": "k", "effect": "NoSchedule", "value": "v"}],
            "podCIDR": "10.244.0.0/24",
        },
        "status": {
            "conditions": [
                {"type": "MemoryPressure", "status": "False"},
                {"type": "Ready", "status": "True", "lastHeartbeatTime": "t"},
            ],
            "images": [{"names": ["x"]}],
        },
    }
    selectors = (f"{POOL} in (edge,web)",)
    trimmed, whole = (
        translate.node(relay_module._node(raw_node, selectors)),
        translate.node(raw_node),
    )
    assert replace(trimmed, labels=()) == replace(whole, labels=())
    assert dict(trimmed.labels) == {contract.REGION_LABEL: "nyc3", POOL: "edge"}, (
        "the region and what a selector names"
    )
    assert node_selector_of(selectors[0]).matches(trimmed.labels)
    raw_pod = {
        "metadata": {
            "name": "p",
            "namespace": "web",
            "annotations": {contract.ANCHOR_IPV4: "10.17.0.6", "x": "y"},
            "labels": {"app": "a"},
        },
        "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "i"}]},
        "status": {"podIP": "10.244.0.9"},
    }
    assert translate.pod(relay_module._pod(raw_pod)) == translate.pod(raw_pod)
    raw_service = {
        "metadata": {
            "name": "traefik",
            "namespace": "web",
            "uid": "s1",
            "resourceVersion": "5",
            "annotations": {contract.ADDRESS: "192.0.2.1", contract.STATUS: "ok"},
            "managedFields": [{}],
        },
        "spec": {"ports": [{"port": 80, "protocol": "TCP"}], "externalIPs": ["10.17.0.5"]},
        "status": {"loadBalancer": {}},
    }
    raw_slice = {
        "metadata": {
            "name": "s",
            "namespace": "web",
            "labels": {contract.SERVICE_NAME_LABEL: "traefik"},
        },
        "endpoints": [
            {"addresses": ["10.244.0.9"], "nodeName": "n1", "conditions": {"ready": True}}
        ],
        "ports": [{"port": 8080, "protocol": "TCP"}],
        "addressType": "IPv4",
    }
    services = translate.services(
        [relay_module._service(raw_service)], [relay_module._slice(raw_slice)]
    )
    assert services == translate.services([raw_service], [raw_slice])


class ServingApi(FakeApi):
    """Answers a Service write with the Service it leaves, as the apiserver does."""

    def request(
        self, method: str, path: str, body: Any = None, accept: str = "", *, content_type: str = ""
    ) -> dict[str, Any]:
        reply = super().request(method, path, body, accept, content_type=content_type)
        if method == "PATCH":
            return service("traefik", reply["metadata"]["resourceVersion"])
        return reply


def answer(again: bool, writes: list[dict[str, Any]], status: int = 200) -> Any:
    body = json.dumps({"again": again, "kubernetes_writes": writes}).encode()
    return lambda sent: (status, status, body)


def delivered(api: FakeApi, *answers: Any) -> tuple[list[int | None], list[dict[str, Any]]]:
    """Plays the answers in turn; the statuses seen and the states sent."""
    sent: list[dict[str, Any]] = []
    replies = iter(answers)

    def post(body: bytes) -> tuple[int, int, bytes]:
        sent.append(json.loads(body)["state"])
        return cast(tuple[int, int, bytes], next(replies)(body))

    api.lists = {"/api/v1/services": [service("traefik", "7")]}
    calls = relay(api).deliver({"service": "web/traefik"}, post)
    return [c.status for c in calls], sent


ADD_ANCHOR = patch_of()


def lists(api: FakeApi) -> int:
    return sum(1 for method, *_ in api.calls if method == "GET")


def test_the_next_step_of_a_plan_goes_on_the_state_it_was_decided_on_not_read_again() -> None:
    api = ServingApi()
    statuses, sent = delivered(api, answer(True, [ADD_ANCHOR]), answer(False, []))
    assert statuses == [200, 200]
    assert lists(api) == 5, "services, slices, pods, nodes, suspicions: once"
    assert [s["services"][0]["metadata"]["resourceVersion"] for s in sent] == ["7", "101"]


def test_a_lost_race_is_decided_again_from_everything_read_afresh() -> None:
    api = ServingApi()
    api.conflict_on = SERVICE
    with pytest.raises(RelayError, match="after 4 calls"):
        delivered(api, *[answer(False, [ADD_ANCHOR])] * 4)
    assert lists(api) == 4 * 5


def test_an_answer_other_than_200_ends_the_delivery_its_writes_made() -> None:
    api = ServingApi()
    statuses, _ = delivered(api, answer(True, [ADD_ANCHOR], status=503))
    assert statuses == [503]
    assert [m for m, *_ in api.calls if m != "GET"] == ["PATCH"], "the Warning's writes are made"
