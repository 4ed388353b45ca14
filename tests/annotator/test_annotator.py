"""The annotator against the real control plane and the metadata imitation, run as it ships: a
separate process, the files the pod-mode image copies (or, in node mode, the ConfigMaps the
DaemonSet mounts) and nothing else, the command and environment the shipped manifests give
it, a token minted for the shipped ServiceAccount."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client as k8s

from floating_ip_annotator.errors import ExitCode
from floating_ip_common.contract import ANCHOR_IPV4, DROPLET_ID
from testbed import metadata as bed
from testbed.controlplane import ControlPlane
from testbed.forwarder_harness import image_layout
from testbed.kube import KubeBed
from testbed.layout import IN_CLUSTER, REPO
from testbed.manifests import command_line, config_maps, kustomize, mount_config_maps, plain_env
from testbed.metadata import MetadataService
from testbed.processes import free_port
from testbed.tls import TestCA

MANIFESTS = REPO / "deploy" / "annotator-pod-mode"
BASE = REPO / "deploy" / "base"
DROPLET = 3164494
ANCHOR = "10.17.0.5"
# Failing runs should fail fast: two attempts of one second each within three seconds.
FAST = ("--timeout", "3", "--request-timeout", "1", "--attempts", "2")


def manifest(name: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all((MANIFESTS / name).read_text()) if doc]


def of_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    (found,) = [doc for doc in docs if doc["kind"] == kind]
    return found


def kubectl(control_plane: ControlPlane, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [control_plane.kubectl, "--kubeconfig", str(control_plane.kubeconfig_path), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def downward_env(container: Mapping[str, Any], pod: Mapping[str, Any]) -> dict[str, str]:
    """The container's environment as the kubelet resolves it for ``pod``."""
    environ: dict[str, str] = {}
    for var in container.get("env", []):
        if "value" in var:
            environ[var["name"]] = var["value"]
            continue
        value: Any = pod
        for part in var["valueFrom"]["fieldRef"]["fieldPath"].split("."):
            value = value[part]
        environ[var["name"]] = str(value)
    return environ


# --- the image, without a Docker engine ----------------------------------------------------


@pytest.fixture(scope="module")
def image_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The image's ``/app`` as the Dockerfile's COPY lines lay it out: a run that imports
    anything the Dockerfile does not copy fails here as it would in the image."""
    return image_layout(tmp_path_factory.mktemp("image"), IN_CLUSTER / "annotator.Dockerfile")


@dataclass(frozen=True)
class Run:
    code: int
    stdout: str
    stderr: str


@dataclass
class Container:
    """One container of a pod: its environment, its mounted token and CA, its image."""

    image: Path
    workdir: Path
    environ: dict[str, str]
    args: tuple[str, ...] = ()
    command: tuple[str, ...] = (sys.executable, "-S", "-m", "floating_ip_annotator")
    """The image's entry point; in node mode, the DaemonSet's ``command``."""

    def mount(self, token: str, ca_file: Path) -> None:
        (self.workdir / "token").write_text(token)
        shutil.copy(ca_file, self.workdir / "ca.crt")

    @property
    def token(self) -> str:
        return (self.workdir / "token").read_text()

    def run(self, *extra: str, **overrides: str) -> Run:
        """``python -m floating_ip_annotator`` as the image's entry point runs it; ``-S``
        keeps site-packages out, so only the standard library can be imported."""
        environ = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "PYTHONPATH": str(self.image),
            **self.environ,
            **overrides,
        }
        argv = [*self.command, *self.args, *extra]
        argv += ["--token-file", str(self.workdir / "token")]
        argv += ["--ca-file", str(self.workdir / "ca.crt")]
        done = subprocess.run(
            argv,
            env=environ,
            cwd=self.workdir,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        # Whatever happened, the token is never in the output.
        assert self.token.strip() not in done.stdout + done.stderr
        return Run(done.returncode, done.stdout, done.stderr)


def _mkdir(path: Path) -> Path:
    path.mkdir()
    return path


def in_cluster_env(control_plane: ControlPlane) -> dict[str, str]:
    return {
        "KUBERNETES_SERVICE_HOST": "127.0.0.1",
        "KUBERNETES_SERVICE_PORT": str(control_plane.apiserver_port),
    }


# --- pod mode --------------------------------------------------------------------------------


@dataclass
class PodMode:
    namespace: str
    pod: str
    container: Container
    kube: KubeBed

    def annotations(self) -> dict[str, str]:
        return dict(
            self.kube.core.read_namespaced_pod(self.pod, self.namespace).metadata.annotations or {}
        )

    def resource_version(self) -> str:
        return str(
            self.kube.core.read_namespaced_pod(self.pod, self.namespace).metadata.resource_version
        )


@pytest.fixture
def pod_mode(
    *,
    control_plane: ControlPlane,
    kube: KubeBed,
    namespace: str,
    metadata_service: MetadataService,
    image_root: Path,
    tmp_path: Path,
) -> PodMode:
    """The shipped RBAC applied, a Pod made from the shipped snippet's template, and its init
    container's environment resolved from that Pod as the kubelet would."""
    applied = kubectl(control_plane, "apply", "-n", namespace, "-f", str(MANIFESTS / "rbac.yaml"))
    assert applied.returncode == 0, applied.stderr
    service_account = of_kind(manifest("rbac.yaml"), "ServiceAccount")["metadata"]["name"]

    template = of_kind(manifest("init-container.yaml"), "Deployment")["spec"]["template"]
    assert template["spec"]["serviceAccountName"] == service_account
    name = f"ingress-{uuid.uuid4().hex[:5]}"
    body = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {**template["metadata"], "name": name, "annotations": {"keep": "me"}},
        "spec": {**template["spec"], "nodeName": "pool-floating-a"},
    }
    kube.core.create_namespaced_pod(namespace, body)
    pod = kube.api.sanitize_for_serialization(kube.core.read_namespaced_pod(name, namespace))
    (init,) = template["spec"]["initContainers"]

    metadata_service.add_droplet(DROPLET, anchor_ipv4=ANCHOR)
    container = Container(
        image=image_root,
        workdir=_mkdir(tmp_path / "pod"),
        environ={
            **downward_env(init, pod),
            **in_cluster_env(control_plane),
            "METADATA_URL": metadata_service.url(DROPLET),
        },
        args=tuple(init.get("args", [])),
    )
    container.mount(kube.mint_token(namespace, service_account, 600), control_plane.ca.ca_file)
    return PodMode(namespace, name, container, kube)


def test_the_pod_gets_its_anchor_and_a_rerun_writes_nothing(pod_mode: PodMode) -> None:
    first = pod_mode.container.run()

    assert first.code == ExitCode.OK, first.stderr
    assert f"annotated pod {pod_mode.namespace}/{pod_mode.pod}" in first.stdout
    assert pod_mode.annotations() == {ANCHOR_IPV4: ANCHOR, DROPLET_ID: str(DROPLET), "keep": "me"}
    version = pod_mode.resource_version()

    second = pod_mode.container.run()

    assert second.code == ExitCode.OK, second.stderr
    assert "nothing to write" in second.stdout
    assert pod_mode.resource_version() == version


def test_a_rerun_sends_no_patch(pod_mode: PodMode, control_plane: ControlPlane) -> None:
    # The API drops a patch that changes nothing without a new resourceVersion, so only a
    # token that may NOT patch proves that no patch was sent.
    assert pod_mode.container.run().code == ExitCode.OK
    kube, namespace = pod_mode.kube, pod_mode.namespace
    kube.create_service_account(namespace, "reader")
    kube.grant(
        namespace,
        "reader",
        [k8s.V1PolicyRule(api_groups=[""], resources=["pods"], verbs=["get"])],
        "reader",
    )
    pod_mode.container.mount(kube.mint_token(namespace, "reader", 600), control_plane.ca.ca_file)

    rerun = pod_mode.container.run()

    assert rerun.code == ExitCode.OK, rerun.stderr
    assert "nothing to write" in rerun.stdout

    kube.annotate_pod(namespace, pod_mode.pod, {DROPLET_ID: None})
    needs_write = pod_mode.container.run(*FAST)

    assert needs_write.code == ExitCode.PERMISSION
    assert f"permission denied patching pod {namespace}/{pod_mode.pod}" in needs_write.stderr


def test_a_wrong_anchor_on_the_pod_is_corrected(pod_mode: PodMode) -> None:
    pod_mode.kube.annotate_pod(pod_mode.namespace, pod_mode.pod, {ANCHOR_IPV4: "10.17.9.9"})

    run = pod_mode.container.run()

    assert run.code == ExitCode.OK, run.stderr
    assert pod_mode.annotations()[ANCHOR_IPV4] == ANCHOR


def test_passing_metadata_failures_are_retried(
    pod_mode: PodMode, metadata_service: MetadataService
) -> None:
    metadata_service.inject(DROPLET, bed.SERVER_ERROR, times=2)
    metadata_service.inject(DROPLET, bed.hang(), path=bed.ID_PATH, times=1)

    run = pod_mode.container.run("--request-timeout", "1")

    assert run.code == ExitCode.OK, run.stderr
    assert metadata_service.count(DROPLET, bed.ANCHOR_PATH) == 3
    assert metadata_service.count(DROPLET, bed.ID_PATH) == 2
    assert pod_mode.annotations()[ANCHOR_IPV4] == ANCHOR


@pytest.mark.parametrize(
    ("fault", "path", "code", "words"),
    [
        (bed.NOT_FOUND, bed.ANCHOR_PATH, ExitCode.NO_ANCHOR, "no anchor IPv4 for this droplet"),
        (bed.NOT_FOUND, bed.ID_PATH, ExitCode.METADATA_INVALID, "has no droplet id (404"),
        (bed.hang(), bed.ANCHOR_PATH, ExitCode.METADATA_UNREACHABLE, "2 attempts: timed out"),
        (bed.SERVER_ERROR, None, ExitCode.METADATA_UNREACHABLE, "2 attempts: HTTP 500"),
        (bed.NOT_AN_IP, bed.ANCHOR_PATH, ExitCode.METADATA_INVALID, "not an IPv4 address"),
        (bed.IPV6, bed.ANCHOR_PATH, ExitCode.METADATA_INVALID, "IPv6 address"),
        (bed.EMPTY, bed.ANCHOR_PATH, ExitCode.METADATA_INVALID, "empty body for anchor_ipv4"),
        (bed.Fault(200, "droplet"), bed.ID_PATH, ExitCode.METADATA_INVALID, "'droplet' for"),
    ],
    ids=["404", "no-id", "timeout", "500", "non-ip", "ipv6", "empty", "garbage-id"],
)
def test_a_bad_metadata_answer_fails_clearly_and_writes_nothing(
    *,
    pod_mode: PodMode,
    metadata_service: MetadataService,
    fault: bed.Fault,
    path: str | None,
    code: ExitCode,
    words: str,
) -> None:
    version = pod_mode.resource_version()
    metadata_service.inject(DROPLET, fault, path=path)

    run = pod_mode.container.run(*FAST)

    assert run.code == code, run.stderr
    assert words in run.stderr
    assert pod_mode.resource_version() == version
    assert ANCHOR_IPV4 not in pod_mode.annotations()


def test_a_custom_image_droplet_is_named_as_the_cause(
    pod_mode: PodMode, metadata_service: MetadataService
) -> None:
    metadata_service.add_droplet(77, custom_image=True)

    run = pod_mode.container.run(METADATA_URL=metadata_service.url(77))

    assert run.code == ExitCode.NO_ANCHOR
    assert "droplets from custom images have none" in run.stderr
    assert ANCHOR_IPV4 not in pod_mode.annotations()


def test_an_unreachable_metadata_service_is_named(
    pod_mode: PodMode, metadata_service: MetadataService
) -> None:
    metadata_service.stop()

    run = pod_mode.container.run(*FAST)

    assert run.code == ExitCode.METADATA_UNREACHABLE
    assert f"metadata service at {metadata_service.url(DROPLET)}/ unreachable" in run.stderr
    assert "connection refused" in run.stderr
    assert ANCHOR_IPV4 not in pod_mode.annotations()


def test_a_token_without_the_role_gets_a_permission_error(
    pod_mode: PodMode, control_plane: ControlPlane
) -> None:
    pod_mode.kube.create_service_account(pod_mode.namespace, "no-role")
    token = pod_mode.kube.mint_token(pod_mode.namespace, "no-role", 600)
    pod_mode.container.mount(token, control_plane.ca.ca_file)

    run = pod_mode.container.run(*FAST)

    assert run.code == ExitCode.PERMISSION
    assert f"permission denied reading pod {pod_mode.namespace}/{pod_mode.pod}" in run.stderr
    assert "needs the floating-ip-annotator Role (get and patch pods)" in run.stderr
    assert ANCHOR_IPV4 not in pod_mode.annotations()


def test_the_role_reaches_no_other_namespace(pod_mode: PodMode) -> None:
    other = pod_mode.kube.create_namespace()
    pod_mode.kube.create_pod(other, "neighbour", "pool-floating-a", {"app": "other"})

    run = pod_mode.container.run(*FAST, POD_NAMESPACE=other, POD_NAME="neighbour")

    assert run.code == ExitCode.PERMISSION
    assert f"permission denied reading pod {other}/neighbour" in run.stderr


@pytest.mark.parametrize(
    ("verb", "resource", "extra", "allowed"),
    [
        ("get", "pods", (), True),
        ("patch", "pods", (), True),
        ("update", "pods", (), False),
        ("list", "pods", (), False),
        ("delete", "pods", (), False),
        ("patch", "pods", ("--subresource=status",), False),
        ("create", "pods", ("--subresource=exec",), False),
        ("get", "secrets", (), False),
        ("patch", "services", (), False),
        ("patch", "nodes", (), False),
    ],
)
def test_the_role_grants_get_and_patch_of_pods_and_nothing_more(
    *,
    control_plane: ControlPlane,
    namespace: str,
    verb: str,
    resource: str,
    extra: tuple[str, ...],
    allowed: bool,
) -> None:
    applied = kubectl(control_plane, "apply", "-n", namespace, "-k", str(MANIFESTS))
    assert applied.returncode == 0, applied.stderr
    user = f"system:serviceaccount:{namespace}:floating-ip-annotator"

    answer = kubectl(
        control_plane, "auth", "can-i", verb, resource, *extra, "-n", namespace, "--as", user
    )

    assert answer.stdout.strip() == ("yes" if allowed else "no"), answer.stderr


def test_a_pod_that_does_not_exist_is_named(pod_mode: PodMode) -> None:
    run = pod_mode.container.run(*FAST, POD_NAME="gone")

    # The Role allows get on any pod name, so the API may say 404 rather than 403.
    assert run.code == ExitCode.KUBE_REJECTED
    assert f"pod {pod_mode.namespace}/gone not found (404)" in run.stderr


def test_missing_downward_api_variables_stop_before_any_request(
    pod_mode: PodMode, metadata_service: MetadataService
) -> None:
    run = pod_mode.container.run(POD_NAME="")

    assert run.code == ExitCode.CONFIG
    assert "POD_NAME is not set" in run.stderr
    assert metadata_service.count(DROPLET) == 0


def test_an_unreachable_api_server_is_named_after_the_retries(pod_mode: PodMode) -> None:
    run = pod_mode.container.run(*FAST, KUBERNETES_SERVICE_PORT=str(free_port()))

    assert run.code == ExitCode.KUBE_UNREACHABLE
    assert "failing after 2 attempts: connection refused" in run.stderr


def test_an_api_server_the_ca_does_not_vouch_for_is_refused(
    pod_mode: PodMode, tmp_path_factory: pytest.TempPathFactory
) -> None:
    stranger = TestCA(tmp_path_factory.mktemp("stranger-ca"))
    pod_mode.container.mount(pod_mode.container.token, stranger.ca_file)

    run = pod_mode.container.run(*FAST)

    assert run.code == ExitCode.KUBE_UNREACHABLE
    assert "TLS certificate not trusted" in run.stderr
    assert ANCHOR_IPV4 not in pod_mode.annotations()


def test_the_snippet_is_a_valid_deployment(control_plane: ControlPlane, namespace: str) -> None:
    dry = kubectl(
        control_plane,
        "apply",
        "--dry-run=server",
        "-n",
        namespace,
        "-f",
        str(MANIFESTS / "init-container.yaml"),
    )
    assert dry.returncode == 0, dry.stderr


# --- node mode ---------------------------------------------------------------------------------


@dataclass
class NodeMode:
    node: str
    container: Container
    kube: KubeBed

    def annotations(self) -> dict[str, str]:
        return dict(self.kube.core.read_node(self.node).metadata.annotations or {})

    def resource_version(self) -> str:
        return str(self.kube.core.read_node(self.node).metadata.resource_version)


@pytest.fixture(scope="module")
def base(control_plane: ControlPlane) -> list[dict[str, Any]]:
    """The default install, rendered by kustomize."""
    return kustomize(control_plane.kubectl, BASE)


NODE_ANNOTATOR = {
    ("Namespace", "floating-ip"),
    ("ServiceAccount", "floating-ip-node-annotator"),
    ("ClusterRole", "floating-ip-node-annotator"),
    ("ClusterRoleBinding", "floating-ip-node-annotator"),
    ("DaemonSet", "floating-ip-node-annotator"),
}


@pytest.fixture
def node_mode(
    *,
    control_plane: ControlPlane,
    kube: KubeBed,
    namespace: str,
    metadata_service: MetadataService,
    base: list[dict[str, Any]],
    tmp_path: Path,
) -> Iterator[NodeMode]:
    """The node annotator's part of the rendered base applied (RBAC, DaemonSet and the
    ConfigMaps it mounts), a Node of droplet DROPLET, and the DaemonSet's init container run
    for a pod on that Node: its command on the ConfigMaps' files, its environment."""
    daemonset = of_kind(base, "DaemonSet")
    pod_spec = daemonset["spec"]["template"]["spec"]
    mounted = {v["configMap"]["name"] for v in pod_spec["volumes"]}
    part = [
        d
        for d in base
        if (d["kind"], d["metadata"]["name"]) in NODE_ANNOTATOR
        or (d["kind"] == "ConfigMap" and d["metadata"]["name"] in mounted)
    ]
    assert len(part) == len(NODE_ANNOTATOR) + 2  # its code and the contract
    applied = subprocess.run(
        [
            control_plane.kubectl,
            f"--kubeconfig={control_plane.kubeconfig_path}",
            *("apply", "--server-side", "--force-conflicts", "-f", "-"),
        ],
        input=yaml.safe_dump_all(part),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert applied.returncode == 0, applied.stderr
    account = of_kind(part, "ServiceAccount")["metadata"]
    assert pod_spec["serviceAccountName"] == account["name"]
    (init,) = pod_spec["initContainers"]

    root = _mkdir(tmp_path / "root")
    mount_config_maps(pod_spec, init, config_maps(base), root)
    node = f"pool-floating-{namespace}"
    kube.add_node(node, DROPLET)
    metadata_service.add_droplet(DROPLET, anchor_ipv4=ANCHOR)
    container = Container(
        image=root / "app",
        workdir=_mkdir(tmp_path / "node"),
        environ={
            **downward_env(init, {"spec": {"nodeName": node}}),
            **plain_env(init, root),
            **in_cluster_env(control_plane),
            "METADATA_URL": metadata_service.url(DROPLET),
        },
        args=tuple(init.get("args", [])),
        command=tuple(command_line(init)),
    )
    token = kube.mint_token(account["namespace"], account["name"], 600)
    container.mount(token, control_plane.ca.ca_file)
    try:
        yield NodeMode(node, container, kube)
    finally:
        kube.delete_node(node)


def test_the_daemonset_runs_the_official_image_on_read_only_code(
    base: list[dict[str, Any]],
) -> None:
    pod_spec = of_kind(base, "DaemonSet")["spec"]["template"]["spec"]
    (init,) = pod_spec["initContainers"]
    assert init["image"].startswith("python:3.11-slim@sha256:")
    assert init["command"] == ["python", "-m", "floating_ip_annotator"]
    assert init["args"] == ["--node"]
    assert {"name": "PYTHONDONTWRITEBYTECODE", "value": "1"} in init["env"]
    assert init["securityContext"]["readOnlyRootFilesystem"] is True
    assert init["securityContext"]["runAsUser"] == 65532
    assert sorted(m["mountPath"] for m in init["volumeMounts"]) == [
        "/app/floating_ip_annotator",
        "/app/floating_ip_common",
    ]
    assert all(m["readOnly"] for m in init["volumeMounts"])


def test_the_node_gets_its_anchor_and_a_rerun_writes_nothing(node_mode: NodeMode) -> None:
    first = node_mode.container.run()

    assert first.code == ExitCode.OK, first.stderr
    assert f"annotated node {node_mode.node}" in first.stdout
    assert node_mode.annotations()[ANCHOR_IPV4] == ANCHOR
    assert node_mode.annotations()[DROPLET_ID] == str(DROPLET)
    version = node_mode.resource_version()

    second = node_mode.container.run()

    assert second.code == ExitCode.OK, second.stderr
    assert "nothing to write" in second.stdout
    assert node_mode.resource_version() == version


def test_a_node_of_another_droplet_is_not_annotated(
    node_mode: NodeMode, metadata_service: MetadataService
) -> None:
    metadata_service.add_droplet(4242, anchor_ipv4="10.17.0.42")

    run = node_mode.container.run(METADATA_URL=metadata_service.url(4242))

    assert run.code == ExitCode.MISMATCH
    assert "says this is droplet 4242" in run.stderr
    assert ANCHOR_IPV4 not in node_mode.annotations()


def test_a_pod_mode_token_cannot_annotate_nodes(
    node_mode: NodeMode, pod_mode: PodMode, control_plane: ControlPlane
) -> None:
    node_mode.container.mount(pod_mode.container.token, control_plane.ca.ca_file)

    run = node_mode.container.run(*FAST)

    assert run.code == ExitCode.PERMISSION
    assert "needs the floating-ip-node-annotator ClusterRole" in run.stderr
    assert ANCHOR_IPV4 not in node_mode.annotations()
