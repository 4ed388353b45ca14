"""``tools/uninstall.py`` on the real apiserver and the DigitalOcean imitation: after the
function placed IPs (one of them created for ``address: auto``), the uninstall's cleaning
step leaves every Service as its user wrote it and nothing of ours in the account."""

from __future__ import annotations

import io
import json
import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest
from kubernetes import client as k8s

from floating_ip_common import contract
from testbed import helm as helm_cli
from testbed.controlplane import ControlPlane
from testbed.doks import DoksWorld
from testbed.function_harness import TRAEFIK_PORTS, FunctionRunner
from testbed.kube import KubeBed
from tools.uninstall import ANNOTATOR_ANNOTATIONS, clean, main, read_env

USER_IP = "192.0.2.70"
USER_ENTRY = "198.51.100.9"


def test_the_uninstall_cleans_everything_the_function_wrote(
    runner: FunctionRunner, world: DoksWorld, kube: KubeBed, namespace: str
) -> None:
    world.do.add_reserved_ip(USER_IP, region=world.region)
    world.kube.create_service(
        namespace,
        "web",
        TRAEFIK_PORTS,
        annotations={contract.ADDRESS: USER_IP, "team": "edge"},
        external_ips=[USER_ENTRY],
    )
    world.kube.create_service(
        namespace, "api", TRAEFIK_PORTS, annotations={contract.ADDRESS: contract.AUTO}
    )
    world.kube.create_pod(namespace, "web-1", world.node("a"), {"app": "web"})
    world.kube.create_pod(namespace, "api-1", world.node("b"), {"app": "api"})
    world.kube.sync_endpoint_slices(namespace, "web")
    world.kube.sync_endpoint_slices(namespace, "api")
    for _ in range(4):
        if runner.run().status == 200:
            break
    [created] = [ip for ip in world.do.reserved_ips() if ip != USER_IP]
    assert world.do.firewalls()

    left = clean(runner.env, runner.kube_token)

    assert left.nothing, left.lines()
    assert world.do.firewalls() == []
    assert world.do.reserved_ips() == {USER_IP: world.droplets["a"].droplet_id}
    assert created not in world.do.reserved_ips(), "the IP created for api is released"
    web = kube.core.read_namespaced_service("web", namespace)
    assert web.metadata.annotations == {contract.ADDRESS: USER_IP, "team": "edge"}
    assert web.spec.external_ips == [USER_ENTRY]
    assert not web.metadata.finalizers
    api = kube.core.read_namespaced_service("api", namespace)
    assert api.metadata.annotations == {contract.ADDRESS: contract.AUTO}
    assert not api.spec.external_ips and not api.metadata.finalizers
    assert clean(runner.env, runner.kube_token).nothing, "a second uninstall finds nothing to do"


def test_the_env_file_reads_as_the_function_reads_it() -> None:
    text = "# comment\nCLUSTER_ID=\"c0ffee\"\nexport KUBE_API_URL=abc\n\nWEB_SECRET='s=1'\n"
    assert read_env(io.StringIO(text)) == {
        "CLUSTER_ID": "c0ffee",
        "KUBE_API_URL": "abc",
        "WEB_SECRET": "s=1",
    }


def install_function_account(kube: KubeBed, namespace: str) -> None:
    kube.create_service_account(namespace, contract.FUNCTION_ACCOUNT)
    for role in (contract.FUNCTION_ACCOUNT, f"{contract.FUNCTION_ACCOUNT}-nodes"):
        kube.rbac.create_cluster_role_binding(
            k8s.V1ClusterRoleBinding(
                metadata=k8s.V1ObjectMeta(name=f"{role}-{namespace}"),
                role_ref=k8s.V1RoleRef(
                    api_group="rbac.authorization.k8s.io", kind="ClusterRole", name=role
                ),
                subjects=[
                    k8s.RbacV1Subject(
                        kind="ServiceAccount", name=contract.FUNCTION_ACCOUNT, namespace=namespace
                    )
                ],
            )
        )


@dataclass(frozen=True)
class Install:
    """A stand-in cluster side (the forwarder's Deployment, applied from an overlay) and the
    function's ``.env``, as a user has them when they run the command."""

    namespace: str
    side: list[str]
    """How the command is told the cluster side: ``--kustomize DIR`` or ``--helm-release``."""
    workdir: Path
    kubectl: list[str]
    """The bed's kubectl with its kubeconfig, for the test's own looks."""
    world: DoksWorld
    env: Mapping[str, str]
    """The function's settings, as the user's ``.env`` holds them."""

    def env_file(self, env: Mapping[str, str]) -> Path:
        path = self.workdir / ".env"
        path.write_text("".join(f"{key}={value}\n" for key, value in env.items()))
        return path

    def uninstall(self, env: Mapping[str, str] | None = None) -> int:
        env_file = self.env_file(self.env if env is None else env)
        return main(
            [
                *("--env", str(env_file), "--namespace", self.namespace),
                *(*self.side, "--kubectl", self.kubectl[0], "--helm", HELM_PATH),
            ]
        )

    def forwarder_exists(self) -> bool:
        found = subprocess.run(
            [*self.kubectl, "get", "deployment", "event-forwarder", "-n", self.namespace],
            capture_output=True,
            text=True,
            check=False,
        )
        assert found.returncode == 0 or "NotFound" in found.stderr, found.stderr
        return found.returncode == 0

    def node_annotations(self) -> dict[str, dict[str, str]]:
        return {
            node.metadata.name: dict(node.metadata.annotations or {})
            for node in self.world.kube.core.list_node().items
        }


HELM_PATH = "helm"
"""The helm the command runs: the bed's, first on PATH in the Helm case."""


@pytest.fixture(params=["kustomize", "helm"])
def install(
    request: pytest.FixtureRequest,
    runner: FunctionRunner,
    world: DoksWorld,
    kube: KubeBed,
    namespace: str,
    control_plane: ControlPlane,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Install:
    """An ``address: auto`` Service the function has placed, and the cluster side."""
    world.kube.create_service(
        namespace, "api", TRAEFIK_PORTS, annotations={contract.ADDRESS: contract.AUTO}
    )
    world.kube.create_pod(namespace, "api-1", world.node("b"), {"app": "api"})
    world.kube.sync_endpoint_slices(namespace, "api")
    for _ in range(4):
        if runner.run().status == 200:
            break
    assert world.do.reserved_ips() and world.do.firewalls()
    labels = {"app": "forwarder"}
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "event-forwarder", "namespace": namespace},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "forwarder", "image": "python:3.11-slim"}]},
            },
        },
    }
    # The install's namespace holds the forwarder and the function's ServiceAccount, whose
    # token the command mints: here the test's own, with the shipped ClusterRoles bound.
    install_function_account(kube, namespace)
    monkeypatch.setenv("KUBECONFIG", str(control_plane.kubeconfig_path))
    kubectl = [control_plane.kubectl, "--kubeconfig", str(control_plane.kubeconfig_path)]
    source = tmp_path / "cluster-side"
    (source / "templates").mkdir(parents=True)
    (source / "templates" / "forwarder.json").write_text(json.dumps(deployment))
    if request.param == "kustomize":
        (source / "kustomization.yaml").write_text("resources:\n  - templates/forwarder.json\n")
        subprocess.run([*kubectl, "apply", "-k", str(source)], check=True, capture_output=True)
        side = ["--kustomize", str(source)]
    else:
        (source / "Chart.yaml").write_text("apiVersion: v2\nname: stand-in\nversion: 0.1.0\n")
        helm_home = tmp_path / "helm-home"
        monkeypatch.setenv("PATH", f"{helm_cli.binary().parent}:{os.environ['PATH']}")
        for name in ("HOME", "HELM_CACHE_HOME", "HELM_CONFIG_HOME", "HELM_DATA_HOME"):
            monkeypatch.setenv(name, str(helm_home / name.lower()))
        release = "floating-ip"
        subprocess.run(
            [HELM_PATH, "install", release, str(source), "-n", namespace],
            check=True,
            capture_output=True,
        )
        side = ["--helm-release", release]
    return Install(namespace, side, tmp_path, kubectl, world, runner.env)


def test_the_command_stops_the_forwarder_cleans_and_then_deletes_the_cluster_side(
    install: Install, world: DoksWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    """The whole command with the bed's kubectl (and helm): the forwarder is scaled to 0
    first, and the overlay or release named is deleted only once nothing is left; the
    annotator's Node annotations go after it."""
    assert all(contract.ANCHOR_IPV4 in a for a in install.node_annotations().values())

    status = install.uninstall()

    printed = capsys.readouterr().out
    assert status == 0, printed
    steps = [line[:2] for line in printed.splitlines() if line[:1].isdigit() and line[1] == "."]
    assert steps == ["1.", "2.", "3.", "4.", "5.", "6."]
    assert "nothing is left" in printed
    assert world.do.firewalls() == [] and world.do.reserved_ips() == {}
    assert not install.forwarder_exists()
    for name, written in install.node_annotations().items():
        assert not set(ANNOTATOR_ANNOTATIONS) & set(written), name


def test_a_relay_install_with_narrowed_namespaces_is_cleaned_everywhere(
    install: Install, world: DoksWorld, kube: KubeBed, capsys: pytest.CaptureFixture[str]
) -> None:
    """Relay mode's ``.env`` names no cluster address (the function never called it): the
    command takes kubectl's. ``NAMESPACES`` narrowed after the Service was placed leaves its
    finalizer outside them: the command cleans that namespace too."""
    relay = {k: v for k, v in install.env.items() if k not in ("KUBE_API_URL", "KUBE_CA_DATA")}
    relay |= {"CLUSTER_ACCESS": "relay", "NAMESPACES": "somewhere-else"}

    status = install.uninstall(relay)

    printed = capsys.readouterr().out
    assert status == 0, printed
    api = kube.core.read_namespaced_service("api", install.namespace)
    assert not api.metadata.finalizers
    assert not set(contract.STATUS_ANNOTATIONS) & set(api.metadata.annotations)
    assert world.do.firewalls() == [] and world.do.reserved_ips() == {}


def test_something_left_keeps_the_cluster_side_and_fails(
    install: Install, world: DoksWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    """A firewall DigitalOcean will not delete: the command names it, exits 1, and leaves
    the cluster side in place, so the function's credentials still work for the next try."""
    world.do.fail_next("DELETE", "/v2/firewalls/{firewall_id}", 403, times=1000)

    status = install.uninstall()

    printed = capsys.readouterr().out
    assert status == 1, printed
    [firewall] = world.do.firewalls()
    assert f"firewall {firewall['name']}" in printed and "run this again" in printed
    assert install.forwarder_exists()
    world.do.clear_faults()
    assert install.uninstall() == 0
    assert world.do.firewalls() == []
