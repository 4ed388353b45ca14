"""A DOKS-like world across both imitations: droplets in the DigitalOcean imitation that are
Nodes of the real control plane, a cluster object, and the function's identity and settings.
"""

from __future__ import annotations

import subprocess
import uuid
from dataclasses import dataclass, field

from floating_ip_common import contract
from testbed.controlplane import REPO, ControlPlane
from testbed.do_imitation.server import DoImitation
from testbed.kube import DOKS_REGION, KubeBed

DEPLOY = REPO / "deploy" / "base"
NAMESPACE_MANIFEST = DEPLOY / "namespace.yaml"
FUNCTION_IDENTITY = DEPLOY / "rbac" / "function.yaml"
FUNCTION_NAMESPACE = "floating-ip"
FUNCTION_ACCOUNT = "floating-ip-function"
WEB_SECRET = "test-shared-secret-0123456789"


@dataclass
class Droplet:
    node: str
    droplet_id: int
    anchor_ip: str


@dataclass
class DoksWorld:
    control_plane: ControlPlane
    kube: KubeBed
    do: DoImitation
    region: str = DOKS_REGION
    cluster_id: str = ""
    droplets: dict[str, Droplet] = field(default_factory=dict)
    suffix: str = field(default_factory=lambda: uuid.uuid4().hex[:6])

    def __post_init__(self) -> None:
        self.cluster_id = self.do.add_cluster(region=self.region)

    def add_node(self, short_name: str, *, anchor_on_node: bool = True) -> Droplet:
        """A droplet of the cluster and its Node, Ready, with an anchor IP (on the Node,
        as the annotator's DaemonSet mode writes it, unless ``anchor_on_node`` is false)."""
        name = f"{short_name}-{self.suffix}"
        droplet = self.do.add_doks_node(self.cluster_id, name=name)
        anchor = f"10.17.{len(self.droplets) // 250}.{len(self.droplets) % 250 + 5}"
        self.kube.add_node(
            name,
            droplet.id,
            region=self.region,
            anchor_ip=anchor if anchor_on_node else None,
            public_ip=droplet.public_ipv4,
            private_ip=droplet.private_ipv4,
        )
        self.droplets[short_name] = Droplet(name, droplet.id, anchor)
        return self.droplets[short_name]

    def node(self, short_name: str) -> str:
        return self.droplets[short_name].node

    def holder_of(self, ip: str) -> str | None:
        """The short name of the node whose droplet holds ``ip`` now."""
        droplet_id = self.do.reserved_ip_holder(ip)
        return next((k for k, d in self.droplets.items() if d.droplet_id == droplet_id), None)

    def remove_nodes(self) -> None:
        for droplet in self.droplets.values():
            self.kube.delete_node(droplet.node)

    def function_env(self, **overrides: str) -> dict[str, str]:
        """The function's ``.env``: no cluster credential (each call brings its token)."""
        env = {
            "DIGITALOCEAN_TOKEN": self.do.token,
            "DIGITALOCEAN_API_URL": self.do.url,
            "CLUSTER_ID": self.cluster_id,
            "KUBE_API_URL": self.control_plane.url,
            "KUBE_CA_DATA": self.control_plane.ca.ca_data,
            "WEB_SECRET": WEB_SECRET,
            "REQUESTS_CA_BUNDLE": str(self.do.ca_file),
        }
        env.update(overrides)
        return env


def function_token(control_plane: ControlPlane, kube: KubeBed) -> str:
    """A token for the function's ServiceAccount with exactly the shipped RBAC
    (``deploy/base/rbac/function.yaml``), so every function test also
    proves that RBAC is enough; as short-lived as the one the forwarder mints and sends with
    each event."""
    subprocess.run(
        [
            control_plane.kubectl,
            "--kubeconfig",
            str(control_plane.kubeconfig_path),
            "apply",
            "--server-side",
            "-f",
            str(NAMESPACE_MANIFEST),
            "-n",
            FUNCTION_NAMESPACE,
            "-f",
            str(FUNCTION_IDENTITY),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    return kube.mint_token(FUNCTION_NAMESPACE, FUNCTION_ACCOUNT, contract.KUBE_TOKEN_SECONDS)
