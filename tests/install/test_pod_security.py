"""Pod Security, declared and tested: each install's pods, applied into a namespace labelled
as the install's Namespace manifest declares (the chart: as its docs say), draw no warning
from the bed's apiserver (its PodSecurity admission, on by default); without the node
annotator's DaemonSet the namespace enforces restricted, and the forwarder passes it. The
DaemonSet in a restricted namespace is refused by name (the test has teeth)."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from testbed import helm as helm_cli
from testbed.controlplane import ControlPlane
from testbed.manifests import Doc, kustomize
from tests.install.test_install import SETTINGS, helm, kubectl_apply, parse, user_overlay

__all__ = ["helm", "user_overlay"]  # fixtures, used by name
LEVEL = "pod-security.kubernetes.io/enforce"
WORKLOADS = ("Deployment", "DaemonSet")


def namespace_like(control_plane: ControlPlane, labels: dict[str, str]) -> str:
    """A fresh namespace with ``labels`` (the manifest's namespace is shared by other tests)."""
    name = f"ps-{uuid.uuid4().hex[:8]}"
    doc = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}
    apply(control_plane, [doc])
    return name


def apply(control_plane: ControlPlane, docs: list[Doc], *flags: str) -> str:
    """``kubectl apply``; its warnings (stderr)."""
    return kubectl_apply(control_plane, docs, *flags).stderr


def workloads_into(docs: list[Doc], namespace: str) -> list[Doc]:
    return [
        {**doc, "metadata": {**doc["metadata"], "namespace": namespace}}
        for doc in docs
        if doc["kind"] in WORKLOADS
    ]


def declared_labels(docs: list[Doc]) -> dict[str, str]:
    [namespace] = [d for d in docs if d["kind"] == "Namespace"]
    labels: dict[str, Any] = namespace["metadata"].get("labels") or {}
    return {k: str(v) for k, v in labels.items() if k.startswith("pod-security.kubernetes.io/")}


def with_component(overlay: Path, component: str) -> Path:
    text = (overlay / "kustomization.yaml").read_text()
    (overlay / "kustomization.yaml").write_text(
        text + f"components:\n  - ../components/{component}\n"
    )
    return overlay


def test_the_install_declares_the_level_it_needs_and_draws_no_warning(
    control_plane: ControlPlane, user_overlay: Path
) -> None:
    docs = kustomize(control_plane.kubectl, user_overlay)
    labels = declared_labels(docs)
    assert labels[LEVEL] == "privileged", "the DaemonSet needs the host's network"
    namespace = namespace_like(control_plane, labels)
    warnings = apply(control_plane, workloads_into(docs, namespace), "--dry-run=server")
    assert warnings == ""


def test_without_the_daemonset_the_namespace_enforces_restricted_and_the_forwarder_passes(
    control_plane: ControlPlane, user_overlay: Path
) -> None:
    docs = kustomize(control_plane.kubectl, with_component(user_overlay, "no-node-annotator"))
    labels = declared_labels(docs)
    assert labels[LEVEL] == "restricted"
    namespace = namespace_like(control_plane, labels)
    moved = workloads_into(docs, namespace)
    assert [d["kind"] for d in moved] == ["Deployment"]
    assert apply(control_plane, moved, "--dry-run=server") == ""


def test_the_daemonset_in_a_restricted_namespace_is_named_for_its_host_network(
    control_plane: ControlPlane, user_overlay: Path
) -> None:
    docs = kustomize(control_plane.kubectl, user_overlay)
    namespace = namespace_like(control_plane, {LEVEL: "restricted"})
    [daemonset] = [d for d in workloads_into(docs, namespace) if d["kind"] == "DaemonSet"]
    warnings = apply(control_plane, [daemonset], "--dry-run=server")
    assert "hostNetwork=true" in warnings
    assert "seccompProfile" not in warnings, "every container sets RuntimeDefault"
    assert "allowPrivilegeEscalation" not in warnings
    assert "runAsNonRoot" not in warnings


def test_the_charts_pods_meet_the_levels_its_values_document(
    helm: helm_cli.Helm, control_plane: ControlPlane, user_overlay: Path
) -> None:
    """values.yaml: privileged with the node annotator, restricted without it."""
    labels = declared_labels(kustomize(control_plane.kubectl, user_overlay))
    namespace = namespace_like(control_plane, labels)
    docs = parse(helm.template("floating-ip", *SETTINGS))
    assert apply(control_plane, workloads_into(docs, namespace), "--dry-run=server") == ""
    restricted = namespace_like(control_plane, {LEVEL: "restricted"})
    alone = parse(helm.template("floating-ip", *SETTINGS, "nodeAnnotator.enabled=false"))
    moved = workloads_into(alone, restricted)
    assert [d["kind"] for d in moved] == ["Deployment"]
    assert apply(control_plane, moved, "--dry-run=server") == ""
