"""What ships: the image's files, the kustomize base (least-privilege RBAC, a hardened
Deployment running the official Python image on code from ConfigMaps), the namespaced
component, and the command printing the function's identity."""

from __future__ import annotations

import base64
import json
import re
import shutil
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from floating_ip_common import contract
from testbed.controlplane import ControlPlane
from testbed.forwarder_harness import (
    BASE,
    DEPLOY,
    DOCKERFILE,
    FORWARDER_ACCOUNT,
    FUNCTION_ACCOUNT,
    NAMESPACE,
    Shipped,
    kubectl,
    write_overlay,
)
from testbed.kube import KubeBed, Port
from testbed.layout import REPO
from testbed.python_imports import absolute_imports
from testbed.receiver import Receiver
from tests.forwarder.conftest import StartForwarder
from tests.forwarder.test_forwarding import started, web
from tests.install.test_component import code_config_map, code_folders

FUNCTION_ENV = DEPLOY / "function-env.sh"
"""The function's modules the image ships: standard library only, shared so they cannot drift."""
Call = tuple[str, str, Any]
"""``(method, path, body)``."""


def rendered(control_plane: ControlPlane, directory: Path) -> list[dict[str, Any]]:
    text = kubectl(control_plane, "kustomize", str(directory))
    return [doc for doc in yaml.safe_load_all(text) if doc]


def find(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    """The object named ``name``, or generated from it (``name-<hash>``)."""
    pattern = re.compile(re.escape(name) + r"(-[a-z0-9]{10})?")
    (found,) = [d for d in docs if d["kind"] == kind and pattern.fullmatch(d["metadata"]["name"])]
    return found


def rules(doc: dict[str, Any]) -> set[tuple[str, str, str]]:
    return {
        (group, resource, verb)
        for rule in doc["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


class Api:
    """Requests with one bearer token, answering only the status code."""

    def __init__(self, control_plane: ControlPlane, token: str) -> None:
        self.url = control_plane.url
        self.token = token
        self.context = ssl.create_default_context(cafile=str(control_plane.ca.ca_file))

    def status(self, method: str, path: str, body: Any = None) -> int:
        return self.call(method, path, body)[0]

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, dict[str, Any]]:
        """The status code and the decoded answer."""
        data = json.dumps(body).encode() if body is not None else None
        content_type = "application/merge-patch+json" if method == "PATCH" else "application/json"
        request = urllib.request.Request(
            self.url + path,
            data=data,
            method=method,
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": content_type},
        )
        try:
            with urllib.request.urlopen(request, context=self.context, timeout=10) as reply:
                # A watch's answer is a stream: only the status matters then.
                if "watch=" in path:
                    return int(reply.status), {}
                return int(reply.status), json.loads(reply.read() or b"{}")
        except urllib.error.HTTPError as error:
            return int(error.code), {}


# --- the image ---------------------------------------------------------------------------------


def test_the_image_needs_only_the_standard_library_and_the_shared_modules(image_app: Path) -> None:
    shipped = {p.relative_to(image_app).parts[0] for p in image_app.rglob("*.py")}
    assert shipped == {"floating_ip_common", "floating_ip_forwarder"}
    allowed = set(sys.stdlib_module_names) | shipped
    for path in image_app.rglob("*.py"):
        for name in absolute_imports(path):
            assert name.split(".")[0] in allowed, f"{path.name} imports {name}"
    dockerfile = DOCKERFILE.read_text()
    assert "\nUSER 65532:65532\n" in dockerfile
    assert "pip install" not in dockerfile
    assert 'ENTRYPOINT ["python", "-m", "floating_ip_forwarder.app"]' in dockerfile


def test_a_bad_configuration_exits_at_once_naming_each_problem(
    start_forwarder: StartForwarder, web_secret: str
) -> None:
    forwarder = start_forwarder(wait=False, FUNCTION_URL="", RESYNC_PERIOD="often")
    forwarder.expected_exit = 2
    assert forwarder.popen is not None
    assert forwarder.popen.wait(30) == 2
    [entry] = [e for e in forwarder.logs() if e.get("level") == "error"]
    assert entry["message"] == "invalid configuration"
    assert any("FUNCTION_URL is not set" in p for p in entry["problems"])
    assert any("RESYNC_PERIOD: 'often' is not a duration" in p for p in entry["problems"])
    assert web_secret not in forwarder.log.read_text()


# --- the kustomize base --------------------------------------------------------------------


def test_the_base_renders_least_privilege_rbac_and_a_hardened_deployment(
    control_plane: ControlPlane,
) -> None:
    docs = rendered(control_plane, BASE)
    assert rules(find(docs, "ClusterRole", "floating-ip-event-forwarder-nodes")) == {
        ("", "nodes", "list"),
        ("", "nodes", "watch"),
    }
    assert rules(find(docs, "ClusterRole", "floating-ip-event-forwarder")) | rules(
        find(docs, "ClusterRole", "floating-ip-event-forwarder-nodes")
    ) == {
        (group, kind, verb)
        for group, kind in [
            ("", "services"),
            ("", "pods"),
            ("", "nodes"),
            ("discovery.k8s.io", "endpointslices"),
        ]
        for verb in ("list", "watch")
    }
    election = find(docs, "Role", "event-forwarder-election")
    assert election["metadata"]["namespace"] == NAMESPACE
    assert rules(election) == {
        ("coordination.k8s.io", "leases", verb) for verb in ("get", "create", "update")
    }
    minting = find(docs, "Role", "event-forwarder-function-token")
    assert minting["metadata"]["namespace"] == NAMESPACE
    assert minting["rules"] == [
        {
            "apiGroups": [""],
            "resources": ["serviceaccounts/token"],
            "resourceNames": [FUNCTION_ACCOUNT],
            "verbs": ["create"],
        }
    ]
    assert not [d for d in docs if d["kind"] == "Secret" and d.get("type", "").endswith("token")]
    function = rules(find(docs, "ClusterRole", "floating-ip-function")) | rules(
        find(docs, "ClusterRole", "floating-ip-function-nodes")
    )
    assert function == {
        ("", "services", "get"),
        ("", "services", "list"),
        ("", "services", "patch"),
        ("", "services/status", "patch"),
        ("", "pods", "get"),
        ("", "pods", "list"),
        ("", "nodes", "get"),
        ("", "nodes", "list"),
        ("discovery.k8s.io", "endpointslices", "get"),
        ("discovery.k8s.io", "endpointslices", "list"),
        ("", "events", "create"),
        ("", "events", "patch"),
    }

    deployment = find(docs, "Deployment", "event-forwarder")
    pod = deployment["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert pod["serviceAccountName"] == FORWARDER_ACCOUNT
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 65532
    # Nothing to build: the official image by digest, the code mounted read-only.
    assert re.fullmatch(r"python:3\.11-slim@sha256:[0-9a-f]{64}", container["image"])
    assert container["command"] == ["python", "-m", "floating_ip_forwarder.app"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert env["PYTHONPATH"] == "/app"
    volumes = {v["name"]: v["configMap"]["name"] for v in pod["volumes"]}
    mounts = {m["mountPath"]: volumes[m["name"]] for m in container["volumeMounts"]}
    assert all(m["readOnly"] for m in container["volumeMounts"])
    # One hash-suffixed ConfigMap per code folder (tests/install/test_component.py checks
    # which folders): each mount names the generated ConfigMap of its folder.
    assert mounts == {
        f"/app/{folder}": find(docs, "ConfigMap", code_config_map(folder))["metadata"]["name"]
        for folder in code_folders()
        if folder.split("/")[0] in ("floating_ip_common", "floating_ip_forwarder")
    }
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert set(container["resources"]) == {"requests", "limits"}
    assert container["resources"]["limits"]["memory"] == "128Mi"
    assert deployment["spec"]["replicas"] == 2
    secret_ref = next(e for e in container["env"] if e["name"] == "WEB_SECRET")
    generated = find(docs, "Secret", "event-forwarder")
    assert secret_ref["valueFrom"]["secretKeyRef"]["name"] == generated["metadata"]["name"]


def test_the_shipped_forwarder_identity_can_do_what_it_needs_and_nothing_more(
    shipped: Shipped, control_plane: ControlPlane, kube: KubeBed, namespace: str
) -> None:
    api = Api(control_plane, kube.mint_token(NAMESPACE, FORWARDER_ACCOUNT))
    kube.create_service(namespace, "web", [Port(80)])
    leases = f"/apis/coordination.k8s.io/v1/namespaces/{NAMESPACE}/leases"
    lease: dict[str, Any] = {"metadata": {"name": f"probe-{uuid.uuid4().hex[:6]}"}, "spec": {}}
    allowed: list[Call] = [
        ("GET", "/api/v1/services?limit=1", None),
        ("GET", "/api/v1/services?watch=1&timeoutSeconds=1", None),
        ("GET", "/api/v1/pods?limit=1", None),
        ("GET", "/api/v1/nodes?limit=1", None),
        ("GET", "/apis/discovery.k8s.io/v1/endpointslices?limit=1", None),
        ("POST", leases, lease),
        ("GET", f"{leases}/{lease['metadata']['name']}", None),
    ]
    for method, path, body in allowed:
        assert api.status(method, path, body) in (200, 201), (method, path)
    forbidden: list[Call] = [
        ("GET", f"/api/v1/namespaces/{namespace}/services/web", None),
        ("PATCH", f"/api/v1/namespaces/{namespace}/services/web", {"metadata": {}}),
        ("GET", "/api/v1/secrets?limit=1", None),
        ("GET", "/api/v1/configmaps?limit=1", None),
        ("POST", f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases", lease),
        ("DELETE", f"{leases}/{lease['metadata']['name']}", None),
    ]
    for method, path, body in forbidden:
        assert api.status(method, path, body) == 403, (method, path)


def test_the_forwarder_watches_the_whole_cluster_with_the_shipped_identity(
    start_forwarder: StartForwarder,
    receiver: Receiver,
    kube: KubeBed,
    namespace: str,
    nodes: Callable[..., str],
) -> None:
    n1 = nodes("n1")
    forwarder = start_forwarder("")  # NAMESPACES empty, as shipped
    started(receiver)
    since = time.monotonic()
    subject = web(kube, namespace, {"web-1": n1})
    receiver.wait_subject(subject, since)
    assert [e for e in forwarder.logs() if e.get("level") in ("error", "warning")] == []


# --- the function's identity ---------------------------------------------------------------


def function_env(control_plane: ControlPlane, home: Path) -> tuple[dict[str, str], str]:
    done = subprocess.run(
        [str(FUNCTION_ENV), f"--kubeconfig={control_plane.kubeconfig_path}"],
        # HOME: kubectl keeps a discovery cache under it (else in the working directory).
        env={"KUBECTL": control_plane.kubectl, "PATH": "/usr/bin:/bin", "HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    lines = dict(line.split("=", 1) for line in done.stdout.splitlines())
    return lines, done.stderr


def assert_function_rights(api: Api, namespace: str, node: str) -> None:
    event = {
        "metadata": {"name": f"probe.{uuid.uuid4().hex[:8]}"},
        "involvedObject": {"kind": "Service", "namespace": namespace, "name": "web"},
        "reason": "Probe",
        "message": "rights check",
        "type": "Normal",
    }
    services = f"/api/v1/namespaces/{namespace}/services"
    events = f"/api/v1/namespaces/{namespace}/events"
    allowed: list[Call] = [
        ("GET", "/api/v1/nodes", None),
        ("GET", f"/api/v1/nodes/{node}", None),
        ("GET", services, None),
        ("GET", f"{services}/web", None),
        ("PATCH", f"{services}/web", {"metadata": {"annotations": {contract.STATUS: "ok"}}}),
        ("PATCH", f"{services}/web", {"spec": {"externalIPs": ["10.17.0.5"]}}),
        ("PATCH", f"{services}/web/status", {"status": {}}),
        ("GET", f"/api/v1/namespaces/{namespace}/pods", None),
        ("GET", f"/apis/discovery.k8s.io/v1/namespaces/{namespace}/endpointslices", None),
        ("POST", events, event),
        ("PATCH", f"{events}/{event['metadata']['name']}", {"count": 2}),
    ]
    for method, path, body in allowed:
        assert api.status(method, path, body) in (200, 201), (method, path)
    forbidden: list[Call] = [
        ("DELETE", f"{services}/web", None),
        ("GET", f"{services}/web/status", None),
        ("PUT", f"{services}/web/status", {"metadata": {"name": "web"}}),
        ("GET", f"/api/v1/namespaces/{namespace}/secrets", None),
        ("PATCH", f"/api/v1/nodes/{node}", {"metadata": {"labels": {"x": "y"}}}),
        ("GET", f"/api/v1/namespaces/{namespace}/configmaps", None),
    ]
    for method, path, body in forbidden:
        assert api.status(method, path, body) == 403, (method, path)


def test_function_env_prints_where_the_cluster_is_and_no_credential(
    tmp_path: Path, shipped: Shipped, control_plane: ControlPlane
) -> None:
    lines, warning = function_env(control_plane, tmp_path)
    assert set(lines) == {"KUBE_API_URL", "KUBE_CA_DATA"}
    assert lines["KUBE_API_URL"] == control_plane.url
    assert base64.b64decode(lines["KUBE_CA_DATA"]) == control_plane.ca.ca_pem
    assert warning == ""


def test_the_forwarder_mints_short_lived_tokens_of_the_function_and_of_nothing_else(
    shipped: Shipped,
    control_plane: ControlPlane,
    kube: KubeBed,
    namespace: str,
    nodes: Callable[..., str],
) -> None:
    """The forwarder's shipped identity may mint a token of the function's ServiceAccount (the
    function's only credential) with the shortest lifetime, and of no other account; the
    minted token carries exactly the function's shipped rights."""
    node = nodes("n1")
    kube.create_service(namespace, "web", [Port(80)])
    forwarder = Api(control_plane, kube.mint_token(NAMESPACE, FORWARDER_ACCOUNT))
    accounts = f"/api/v1/namespaces/{NAMESPACE}/serviceaccounts"
    request = {"spec": {"expirationSeconds": contract.KUBE_TOKEN_SECONDS}}
    status, answer = forwarder.call("POST", f"{accounts}/{FUNCTION_ACCOUNT}/token", request)
    assert status == 201, answer
    assert_function_rights(Api(control_plane, answer["status"]["token"]), namespace, node)

    for other in (FORWARDER_ACCOUNT, "default", "floating-ip-node-annotator"):
        assert forwarder.status("POST", f"{accounts}/{other}/token", request) == 403, other
    kube.create_service_account(namespace, FUNCTION_ACCOUNT)  # the same name elsewhere
    elsewhere = f"/api/v1/namespaces/{namespace}/serviceaccounts/{FUNCTION_ACCOUNT}/token"
    assert forwarder.status("POST", elsewhere, request) == 403


def test_the_namespaced_component_confines_both_identities_to_listed_namespaces(
    shipped: Shipped,
    start_forwarder: StartForwarder,
    receiver: Receiver,
    control_plane: ControlPlane,
    kube: KubeBed,
    namespace: str,
    nodes: Callable[..., str],
    web_secret: str,
    tmp_path: Path,
) -> None:
    # A second installation beside the first (a name prefix keeps the two apart), with the
    # component's RoleBindings moved from its example namespace to this test's namespace.
    prefix = f"s{uuid.uuid4().hex[:5]}-"
    overlay = write_overlay(
        tmp_path / "scoped",
        secret=web_secret,
        function_url=receiver.url(),
        components=(DEPLOY / "components" / "namespaced",),
        extra=(
            f"namePrefix: {prefix}\n"
            "patches:\n"
            "  - target: {kind: RoleBinding, namespace: apps}\n"
            "    patch: |-\n"
            "      - op: replace\n"
            "        path: /metadata/namespace\n"
            f"        value: {namespace}\n"
        ),
    )
    docs = rendered(control_plane, overlay)
    kinds = {(d["kind"], d["metadata"]["name"]) for d in docs}
    assert ("ClusterRoleBinding", f"{prefix}floating-ip-event-forwarder") not in kinds
    assert ("ClusterRoleBinding", f"{prefix}floating-ip-function") not in kinds
    assert find(docs, "ConfigMap", f"{prefix}event-forwarder")["data"]["NAMESPACES"] == "apps"
    kubectl(control_plane, "apply", "-k", str(overlay))

    other = kube.create_namespace()
    node = nodes("n1")
    kube.create_service(namespace, "web", [Port(80)], annotations={contract.ADDRESS: "192.0.2.7"})
    function = Api(control_plane, kube.mint_token(NAMESPACE, f"{prefix}{FUNCTION_ACCOUNT}"))
    assert_function_rights(function, namespace, node)
    assert function.status("GET", f"/api/v1/namespaces/{other}/services") == 403
    assert function.status("GET", "/api/v1/services") == 403

    forwarder_account = f"{prefix}{FORWARDER_ACCOUNT}"
    scoped = start_forwarder(namespace, name="scoped", account=forwarder_account)
    started(receiver)
    since = time.monotonic()
    kube.annotate_service(namespace, "web", {contract.FIREWALL: "false"})
    receiver.wait_subject(f"{namespace}/web", since)
    assert [e for e in scoped.logs() if e.get("level") == "error"] == []

    # The same identity may not watch the whole cluster: it says so and never gets ready.
    wide = start_forwarder("", name="wide", account=forwarder_account, wait=False)
    wide.wait_metric("watch_errors", 1, kind="service")
    assert wide.get("/readyz")[0] == 503
    assert any(e.get("level") == "error" and "403" in str(e.get("error")) for e in wide.logs()), (
        "a 403 is logged as an error"
    )


def test_the_forwarder_runs_the_code_its_configmaps_mount(shipped: Shipped) -> None:
    """The process every test here starts is the Deployment's command on the ConfigMaps' files,
    read back from the API server; nothing else is on its path."""
    assert shipped.argv == [sys.executable, "-S", "-m", "floating_ip_forwarder.app"]
    assert shipped.deployment_env["PYTHONPATH"] == str(shipped.root / "app")
    files = sorted(str(p.relative_to(shipped.root)) for p in shipped.root.rglob("*.py"))
    assert "app/floating_ip_common/contract.py" in files
    assert "app/floating_ip_forwarder/app/__main__.py" in files
    assert [f for f in files if not f.startswith("app/")] == []


def test_the_example_overlay_builds_once_the_user_adds_secret_env(
    control_plane: ControlPlane, tmp_path: Path
) -> None:
    assert "secret.env" in (DEPLOY / "example" / ".gitignore").read_text().split()
    copy = tmp_path / "deploy"
    shutil.copytree(DEPLOY, copy, ignore=shutil.ignore_patterns("secret.env"))
    shutil.copytree(REPO / "in-cluster", tmp_path / "in-cluster")  # the code the base mounts
    with pytest.raises(RuntimeError, match=r"secret\.env"):
        rendered(control_plane, copy / "example")  # not there yet: kustomize says so
    (copy / "example" / "secret.env").write_text("WEB_SECRET=users-own-secret-value\n")
    docs = rendered(control_plane, copy / "example")
    secret = find(docs, "Secret", "event-forwarder")
    assert base64.b64decode(secret["data"]["WEB_SECRET"]) == b"users-own-secret-value"
    config = find(docs, "ConfigMap", "event-forwarder")["data"]
    assert config["FUNCTION_URL"].startswith("https://faas-")
    assert config["RESYNC_PERIOD"] == "5m", "the base's settings stay"
