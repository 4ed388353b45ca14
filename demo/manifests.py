"""The shipped manifests, applied as a user would apply them, and what the demo reads back from
them: the forwarder's ServiceAccount, namespace and settings, the function's identity, the
annotator's ServiceAccount."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from demo.errors import DemoError
from testbed.controlplane import ControlPlane

REPO = Path(__file__).resolve().parents[1]
FORWARDER_BASE = REPO / "deploy" / "base"
RELAY_RBAC = REPO / "deploy" / "components" / "relay" / "rbac.yaml"
"""Relay mode: the writes the forwarder makes for the function."""
ANNOTATOR_RBAC = REPO / "deploy" / "annotator-pod-mode" / "rbac.yaml"


@dataclass(frozen=True)
class Account:
    namespace: str
    name: str


@dataclass(frozen=True)
class ForwarderDeploy:
    account: Account
    """The ServiceAccount the forwarder's Deployment runs as (its namespace holds the Lease)."""
    settings: dict[str, str]
    """The ConfigMap the Deployment takes its environment from."""
    function_account: Account | None
    """The function's identity, when the base ships one."""


def kubectl(control_plane: ControlPlane, *args: str) -> str:
    argv = [control_plane.kubectl, "--kubeconfig", str(control_plane.kubeconfig_path), *args]
    # argv is built here, not taken from input
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)  # noqa: S603
    if done.returncode != 0:
        raise DemoError(f"kubectl {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout


def apply_forwarder_base(control_plane: ControlPlane) -> ForwarderDeploy:
    """``kubectl apply -k`` the forwarder's kustomize base; what the demo needs from it.

    The Deployment itself never runs (no controller manager here): the demo runs its program
    with the same ServiceAccount and settings.
    """
    if not (FORWARDER_BASE / "kustomization.yaml").is_file():
        raise DemoError(f"the forwarder's kustomize base is missing ({FORWARDER_BASE})")
    docs = _documents(kubectl(control_plane, "kustomize", str(FORWARDER_BASE)))
    kubectl(control_plane, "apply", "-k", str(FORWARDER_BASE))
    return read_forwarder_deploy(docs)


def read_forwarder_deploy(docs: list[dict[str, Any]]) -> ForwarderDeploy:
    deployments = [d for d in docs if d.get("kind") == "Deployment"]
    if len(deployments) != 1:
        raise DemoError(
            f"expected one Deployment in the forwarder's base, found {len(deployments)}"
        )
    deployment = deployments[0]
    namespace = str(deployment["metadata"].get("namespace", "default"))
    pod = deployment["spec"]["template"]["spec"]
    account = Account(namespace, str(pod.get("serviceAccountName", "default")))
    config_names = {
        source["configMapRef"]["name"]
        for container in pod["containers"]
        for source in container.get("envFrom", [])
        if "configMapRef" in source
    }
    settings: dict[str, str] = {}
    for doc in docs:
        if doc.get("kind") == "ConfigMap" and doc["metadata"]["name"] in config_names:
            settings.update({str(k): str(v) for k, v in (doc.get("data") or {}).items()})
    # The function's account is the one the forwarder may mint tokens of (it holds none).
    function = [
        Account(str(d["metadata"].get("namespace", namespace)), str(name))
        for d in docs
        if d.get("kind") == "Role"
        for rule in d.get("rules") or ()
        if "serviceaccounts/token" in (rule.get("resources") or ())
        for name in rule.get("resourceNames") or ()
    ]
    return ForwarderDeploy(account, settings, function[0] if len(function) == 1 else None)


def apply_annotator_rbac(control_plane: ControlPlane, namespace: str) -> Account:
    """The annotator's pod-mode RBAC in ``namespace``, as its README says to apply it."""
    kubectl(control_plane, "apply", "-n", namespace, "-f", str(ANNOTATOR_RBAC))
    docs = _documents(ANNOTATOR_RBAC.read_text())
    (name,) = [d["metadata"]["name"] for d in docs if d.get("kind") == "ServiceAccount"]
    return Account(namespace, str(name))


def _documents(text: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(text) if isinstance(doc, dict)]
