"""The two ways to install the cluster side, checked against the real control plane: the
kustomize overlay a user copies, and the Helm chart. Both applied with a server-side dry run,
both granting the same RBAC, both running the same pods."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from floating_ip_forwarder.dead_nodes import node_events
from testbed import helm as helm_cli
from testbed.controlplane import REPO, ControlPlane
from testbed.manifests import Doc, kustomize
from tests.install.test_component import code_config_map, code_folders

DEPLOY = REPO / "deploy"
SETTINGS = (
    "functionUrl=https://faas-nyc1-2ef2e6cc.doserverless.co/api/v1/web/fn-1/floating-ip/reconcile",
    "clusterId=0f1e2d3c-4b5a-4697-8877-665544332211",
    "webSecret.value=a-secret-of-at-least-16-chars",
)
HASH_SUFFIX = re.compile(r"-[a-z0-9]{10}$")
"""What kustomize appends to a generated name (a plain name may end in "-nodes-code")."""
RBAC_KINDS = ("ServiceAccount", "ClusterRole", "Role", "ClusterRoleBinding", "RoleBinding")


@pytest.fixture(scope="session")
def helm(tmp_path_factory: pytest.TempPathFactory) -> helm_cli.Helm:
    return helm_cli.Helm(helm_cli.binary(), tmp_path_factory.mktemp("helm-home"))


@pytest.fixture
def user_overlay(tmp_path: Path) -> Iterator[Path]:
    """The example overlay as a user has it after their three edits: a copy of the shipped
    folders with secret.env written (the URL and cluster id placeholders stay)."""
    shutil.copytree(DEPLOY, tmp_path / "deploy", ignore=shutil.ignore_patterns("secret.env"))
    shutil.copytree(REPO / "charts", tmp_path / "charts", symlinks=True)
    # The code the base's Component and the chart's files/code (a link) both ship.
    shutil.copytree(
        REPO / "in-cluster", tmp_path / "in-cluster", ignore=shutil.ignore_patterns("__pycache__")
    )
    (tmp_path / "deploy" / "example" / "secret.env").write_text("WEB_SECRET=users-own-secret\n")
    yield tmp_path / "deploy" / "example"


def dry_run(control_plane: ControlPlane, docs: list[Doc]) -> str:
    """``kubectl apply --dry-run=server`` of ``docs``; the Namespaces among them are created for
    real first, since a dry-run Namespace does not exist for the objects inside it."""
    namespaces = [d for d in docs if d["kind"] == "Namespace"]
    if namespaces:
        kubectl_apply(control_plane, namespaces)
    return kubectl_apply(control_plane, docs, "--dry-run=server").stdout


def kubectl_apply(
    control_plane: ControlPlane, docs: list[Doc], *flags: str
) -> subprocess.CompletedProcess[str]:
    """``kubectl apply`` of ``docs``; it must succeed (its warnings are on stderr)."""
    done = subprocess.run(
        [
            control_plane.kubectl,
            f"--kubeconfig={control_plane.kubeconfig_path}",
            *("apply", *flags, "-f", "-"),
        ],
        input=yaml.safe_dump_all(docs),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done


def parse(text: str) -> list[Doc]:
    return [d for d in yaml.safe_load_all(text) if d]


def rbac(docs: list[Doc]) -> set[tuple[Any, ...]]:
    """Each identity and grant, with names and what they allow (labels and hashes aside)."""
    out: set[tuple[Any, ...]] = set()
    for doc in docs:
        kind, meta = doc["kind"], doc["metadata"]
        if kind not in RBAC_KINDS:
            continue
        key = (kind, meta["name"], meta.get("namespace"))
        if "rules" in doc:
            rules = {
                (g, r, v)
                for rule in doc["rules"]
                for g in rule["apiGroups"]
                for r in rule["resources"]
                for v in rule["verbs"]
            }
            out.add((*key, frozenset(rules)))
        elif "roleRef" in doc:
            subjects = frozenset(
                (s["kind"], s["name"], s.get("namespace")) for s in doc["subjects"]
            )
            out.add((*key, doc["roleRef"]["name"], subjects))
        else:
            out.add(key)
    return out


def pod_spec(docs: list[Doc], kind: str) -> Doc:
    """The pod template's spec with generated names reduced to their stem (kustomize's hash
    suffix), the release's own labels left out and volumes in name order (the kubelet mounts
    them by name): what the kubelet would run."""
    [found] = [d for d in docs if d["kind"] == kind]
    spec: Doc = found["spec"]["template"]["spec"]
    text = yaml.safe_dump(spec)
    for doc in docs:
        name = doc["metadata"]["name"]
        if doc["kind"] in ("ConfigMap", "Secret") and HASH_SUFFIX.search(name):
            text = text.replace(name, name[:-11])
    reduced: Doc = yaml.safe_load(text)
    reduced["volumes"] = sorted(reduced.get("volumes", []), key=lambda v: v["name"])
    for container in reduced.get("initContainers", []) + reduced["containers"]:
        if "volumeMounts" in container:
            container["volumeMounts"].sort(key=lambda m: m["name"])
    return reduced


# --- kustomize ---------------------------------------------------------------------------------


def test_the_users_overlay_applies_with_a_server_side_dry_run(
    control_plane: ControlPlane, user_overlay: Path
) -> None:
    docs = kustomize(control_plane.kubectl, user_overlay)
    out = dry_run(control_plane, docs)
    for kind, name in [
        ("deployment.apps", "event-forwarder"),
        ("daemonset.apps", "floating-ip-node-annotator"),
        ("serviceaccount", "floating-ip-function"),
    ]:
        assert f"{kind}/{name}" in out


def test_the_users_overlay_needs_three_edits_at_most() -> None:
    """The overlay names FUNCTION_URL, CLUSTER_ID and secret.env, and nothing else to edit."""
    overlay = yaml.safe_load((DEPLOY / "example" / "kustomization.yaml").read_text())
    [settings] = overlay["configMapGenerator"]
    assert [s.split("=")[0] for s in settings["literals"]] == ["FUNCTION_URL", "CLUSTER_ID"]
    [secret] = overlay["secretGenerator"]
    assert secret["envs"] == ["secret.env"]
    assert overlay["resources"] == ["../base"]


def test_the_pod_mode_component_drops_the_node_annotator(
    control_plane: ControlPlane, user_overlay: Path
) -> None:
    text = (user_overlay / "kustomization.yaml").read_text()
    text += "components:\n  - ../components/no-node-annotator\n"
    (user_overlay / "kustomization.yaml").write_text(text)
    docs = kustomize(control_plane.kubectl, user_overlay)
    assert not [d for d in docs if "node-annotator" in d["metadata"]["name"]]
    assert [d for d in docs if d["kind"] == "Deployment"]


# --- helm ------------------------------------------------------------------------------------


CI_VALUES = sorted((helm_cli.CHART / "ci").glob("*-values.yaml"))


@pytest.mark.parametrize(
    "values", [None, *CI_VALUES], ids=["as-shipped", *(p.name for p in CI_VALUES)]
)
def test_helm_lint_passes_as_shipped_and_with_each_ci_values_file(
    helm: helm_cli.Helm, values: Path | None
) -> None:
    """chart-testing's convention: ci/*-values.yaml are the values the chart is linted and
    installed with; as shipped (the required values empty) it lints too."""
    given = ["-f", str(values)] if values else []
    done = helm.run("lint", "--strict", str(helm_cli.CHART), *given)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 chart(s) failed" in done.stdout


def test_the_ci_values_files_render(helm: helm_cli.Helm) -> None:
    assert len(CI_VALUES) >= 2
    for values in CI_VALUES:
        done = helm.run(
            "template", "x", str(helm_cli.CHART), "-n", "floating-ip", "-f", str(values)
        )
        assert done.returncode == 0, done.stderr
        assert "kind: Deployment" in done.stdout


def test_the_chart_applies_with_a_server_side_dry_run(
    helm: helm_cli.Helm, control_plane: ControlPlane, namespace: str
) -> None:
    docs = parse(helm.template(namespace, *SETTINGS))
    out = dry_run(control_plane, docs)
    assert "deployment.apps/event-forwarder" in out
    assert "secret/event-forwarder" in out


def test_the_chart_can_leave_out_the_node_annotator(helm: helm_cli.Helm) -> None:
    docs = parse(helm.template("floating-ip", *SETTINGS, "nodeAnnotator.enabled=false"))
    assert not [d for d in docs if "node-annotator" in d["metadata"]["name"]]
    assert [d for d in docs if d["kind"] == "Deployment"]


def test_the_chart_can_reference_an_existing_secret(helm: helm_cli.Helm) -> None:
    docs = parse(
        helm.template("floating-ip", *SETTINGS[:2], "webSecret.existingSecret=my-web-secret")
    )
    assert not [
        d for d in docs if d["kind"] == "Secret" and d["metadata"]["name"] == "event-forwarder"
    ]
    [container] = pod_spec(docs, "Deployment")["containers"]
    [ref] = [e for e in container["env"] if e["name"] == "WEB_SECRET"]
    assert ref["valueFrom"]["secretKeyRef"]["name"] == "my-web-secret"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("functionUrl=http://faas.example/x", "/functionUrl"),
        ("clusterId=my-cluster", "/clusterId"),
        ("webSecret.value=short", "/webSecret"),
        ("forwarder.resyncPeriod=often", "/forwarder/resyncPeriod"),
        ("forwarder.logLevel=loud", "/forwarder/logLevel"),
        ("namespaces={Apps}", "/namespaces/0"),
        ("functionURL=https://typo.example/", "functionURL"),
    ],
)
def test_the_schema_rejects_a_bad_value_naming_it(
    helm: helm_cli.Helm, value: str, message: str
) -> None:
    with pytest.raises(
        RuntimeError, match="values don't meet the specifications of the schema"
    ) as caught:
        helm.template("floating-ip", *SETTINGS, value)
    assert message in str(caught.value)


def test_each_missing_required_value_is_named_with_where_to_find_it(helm: helm_cli.Helm) -> None:
    with pytest.raises(RuntimeError, match="set the required values") as caught:
        helm.template("floating-ip")
    message = str(caught.value)
    assert "functionUrl: the function's web URL (doctl serverless functions get" in message
    assert "clusterId: the DOKS cluster's id (doctl kubernetes cluster get" in message
    assert "webSecret.value" in message
    assert "webSecret.existingSecret" in message
    assert "minLength" not in message


def test_a_missing_secret_is_named_alone(helm: helm_cli.Helm) -> None:
    with pytest.raises(RuntimeError, match="set the required values") as caught:
        helm.template("floating-ip", *SETTINGS[:2])
    message = str(caught.value)
    assert "webSecret.value (the shared secret" in message
    assert "functionUrl" not in message
    assert "clusterId" not in message


def test_both_secrets_set_is_refused_naming_them(helm: helm_cli.Helm) -> None:
    with pytest.raises(
        RuntimeError, match=r"set only one of webSecret\.value and webSecret\.existingSecret"
    ):
        helm.template("floating-ip", *SETTINGS, "webSecret.existingSecret=mine")


def test_a_short_secret_is_refused_without_quoting_it(helm: helm_cli.Helm) -> None:
    with pytest.raises(RuntimeError, match="/webSecret/value") as caught:
        helm.template("floating-ip", *SETTINGS[:2], "webSecret.value=short-secret")
    assert "minLength: got 12, want 16" in str(caught.value)
    assert "short-secret" not in str(caught.value)


# --- both ------------------------------------------------------------------------------------


@pytest.mark.parametrize("scoped", [False, True], ids=["cluster-wide", "namespaced"])
def test_kustomize_and_helm_grant_the_same_rbac(
    helm: helm_cli.Helm, control_plane: ControlPlane, user_overlay: Path, scoped: bool
) -> None:
    values = list(SETTINGS)
    if scoped:
        # The component's example namespace, "apps", on both sides.
        text = (user_overlay / "kustomization.yaml").read_text()
        text += "components:\n  - ../components/namespaced\n"
        (user_overlay / "kustomization.yaml").write_text(text)
        values.append("namespaces={apps}")
    from_kustomize = rbac(kustomize(control_plane.kubectl, user_overlay))
    from_helm = rbac(parse(helm.template("floating-ip", *values)))
    assert from_kustomize == from_helm
    assert any(k[0] == "ClusterRole" and k[1] == "floating-ip-function" for k in from_helm)


def test_relay_mode_grants_the_forwarder_the_functions_writes_alike_in_both_installs(
    helm: helm_cli.Helm, control_plane: ControlPlane, user_overlay: Path
) -> None:
    text = (user_overlay / "kustomization.yaml").read_text()
    (user_overlay / "kustomization.yaml").write_text(
        text + "components:\n  - ../components/relay\n"
    )
    docs = kustomize(control_plane.kubectl, user_overlay)
    from_helm = parse(helm.template("floating-ip", *SETTINGS, "clusterAccess=relay"))
    assert rbac(docs) == rbac(from_helm)
    [relay] = [
        d for d in docs if d["kind"] == "ClusterRole" and d["metadata"]["name"].endswith("-relay")
    ]
    granted = {(r, v) for rule in relay["rules"] for r in rule["resources"] for v in rule["verbs"]}
    assert granted == {
        ("services", "patch"),
        ("services/status", "patch"),
        ("events", "create"),
        ("events", "patch"),
    }
    settings = [
        d["data"]
        for d in (*docs, *from_helm)
        if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("event-forwarder")
    ]
    assert [s["CLUSTER_ACCESS"] for s in settings] == ["relay", "relay"]


@pytest.mark.parametrize("relayed", [False, True], ids=["callback", "relay"])
def test_the_forwarder_may_create_events_about_nodes_in_default_alike_in_both_installs(
    helm: helm_cli.Helm, control_plane: ControlPlane, user_overlay: Path, relayed: bool
) -> None:
    """Exactly ``create`` on Events, in the one namespace an Event about a Node can be in."""
    values = list(SETTINGS)
    if relayed:
        text = (user_overlay / "kustomization.yaml").read_text()
        text += "components:\n  - ../components/relay\n"
        (user_overlay / "kustomization.yaml").write_text(text)
        values.append("clusterAccess=relay")
    name = "floating-ip-event-forwarder-node-events"
    forwarder = frozenset({("ServiceAccount", "event-forwarder", "floating-ip")})
    create = frozenset({("", "events", "create")})
    for docs in (
        kustomize(control_plane.kubectl, user_overlay),
        parse(helm.template("floating-ip", *values)),
    ):
        grants = rbac(docs)
        assert ("Role", name, node_events.NAMESPACE, create) in grants
        assert ("RoleBinding", name, node_events.NAMESPACE, name, forwarder) in grants


def test_kustomize_and_helm_run_the_same_pods(
    helm: helm_cli.Helm, control_plane: ControlPlane, user_overlay: Path
) -> None:
    from_kustomize = kustomize(control_plane.kubectl, user_overlay)
    from_helm = parse(helm.template("floating-ip", *SETTINGS))
    for kind in ("Deployment", "DaemonSet"):
        assert pod_spec(from_kustomize, kind) == pod_spec(from_helm, kind), kind
    code = {
        d["metadata"]["name"][:-11]: d["data"]
        for d in from_kustomize
        if d["kind"] == "ConfigMap" and d["metadata"]["name"][:-11].endswith("-code")
    }
    charted = {
        d["metadata"]["name"]: d["data"]
        for d in from_helm
        if d["kind"] == "ConfigMap" and d["metadata"]["name"].endswith("-code")
    }
    assert code == charted
    assert set(code) == {code_config_map(folder) for folder in code_folders()}


def test_the_notes_say_what_to_do_next(helm: helm_cli.Helm) -> None:
    sets = [a for v in SETTINGS for a in ("--set", v)]
    done = helm.run(
        "install", "x", str(helm_cli.CHART), "--dry-run=client", "-n", "floating-ip", *sets
    )
    assert done.returncode == 0, done.stderr
    notes = done.stdout[done.stdout.index("NOTES:") :]
    assert "deploy/function-env.sh" in notes
    assert "tools/doctor.py" in notes
