"""Running the forwarder the way it ships: the code its Deployment mounts from ConfigMaps, the
Deployment's command and environment, the kustomize base's RBAC and configuration, a token
minted for its ServiceAccount, and nothing else."""

from __future__ import annotations

import base64
import http.client
import json
import os
import shlex
import shutil
import signal
import ssl
import subprocess
import sys
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubernetes import client as k8s

from testbed.controlplane import ControlPlane
from testbed.layout import IN_CLUSTER, REPO
from testbed.manifests import command_line, mount_config_maps, rooted
from testbed.processes import stop, wait_until

DOCKERFILE = IN_CLUSTER / "event-forwarder.Dockerfile"
DEPLOY = REPO / "deploy"
BASE = DEPLOY / "base"
NAMESPACE = "floating-ip"
FORWARDER_ACCOUNT = "event-forwarder"
FUNCTION_ACCOUNT = "floating-ip-function"
CLUSTER_ID = "0f1e2d3c-4b5a-4697-8877-665544332211"


# --- the image, without Docker ---------------------------------------------------------------


def image_layout(root: Path, dockerfile: Path = DOCKERFILE) -> Path:
    """Copy what the Dockerfile's COPY lines copy into ``root`` (its ``/`` ) and return the
    WORKDIR: running from there with ``python -S`` (no site-packages) is running the image's
    files on the image's standard-library-only interpreter."""
    workdir = Path("/")
    for line in _instructions(dockerfile.read_text()):
        word, _, rest = line.partition(" ")
        if word.upper() == "WORKDIR":
            workdir = Path(rest.strip())
        if word.upper() != "COPY":
            continue
        args = [a for a in shlex.split(rest) if not a.startswith("--")]
        *sources, dest = args
        target = root / dest.lstrip("/")
        for source in sources:
            src = IN_CLUSTER / source
            if src.is_dir():
                shutil.copytree(src, target, dirs_exist_ok=True, ignore=_no_caches)
            else:
                target.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, target / src.name)
    return root / str(workdir).lstrip("/")


def _instructions(text: str) -> list[str]:
    joined = text.replace("\\\n", " ")
    return [
        line.strip() for line in joined.splitlines() if line.strip() and not line.startswith("#")
    ]


def _no_caches(_dir: str, names: list[str]) -> list[str]:
    return [n for n in names if n == "__pycache__"]


# --- the kustomize base, applied -------------------------------------------------------------


def write_overlay(
    directory: Path,
    *,
    secret: str,
    function_url: str,
    components: tuple[Path, ...] = (),
    extra: str = "",
) -> Path:
    """A user's overlay of the shipped base: their URL, cluster id and secret."""
    directory.mkdir(parents=True, exist_ok=True)
    rel = os.path.relpath(DEPLOY, directory)
    lines = [
        "apiVersion: kustomize.config.k8s.io/v1beta1",
        "kind: Kustomization",
        "resources:",
        f"  - {rel}/base",
    ]
    if components:
        lines += ["components:"] + [f"  - {os.path.relpath(c, directory)}" for c in components]
    lines += [
        "configMapGenerator:",
        "  - name: event-forwarder",
        "    behavior: merge",
        "    literals:",
        f"      - FUNCTION_URL={function_url}",
        f"      - CLUSTER_ID={CLUSTER_ID}",
        "secretGenerator:",
        "  - name: event-forwarder",
        "    behavior: replace",
        "    literals:",
        f"      - WEB_SECRET={secret}",
    ]
    (directory / "kustomization.yaml").write_text("\n".join(lines) + "\n" + extra)
    return directory


def kubectl(control_plane: ControlPlane, *args: str) -> str:
    done = subprocess.run(
        [control_plane.kubectl, f"--kubeconfig={control_plane.kubeconfig_path}", *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if done.returncode != 0:
        raise RuntimeError(f"kubectl {' '.join(args)}: {done.stderr}")
    return done.stdout


@dataclass
class Shipped:
    """The applied base: what the Deployment would give the container."""

    control_plane: ControlPlane
    deployment_env: dict[str, str] = field(default_factory=dict)
    root: Path = Path("/")
    """Where the ConfigMaps the Deployment mounts were written (its ``/``)."""
    argv: list[str] = field(default_factory=list)
    """The container's command and args (``python`` is this interpreter, without site)."""

    def container_env(self, pod_name: str, node_name: str = "") -> dict[str, str]:
        """The environment with the pod's name and its node's (empty: scheduled nowhere
        the test cares about) filled in."""
        fields = {"$(POD_NAME)": pod_name, "$(NODE_NAME)": node_name}
        return {k: fields.get(v, v) for k, v in self.deployment_env.items()}


def applied_deployment(control_plane: ControlPlane, namespace: str, root: Path) -> Shipped:
    """The applied Deployment's container, ready to run here: its ConfigMap volumes written
    under ``root`` (read back from the API server, as the kubelet would), its command, and its
    environment (PYTHONPATH moved under ``root``)."""
    api = control_plane.admin_client()
    core = k8s.CoreV1Api(api)
    deployment = api.sanitize_for_serialization(
        k8s.AppsV1Api(api).read_namespaced_deployment(FORWARDER_ACCOUNT, namespace)
    )
    pod_spec = deployment["spec"]["template"]["spec"]
    [container] = pod_spec["containers"]
    maps = {
        v["configMap"]["name"]: api.sanitize_for_serialization(
            core.read_namespaced_config_map(v["configMap"]["name"], namespace)
        )
        for v in pod_spec.get("volumes", [])
        if "configMap" in v
    }
    mount_config_maps(pod_spec, container, maps, root)
    env = resolve_deployment_env(api, namespace)
    if "PYTHONPATH" in env:
        env["PYTHONPATH"] = str(rooted(root, env["PYTHONPATH"]))
    return Shipped(
        control_plane=control_plane,
        deployment_env=env,
        root=root,
        argv=command_line(container),
    )


def resolve_deployment_env(api: k8s.ApiClient, namespace: str) -> dict[str, str]:
    """The environment the kubelet would give the forwarder's container (POD_NAME left as
    ``$(POD_NAME)``), resolved from the applied Deployment, ConfigMap and Secret."""
    core = k8s.CoreV1Api(api)
    deployment = k8s.AppsV1Api(api).read_namespaced_deployment(FORWARDER_ACCOUNT, namespace)
    [container] = deployment.spec.template.spec.containers
    env: dict[str, str] = {}
    for source in container.env_from or []:
        config_map = core.read_namespaced_config_map(source.config_map_ref.name, namespace)
        env.update(config_map.data or {})
    for var in container.env or []:
        if var.value is not None:
            env[var.name] = var.value
            continue
        ref = var.value_from
        if ref.secret_key_ref is not None:
            secret = core.read_namespaced_secret(ref.secret_key_ref.name, namespace)
            env[var.name] = base64.b64decode(secret.data[ref.secret_key_ref.key]).decode()
        elif ref.field_ref is not None:
            env[var.name] = {
                "metadata.name": "$(POD_NAME)",
                "metadata.namespace": namespace,
                "spec.nodeName": "$(NODE_NAME)",
            }[ref.field_ref.field_path]
    return env


# --- the running process ---------------------------------------------------------------------


class ForwarderProcess:
    def __init__(
        self, workdir: Path, env: Mapping[str, str], log: Path, argv: list[str] | None = None
    ) -> None:
        self.workdir = workdir
        self.argv = argv or [sys.executable, "-S", "-m", "floating_ip_forwarder.app"]
        self.env = dict(env)
        self.log = log
        self.port = int(env["METRICS_PORT"])
        self.popen: subprocess.Popen[bytes] | None = None
        self.crashed = False
        self.expected_exit = 0
        """The exit code a SIGTERM at the end of the test must find (a clean shutdown)."""

    def start(self) -> ForwarderProcess:
        with self.log.open("ab") as out:
            self.popen = subprocess.Popen(
                self.argv,
                cwd=self.workdir,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        return self

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=2) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    def wait_ready(self, timeout: float = 30.0) -> None:
        wait_until(
            lambda: self.get("/readyz")[0] == 200,
            timeout=timeout,
            what="forwarder /readyz",
            process=self.popen,
            log=self.log,
        )

    def metrics(self) -> dict[str, float]:
        status, text = self.get("/metrics")
        assert status == 200
        out = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, value = line.rsplit(" ", 1)
                out[name] = float(value)
        return out

    def metric(self, name: str, **labels: str) -> float:
        inner = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        suffix = f"{{{inner}}}" if inner else ""
        found = self.metrics()
        for full in (f"floating_ip_forwarder_{name}", f"floating_ip_forwarder_{name}_total"):
            if full + suffix in found:
                return found[full + suffix]
        return 0.0

    def leading(self) -> bool:
        return self.metric("leader") == 1.0

    def wait_metric(self, name: str, at_least: float, timeout: float = 20.0, **labels: str) -> None:
        wait_until(
            lambda: self.metric(name, **labels) >= at_least,
            timeout=timeout,
            what=f"{name}{labels or ''} >= {at_least}",
            process=self.popen,
            log=self.log,
        )

    def logs(self) -> list[dict[str, Any]]:
        entries = []
        for line in self.log.read_text(errors="replace").splitlines():
            try:
                entries.append(json.loads(line))
            except ValueError:
                entries.append({"unstructured": line})
        return entries

    def terminate(self, timeout: float = 15.0) -> int:
        """SIGTERM and wait; the exit code (0 is a clean shutdown)."""
        assert self.popen is not None
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                stop(self.popen)
                return -1
        return int(self.popen.returncode)

    def kill(self) -> None:
        if self.popen is not None:
            stop(self.popen)

    def crash(self) -> None:
        """SIGKILL: gone without a word (no Lease release)."""
        assert self.popen is not None
        self.popen.kill()
        self.popen.wait(10)
        self.crashed = True


# --- quick writes ----------------------------------------------------------------------------


class RawKube:
    """Admin writes over one keep-alive connection: fast enough for hundreds of changes a
    second (the generated client spends milliseconds per call on its models)."""

    def __init__(self, control_plane: ControlPlane) -> None:
        context = ssl.create_default_context(cafile=str(control_plane.ca.ca_file))
        context.load_cert_chain(str(control_plane.admin.cert), str(control_plane.admin.key))
        self._conn = http.client.HTTPSConnection(
            "127.0.0.1", control_plane.apiserver_port, context=context, timeout=30
        )

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        content_type: str = "application/json",
    ) -> dict[str, Any]:
        payload = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": content_type, "Accept": "application/json"}
        try:
            self._conn.request(method, path, body=payload, headers=headers)
            response = self._conn.getresponse()
        except (OSError, http.client.HTTPException):
            # The server closed the idle kept-alive connection: once more on a new one (every
            # write here sets absolute values, so a repeat is harmless).
            self._conn.close()
            self._conn.request(method, path, body=payload, headers=headers)
            response = self._conn.getresponse()
        data = response.read()
        if response.status >= 300:
            raise RuntimeError(f"{method} {path}: {response.status} {data[:300]!r}")
        decoded: dict[str, Any] = json.loads(data)
        return decoded

    def merge_patch(self, path: str, body: Any) -> dict[str, Any]:
        return self.call("PATCH", path, body, "application/merge-patch+json")

    def close(self) -> None:
        self._conn.close()
