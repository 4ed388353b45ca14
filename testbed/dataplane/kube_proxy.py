"""A node's real kube-proxy, in the node's namespace, watching the bed's apiserver."""

from __future__ import annotations

import http.client
import socket
import subprocess
from pathlib import Path

import yaml

from testbed import processes
from testbed.controlplane import REPO, ControlPlane
from testbed.dataplane.namespaces import Namespace
from testbed.dataplane.relay import LoopbackRelay

BUILD_SCRIPT = REPO / "testbed" / "dataplane" / "build.sh"
MODES = ("nftables", "iptables")
CLUSTER_CIDR = "10.244.0.0/16"
HEALTHZ_PORT = 10256
READY_TIMEOUT = 60.0


def binary() -> Path:
    """kube-proxy at the apiserver's version, built on first use (cached per machine)."""
    out = subprocess.run([str(BUILD_SCRIPT)], check=True, capture_output=True, text=True)
    return Path(out.stdout.strip().splitlines()[-1]) / "kube-proxy"


class KubeProxy:
    """kube-proxy for Node ``node`` in ``netns``; stopped (process and relay) by :meth:`stop`."""

    def __init__(
        self,
        control_plane: ControlPlane,
        netns: Namespace,
        node: str,
        mode: str,
        workdir: Path,
        executable: Path,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"proxy mode {mode!r}: expected one of {MODES}")
        self.netns = netns
        self.node = node
        self.log = workdir / f"kube-proxy-{node}.log"
        kubeconfig = workdir / f"kube-proxy-{node}.kubeconfig"
        self._relay = LoopbackRelay(netns, control_plane.apiserver_port)
        _write_kubeconfig(control_plane, kubeconfig)
        argv = netns.argv(
            str(executable),
            f"--kubeconfig={kubeconfig}",
            f"--hostname-override={node}",
            f"--proxy-mode={mode}",
            f"--cluster-cidr={CLUSTER_CIDR}",
            # Inside a namespace nf_conntrack_max is read-only: leave the conntrack table alone.
            "--conntrack-max-per-core=0",
            "--conntrack-tcp-timeout-established=0",
            "--conntrack-tcp-timeout-close-wait=0",
            f"--healthz-bind-address=127.0.0.1:{HEALTHZ_PORT}",
            "--metrics-bind-address=127.0.0.1:10249",
            "--v=2",
        )
        self._process = processes.start(argv, self.log)
        try:
            processes.wait_until(
                self._healthy,
                timeout=READY_TIMEOUT,
                what=f"kube-proxy of {node} healthy",
                interval=0.2,
                process=self._process,
                log=self.log,
            )
        except BaseException:
            self.stop()
            raise

    def _healthy(self) -> bool:
        sock = self.netns.socket(socket.SOCK_STREAM)
        sock.settimeout(2)
        sock.connect(("127.0.0.1", HEALTHZ_PORT))
        connection = http.client.HTTPConnection("127.0.0.1", HEALTHZ_PORT, timeout=2)
        connection.sock = sock
        try:
            connection.request("GET", "/healthz")
            return connection.getresponse().status == 200
        finally:
            connection.close()

    def stop(self) -> None:
        processes.stop(self._process)
        self._relay.close()


def _write_kubeconfig(control_plane: ControlPlane, path: Path) -> None:
    """The bed's admin identity, through the relay at the same port on the node's loopback."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "bed",
                "cluster": {
                    "server": control_plane.url,
                    "certificate-authority-data": control_plane.ca.ca_data,
                },
            }
        ],
        "users": [
            {
                "name": "kube-proxy",
                "user": {
                    "client-certificate": str(control_plane.admin.cert),
                    "client-key": str(control_plane.admin.key),
                },
            }
        ],
        "contexts": [{"name": "bed", "context": {"cluster": "bed", "user": "kube-proxy"}}],
        "current-context": "bed",
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))
