"""A real etcd + kube-apiserver pair on loopback, with TLS, RBAC and ServiceAccount tokens.

Plays envtest's part: the binaries are built from their Go modules by
``testbed/controlplane/build.sh`` (or taken from ``KUBEBUILDER_ASSETS``).
"""

from __future__ import annotations

import json
import shutil
import ssl
import subprocess
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from kubernetes import client as k8s

from testbed import processes
from testbed.tls import CertFiles, TestCA

REPO = Path(__file__).resolve().parents[1]
BUILD_SCRIPT = REPO / "testbed" / "controlplane" / "build.sh"
SERVICE_CLUSTER_IP_RANGE = "10.96.0.0/16"
READY_TIMEOUT = 120.0


def binaries() -> Path:
    """The folder holding ``kube-apiserver`` and ``etcd``, building them on first use."""
    out = subprocess.run([str(BUILD_SCRIPT)], check=True, capture_output=True, text=True)
    return Path(out.stdout.strip().splitlines()[-1])


@dataclass
class ControlPlane:
    """A running (or stopped) control plane rooted in ``workdir``."""

    workdir: Path
    bin_dir: Path
    etcd_port: int = 0
    etcd_peer_port: int = 0
    apiserver_port: int = 0
    ca: TestCA = field(init=False)
    admin: CertFiles = field(init=False)
    _etcd: subprocess.Popen[bytes] | None = field(default=None, init=False)
    _apiserver: subprocess.Popen[bytes] | None = field(default=None, init=False)

    # --- lifecycle -------------------------------------------------------------------------

    def start(self) -> ControlPlane:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.ca = TestCA(self.workdir / "pki")
        self.admin = self.ca.issue("admin", common_name="admin", organization="system:masters")
        self._write_service_account_keys()
        self.etcd_port = processes.free_port()
        self.etcd_peer_port = processes.free_port()
        self.apiserver_port = processes.free_port()
        try:
            self._start_etcd()
            self.start_apiserver()
        except BaseException:
            self.stop()
            raise
        self.write_kubeconfig(self.kubeconfig_path)
        return self

    def stop(self) -> None:
        self.stop_apiserver()
        if self._etcd is not None:
            processes.stop(self._etcd)
            self._etcd = None

    def start_apiserver(self) -> None:
        """Start (or restart after :meth:`stop_apiserver`) the apiserver on the same port."""
        log = self.workdir / "kube-apiserver.log"
        self._apiserver = processes.start(self._apiserver_argv(), log)
        processes.wait_until(
            self._apiserver_ready,
            timeout=READY_TIMEOUT,
            what="kube-apiserver /readyz",
            interval=0.2,
            process=self._apiserver,
            log=log,
        )

    def stop_apiserver(self) -> None:
        if self._apiserver is not None:
            processes.stop(self._apiserver)
            self._apiserver = None

    def compact_etcd(self) -> None:
        """Compact etcd at its current revision and restart the apiserver, so every older
        resourceVersion is gone from both etcd and the apiserver's watch cache."""
        status = _post_json(f"{self.etcd_url}/v3/kv/range", {"key": "AA=="})
        revision = int(dict(status["header"])["revision"])  # type: ignore[call-overload]
        _post_json(f"{self.etcd_url}/v3/kv/compaction", {"revision": str(revision)})
        self.stop_apiserver()
        self.start_apiserver()

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in (self._apiserver, self._etcd) if p is not None]

    # --- what clients need -----------------------------------------------------------------

    @property
    def kubectl(self) -> str:
        """kubectl at the apiserver's version (or the one on PATH with KUBEBUILDER_ASSETS)."""
        built = self.bin_dir / "kubectl"
        found = str(built) if built.exists() else shutil.which("kubectl")
        if found is None:
            raise FileNotFoundError("no kubectl beside the control-plane binaries or on PATH")
        return found

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.apiserver_port}"

    @property
    def etcd_url(self) -> str:
        return f"http://127.0.0.1:{self.etcd_port}"

    @property
    def kubeconfig_path(self) -> Path:
        return self.workdir / "admin.kubeconfig"

    def admin_client(self) -> k8s.ApiClient:
        config = k8s.Configuration()
        config.host = self.url
        config.ssl_ca_cert = str(self.ca.ca_file)
        config.cert_file = str(self.admin.cert)
        config.key_file = str(self.admin.key)
        return k8s.ApiClient(config)

    def token_client(self, token: str) -> k8s.ApiClient:
        """A client that authenticates only with ``token`` (as the project's parts do)."""
        config = k8s.Configuration()
        config.host = self.url
        config.ssl_ca_cert = str(self.ca.ca_file)
        config.api_key = {"authorization": token}
        config.api_key_prefix = {"authorization": "Bearer"}
        return k8s.ApiClient(config)

    def write_kubeconfig(self, path: Path) -> None:
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "floating-ip-test",
                    "cluster": {
                        "server": self.url,
                        "certificate-authority-data": self.ca.ca_data,
                    },
                }
            ],
            "users": [
                {
                    "name": "admin",
                    "user": {
                        "client-certificate": str(self.admin.cert),
                        "client-key": str(self.admin.key),
                    },
                }
            ],
            "contexts": [
                {
                    "name": "floating-ip-test",
                    "context": {"cluster": "floating-ip-test", "user": "admin"},
                }
            ],
            "current-context": "floating-ip-test",
        }
        path.write_text(yaml.safe_dump(config, sort_keys=False))

    # --- internals -------------------------------------------------------------------------

    def _write_service_account_keys(self) -> None:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        (self.workdir / "sa.key").write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.TraditionalOpenSSL,
                serialization.NoEncryption(),
            )
        )
        (self.workdir / "sa.pub").write_bytes(
            key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )

    def _start_etcd(self) -> None:
        client = self.etcd_url
        peer = f"http://127.0.0.1:{self.etcd_peer_port}"
        argv = [
            str(self.bin_dir / "etcd"),
            "--name=default",
            f"--data-dir={self.workdir / 'etcd'}",
            f"--listen-client-urls={client}",
            f"--advertise-client-urls={client}",
            f"--listen-peer-urls={peer}",
            f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=default={peer}",
            "--unsafe-no-fsync=true",
            "--log-level=warn",
        ]
        log = self.workdir / "etcd.log"
        self._etcd = processes.start(argv, log)
        processes.wait_until(
            lambda: _get_json(f"{client}/health").get("health") == "true",
            timeout=READY_TIMEOUT,
            what="etcd /health",
            process=self._etcd,
            log=log,
        )

    def _apiserver_argv(self) -> list[str]:
        serving = self.ca.issue("apiserver", "127.0.0.1", "localhost")
        return [
            str(self.bin_dir / "kube-apiserver"),
            f"--etcd-servers={self.etcd_url}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={self.apiserver_port}",
            f"--tls-cert-file={serving.cert}",
            f"--tls-private-key-file={serving.key}",
            f"--client-ca-file={self.ca.ca_file}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={self.workdir / 'sa.pub'}",
            f"--service-account-signing-key-file={self.workdir / 'sa.key'}",
            f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
            "--authorization-mode=RBAC",
            "--allow-privileged=true",
            "--disable-admission-plugins=ServiceAccount",
            "--endpoint-reconciler-type=none",
            f"--cert-dir={self.workdir / 'apiserver-certs'}",
            "--v=0",
        ]

    def response_bytes(self, **labels: str) -> float:
        """Response body bytes the apiserver has sent so far for requests matching ``labels``
        (e.g. ``verb="LIST", resource="nodes"``): its ``apiserver_response_sizes`` histogram's
        sum. It counts what was written to the connection, so a gzipped body counts
        compressed (the metric wraps the writer the gzip writer writes into)."""
        with urllib.request.urlopen(
            f"{self.url}/metrics", context=self._admin_tls(), timeout=10
        ) as reply:
            text = reply.read().decode()
        wanted = [f'{key}="{value}"' for key, value in labels.items()]
        total = 0.0
        for line in text.splitlines():
            if line.startswith("apiserver_response_sizes_sum{"):
                names, value = line.rsplit(" ", 1)
                if all(label in names.split("{", 1)[1].rstrip("}").split(",") for label in wanted):
                    total += float(value)
        return total

    def _admin_tls(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.ca.ca_file))
        context.load_cert_chain(str(self.admin.cert), str(self.admin.key))
        return context

    def _apiserver_ready(self) -> bool:
        with urllib.request.urlopen(
            f"{self.url}/readyz", context=self._admin_tls(), timeout=2
        ) as reply:
            return bool(reply.status == 200)


def _post_json(url: str, body: dict[str, object]) -> dict[str, object]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST")
    with urllib.request.urlopen(request, timeout=5) as reply:
        return dict(json.loads(reply.read()))


def _get_json(url: str) -> dict[str, object]:
    with urllib.request.urlopen(url, timeout=2) as reply:
        return dict(json.loads(reply.read()))
