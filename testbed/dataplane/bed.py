"""A DOKS-like cluster whose packets are real: ``DoksWorld``'s Nodes as namespaces running
kube-proxy, pods as namespaces running echo servers, and the provider's edge delivering each
reserved IP to the anchor of the droplet the DigitalOcean imitation says holds it.

The bed plays the kubelet and the EndpointSlice controller (it writes Pods, their status and
the slices); kube-proxy, nft and iptables are real. The edge follows the imitation on its own
thread, polling it every few milliseconds, so a reserved IP moves as soon as the action is done.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from testbed.dataplane.echo import EchoServer
from testbed.dataplane.kube_proxy import KubeProxy
from testbed.dataplane.network import Network, NodeNet, PodNet
from testbed.doks import DoksWorld

EDGE_POLL = 0.005


@dataclass
class BedPod:
    namespace: str
    net: PodNet
    servers: list[EchoServer]

    def stop_serving(self) -> None:
        for server in self.servers:
            server.stop()
        self.servers = []


class DataPathBed:
    def __init__(self, world: DoksWorld, mode: str, workdir: Path, kube_proxy: Path) -> None:
        self.world = world
        self.mode = mode
        self.workdir = workdir
        self._kube_proxy = kube_proxy
        self.network = Network()
        self.proxies: dict[str, KubeProxy] = {}
        self.pods: dict[str, BedPod] = {}
        self._followed: dict[str, str | None] = {}
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.edge_moves: list[tuple[float, str, str | None]] = []
        """``(monotonic time, reserved IP, node short name)`` of each change of delivery."""
        self._follower = threading.Thread(target=self._follow, daemon=True)
        self._follower.start()

    # --- nodes ---------------------------------------------------------------------------

    def add_node(self, short: str) -> NodeNet:
        """The world's node ``short`` (added there if new) with its namespace and kube-proxy."""
        if short not in self.world.droplets:
            self.world.add_node(short)
        droplet = self.world.droplets[short]
        node = self.network.add_node(short, droplet.node, droplet.anchor_ip)
        self.proxies[short] = KubeProxy(
            self.world.control_plane,
            node.netns,
            droplet.node,
            self.mode,
            self.workdir,
            self._kube_proxy,
        )
        return node

    def node(self, short: str) -> NodeNet:
        return self.network.nodes[short]

    # --- pods ----------------------------------------------------------------------------

    def add_pod(
        self,
        namespace: str,
        name: str,
        short: str,
        labels: Mapping[str, str],
        ports: Sequence[int],
        *,
        ready: bool = True,
    ) -> BedPod:
        """A Pod on node ``short`` whose echo servers answer on ``ports`` (TCP and UDP)."""
        ip = self.world.kube.create_pod(
            namespace, name, self.world.node(short), labels, ready=ready
        )
        return self.wire_pod(namespace, name, short, ip, ports)

    def wire_pod(
        self, namespace: str, name: str, short: str, ip: str, ports: Sequence[int]
    ) -> BedPod:
        """The namespace and echo servers of a Pod already written (by whoever plays its
        kubelet): ``ip`` on node ``short``, answering on ``ports`` (TCP and UDP)."""
        net = self.network.add_pod(self.node(short), name, ip)
        servers = [EchoServer(name, net.netns, port).start() for port in ports]
        pod = BedPod(namespace, net, servers)
        self.pods[name] = pod
        return pod

    def remove_pod(self, name: str) -> None:
        """The pod's process ends, its namespace goes, and its Pod object is deleted."""
        pod = self.unwire_pod(name)
        self.world.kube.delete_pod(pod.namespace, name)

    def unwire_pod(self, name: str) -> BedPod:
        """The pod's process ends and its namespace goes; its Pod object is left as it is."""
        pod = self.pods.pop(name)
        pod.stop_serving()
        self.network.remove_pod(pod.net)
        return pod

    # --- the edge ------------------------------------------------------------------------

    def follow(self, reserved_ip: str) -> None:
        """From now on, deliver ``reserved_ip`` wherever the imitation says it is assigned."""
        with self._lock:
            self._followed.setdefault(reserved_ip, None)

    def _follow(self) -> None:
        while not self._stop.wait(EDGE_POLL):
            with self._lock:
                followed = dict(self._followed)
            for ip, delivered in followed.items():
                holder = self.world.holder_of(ip)
                anchor = self.world.droplets[holder].anchor_ip if holder else None
                if anchor != delivered:
                    moved_at = self.network.deliver(ip, anchor)
                    with self._lock:
                        self._followed[ip] = anchor
                        self.edge_moves.append((moved_at, ip, holder))

    def delivered_to(self, reserved_ip: str) -> str | None:
        """The short name of the node the edge delivers ``reserved_ip`` to now."""
        with self._lock:
            anchor = self._followed.get(reserved_ip)
        return next((s for s, d in self.world.droplets.items() if d.anchor_ip == anchor), None)

    # --- the end -------------------------------------------------------------------------

    def close(self) -> None:
        self._stop.set()
        self._follower.join(timeout=10)
        for pod in self.pods.values():
            pod.stop_serving()
        for proxy in self.proxies.values():
            with contextlib.suppress(Exception):
                proxy.stop()
        self.network.close()
