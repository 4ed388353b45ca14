"""The control plane of the bed is real: watches, 410 Gone, 409 Conflict, RBAC 403, and the
helpers that play the missing controllers behave as those controllers do."""

from __future__ import annotations

import json
import ssl
import urllib.request

import pytest
from kubernetes import client as k8s
from kubernetes import watch
from kubernetes.client.exceptions import ApiException

from testbed.controlplane import ControlPlane
from testbed.kube import KubeBed, Port


def test_readyz_and_version(control_plane: ControlPlane) -> None:
    context = ssl.create_default_context(cafile=str(control_plane.ca.ca_file))
    context.load_cert_chain(str(control_plane.admin.cert), str(control_plane.admin.key))
    with urllib.request.urlopen(f"{control_plane.url}/readyz", context=context) as reply:
        assert reply.read() == b"ok"
    with urllib.request.urlopen(f"{control_plane.url}/version", context=context) as reply:
        assert json.loads(reply.read())["gitVersion"].startswith("v1.3")


def test_watch_sees_a_change_with_its_resource_version(kube: KubeBed, namespace: str) -> None:
    listed = kube.core.list_namespaced_config_map(namespace)
    kube.core.create_namespaced_config_map(
        namespace, k8s.V1ConfigMap(metadata=k8s.V1ObjectMeta(name="seen"), data={"a": "1"})
    )
    stream = watch.Watch().stream(
        kube.core.list_namespaced_config_map,
        namespace,
        resource_version=listed.metadata.resource_version,
        timeout_seconds=10,
    )
    event = next(stream)
    assert event["type"] == "ADDED"
    assert event["object"].metadata.name == "seen"
    assert int(event["object"].metadata.resource_version) > int(listed.metadata.resource_version)


def test_watch_from_a_compacted_resource_version_is_gone(
    control_plane: ControlPlane, kube: KubeBed, namespace: str
) -> None:
    # After an apiserver restart its watch cache starts at the current revision: an older
    # resourceVersion is "too old" and the watch must end in 410 Gone, as clients expect.
    old = kube.core.list_namespaced_config_map(namespace).metadata.resource_version
    kube.core.create_namespaced_config_map(
        namespace, k8s.V1ConfigMap(metadata=k8s.V1ObjectMeta(name="newer"))
    )
    control_plane.compact_etcd()
    with pytest.raises(ApiException) as gone:
        for _ in watch.Watch().stream(
            kube.core.list_namespaced_config_map,
            namespace,
            resource_version=old,
            timeout_seconds=5,
        ):
            pass
    assert gone.value.status == 410


def test_a_conflicting_update_gets_409(kube: KubeBed, namespace: str) -> None:
    created = kube.core.create_namespaced_config_map(
        namespace, k8s.V1ConfigMap(metadata=k8s.V1ObjectMeta(name="cas"), data={"v": "1"})
    )
    kube.core.patch_namespaced_config_map("cas", namespace, {"data": {"v": "2"}})
    created.data = {"v": "3"}
    with pytest.raises(ApiException) as conflict:
        kube.core.replace_namespaced_config_map("cas", namespace, created)
    assert conflict.value.status == 409


def test_a_token_whose_role_lacks_a_verb_gets_403(
    control_plane: ControlPlane, kube: KubeBed, namespace: str
) -> None:
    kube.create_service_account(namespace, "reader")
    kube.grant(
        namespace,
        "reader",
        [k8s.V1PolicyRule(api_groups=[""], resources=["configmaps"], verbs=["get", "list"])],
        name="read-configmaps",
    )
    token = kube.mint_token(namespace, "reader")
    core = k8s.CoreV1Api(control_plane.token_client(token))
    assert core.list_namespaced_config_map(namespace).items == []
    with pytest.raises(ApiException) as forbidden:
        core.create_namespaced_config_map(
            namespace, k8s.V1ConfigMap(metadata=k8s.V1ObjectMeta(name="nope"))
        )
    assert forbidden.value.status == 403
    with pytest.raises(ApiException) as unauthenticated:
        k8s.CoreV1Api(control_plane.token_client("not-a-token")).list_namespaced_config_map(
            namespace
        )
    assert unauthenticated.value.status == 401


def test_node_helper_looks_like_a_doks_node(kube: KubeBed) -> None:
    kube.add_node("bed-node-a", 4242, anchor_ip="10.17.0.5")
    node = kube.core.read_node("bed-node-a")
    assert node.spec.provider_id == "digitalocean://4242"
    assert node.metadata.labels["doks.digitalocean.com/node-pool"]
    assert [c.status for c in node.status.conditions if c.type == "Ready"] == ["True"]

    kube.set_node_ready("bed-node-a", "False")
    node = kube.core.read_node("bed-node-a")
    assert [c.status for c in node.status.conditions if c.type == "Ready"] == ["False"]
    assert {(t.key, t.effect) for t in node.spec.taints} == {
        ("node.kubernetes.io/not-ready", "NoSchedule"),
        ("node.kubernetes.io/not-ready", "NoExecute"),
    }
    kube.set_node_ready("bed-node-a", "True")
    kube.cordon("bed-node-a")
    node = kube.core.read_node("bed-node-a")
    assert node.spec.unschedulable is True
    assert not node.spec.taints
    kube.delete_node("bed-node-a")


def test_endpoint_slices_follow_pod_readiness(kube: KubeBed, namespace: str) -> None:
    kube.add_node("bed-node-b", 4343)
    kube.create_service(namespace, "web", [Port(80), Port(443, "UDP")])
    kube.create_pod(namespace, "web-1", "bed-node-b", {"app": "web"})
    slice_ = kube.sync_endpoint_slices(namespace, "web")
    assert slice_.metadata.labels["kubernetes.io/service-name"] == "web"
    [endpoint] = slice_.endpoints
    assert (endpoint.node_name, endpoint.conditions.ready) == ("bed-node-b", True)

    kube.set_pod_ready(namespace, "web-1", False)
    [endpoint] = kube.sync_endpoint_slices(namespace, "web").endpoints
    assert endpoint.conditions.ready is False

    kube.set_pod_ready(namespace, "web-1", True)
    kube.delete_pod(namespace, "web-1", grace_seconds=30)  # stays Terminating: no kubelet
    [endpoint] = kube.sync_endpoint_slices(namespace, "web").endpoints
    assert (endpoint.conditions.ready, endpoint.conditions.terminating) == (False, True)
    kube.delete_node("bed-node-b")
