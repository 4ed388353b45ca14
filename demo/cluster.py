"""The parts of DOKS a bare control plane lacks, played on cue: the scheduler and kubelet
(start a pod: its init container, the real annotator, runs first; then the pod turns Ready),
the node lifecycle controller and the EndpointSlice controller. Where the demo has a data
path, a started pod also gets its network and a server answering on its Service's ports."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from demo.data_path import DataPath
from demo.errors import DemoError
from demo.model import Droplet
from floating_ip_common import contract
from testbed.controlplane import ControlPlane
from testbed.kube import KubeBed
from testbed.layout import IN_CLUSTER
from testbed.metadata import MetadataService

REPO = Path(__file__).resolve().parents[1]
INIT_CONTAINER_TIMEOUT = 60.0


@dataclass(frozen=True)
class InitContainer:
    """The annotator, run the way its init-container snippet runs it in a pod: downward-API
    variables, the ServiceAccount token and CA mounted as files, the droplet's metadata
    service (here: that droplet's root in the metadata imitation)."""

    control_plane: ControlPlane
    metadata: MetadataService
    token_file: Path
    python: tuple[str, ...]
    """The interpreter and its flags, as the image runs it."""
    image_env: Mapping[str, str]
    """The environment the image sets."""

    def run(self, namespace: str, pod: str, droplet: Droplet) -> None:
        environ = {
            **self.image_env,
            "PATH": os.environ.get("PATH", ""),
            "PYTHONPATH": str(IN_CLUSTER),
            "POD_NAME": pod,
            "POD_NAMESPACE": namespace,
            "KUBERNETES_SERVICE_HOST": "127.0.0.1",
            "KUBERNETES_SERVICE_PORT": str(self.control_plane.apiserver_port),
            "METADATA_URL": self.metadata.url(droplet.droplet_id),
        }
        argv = [
            *self.python,
            "-m",
            "floating_ip_annotator",
            "--token-file",
            str(self.token_file),
            "--ca-file",
            str(self.control_plane.ca.ca_file),
        ]
        done = subprocess.run(  # noqa: S603 - argv is built here, not taken from input
            argv,
            env=environ,
            capture_output=True,
            text=True,
            timeout=INIT_CONTAINER_TIMEOUT,
            check=False,
        )
        if done.returncode != 0:
            raise DemoError(
                f"the init container of pod {namespace}/{pod} exited {done.returncode}: "
                f"{done.stderr.strip()}"
            )


@dataclass(frozen=True)
class Controllers:
    kube: KubeBed
    init_container: InitContainer
    data_path: DataPath | None = None

    def start_pod(self, namespace: str, name: str, droplet: Droplet, service: str) -> str:
        """Schedule the pod on the droplet's node, run its init container, make it Ready.
        The pod carries the label ``app=<service>``, which the Service selects. Returns the
        anchor IP the annotator wrote onto the pod."""
        ip = self.kube.create_pod(namespace, name, droplet.node, {"app": service}, ready=False)
        self.init_container.run(namespace, name, droplet)
        pod = self.kube.core.read_namespaced_pod(name, namespace)
        anchor = (
            (pod.metadata.annotations or {}).get(contract.ANCHOR_IPV4) if pod.metadata else None
        )
        if anchor is None:
            raise DemoError(f"the annotator left no {contract.ANCHOR_IPV4} on pod {name}")
        if self.data_path is not None:
            # The demo's Services target the port they serve: the pod listens there.
            spec = self.kube.core.read_namespaced_service(service, namespace).spec
            ports = sorted({p.port for p in (spec.ports if spec else None) or []})
            self.data_path.add_pod(namespace, name, droplet, ip, ports)
        self.kube.set_pod_ready(namespace, name, True)
        self.kube.sync_endpoint_slices(namespace, service)
        return str(anchor)

    def delete_pod(self, namespace: str, name: str, service: str) -> None:
        if self.data_path is not None:
            self.data_path.remove_pod(name)
        self.kube.delete_pod(namespace, name)
        self.kube.sync_endpoint_slices(namespace, service)

    def node_not_ready(self, droplet: Droplet) -> None:
        """The kubelet stops reporting Ready; the lifecycle controller taints the node. Its
        pods stay (eviction would come five minutes later) and their endpoints stay ready."""
        self.kube.set_node_ready(droplet.node, "False")

    def node_ready(self, droplet: Droplet) -> None:
        """The kubelet reports Ready again; the lifecycle controller lifts its taints."""
        self.kube.set_node_ready(droplet.node, "True")
