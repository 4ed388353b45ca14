"""The bed's wires: an edge (the provider's network), nodes, pods and clients as namespaces.

```
 client 198.18.0.10 ── edge (reserved IP → holder's anchor) ── bridge ──┬ node a: eth0 = anchor a
                                                                        └ node b: eth0 = anchor b
 node ── veth ── pod (eth0 = pod IP/32, default via 169.254.1.1 answered by proxy ARP)
```

Addresses are the bed's own: anchors 10.17.x.y/16 (as ``DoksWorld`` gives them), pods
10.244.x.y, clients in 198.18.0.0/24 (RFC 2544's benchmarking range). Pod addresses are
routed by the edge to their node, as a VPC-native cluster routes them, so a pod on one node
reaches a pod on another and answers a client without any masquerade.
"""

from __future__ import annotations

import itertools
import subprocess
import time
from dataclasses import dataclass, field

from testbed.dataplane.namespaces import Namespace, run

EDGE_BRIDGE_ADDRESS = "10.17.255.254"
ANCHOR_PREFIX = 16
CLIENT_GATEWAY = "198.18.0.1"
CLIENT_ADDRESS = "198.18.0.10"
POD_GATEWAY = "169.254.1.1"
_EDGE_TABLE = "reserved_ips"


@dataclass
class PodNet:
    name: str
    ip: str
    netns: Namespace
    node: NodeNet


@dataclass
class NodeNet:
    short: str
    name: str
    anchor: str
    netns: Namespace
    edge_port: str
    pods: dict[str, PodNet] = field(default_factory=dict)


class Network:
    """The edge and client namespaces; nodes and pods are added by the bed."""

    def __init__(self) -> None:
        self.nodes: dict[str, NodeNet] = {}
        self._delivered: dict[str, str] = {}  # reserved IP → the anchor it goes to
        self._ports = itertools.count()
        self._made: list[Namespace] = []
        try:
            self.edge = self._namespace("edge")
            self.client = self._namespace("client")
            self._wire_edge()
        except BaseException:
            self.close()
            raise

    def _namespace(self, role: str) -> Namespace:
        made = Namespace(role)
        self._made.append(made)
        return made

    def _wire_edge(self) -> None:
        edge, client = self.edge.name, self.client.name
        self.edge.run("sysctl", "-qw", "net.ipv4.ip_forward=1")
        batch(
            edge,
            "link add br0 type bridge",
            f"addr add {EDGE_BRIDGE_ADDRESS}/{ANCHOR_PREFIX} dev br0",
            "link set br0 up",
            f"link add uplink type veth peer name eth0 netns {client}",
            f"addr add {CLIENT_GATEWAY}/24 dev uplink",
            "link set uplink up",
        )
        batch(
            client,
            f"addr add {CLIENT_ADDRESS}/24 dev eth0",
            "link set eth0 up",
            f"route add default via {CLIENT_GATEWAY}",
        )
        # The provider's delivery of reserved IPs: the destination becomes the holder's anchor,
        # the source is kept. A miss in the map leaves the packet unrouted, as an unassigned
        # reserved IP is.
        self.edge.run(
            "nft",
            "-f",
            "-",
            stdin=f"""
table ip {_EDGE_TABLE} {{
  map holders {{ type ipv4_addr : ipv4_addr; }}
  chain prerouting {{
    type nat hook prerouting priority dstnat; policy accept;
    dnat to ip daddr map @holders
  }}
}}
""",
        )

    # --- nodes and pods --------------------------------------------------------------------

    def add_node(self, short: str, name: str, anchor: str) -> NodeNet:
        node_ns = self._namespace(f"node-{short}")
        port = f"n{next(self._ports)}"
        batch(
            self.edge.name,
            f"link add {port} type veth peer name eth0 netns {node_ns.name}",
            f"link set {port} master br0",
            f"link set {port} up",
        )
        batch(
            node_ns.name,
            f"addr add {anchor}/{ANCHOR_PREFIX} dev eth0",
            "link set eth0 up",
            f"route add default via {EDGE_BRIDGE_ADDRESS}",
        )
        node_ns.run("sysctl", "-qw", "net.ipv4.ip_forward=1")
        node = NodeNet(short, name, anchor, node_ns, port)
        self.nodes[short] = node
        return node

    def add_pod(self, node: NodeNet, name: str, ip: str) -> PodNet:
        """A pod namespace wired to ``node`` (a routed veth, as Calico and Cilium do)."""
        pod_ns = self._namespace("pod")
        port = f"p{next(self._ports)}"
        batch(
            node.netns.name,
            f"link add {port} type veth peer name eth0 netns {pod_ns.name}",
            f"link set {port} up",
            f"route add {ip}/32 dev {port}",
        )
        # Proxy ARP answers after a random delay of up to 0.8 s by default: a fresh pod's
        # first packets would wait for it. Calico sets the same.
        node.netns.run(
            "sysctl",
            "-qw",
            f"net.ipv4.conf.{port}.proxy_arp=1",
            f"net.ipv4.neigh.{port}.proxy_delay=0",
        )
        batch(
            pod_ns.name,
            f"addr add {ip}/32 dev eth0",
            "link set eth0 up",
            f"route add {POD_GATEWAY}/32 dev eth0 scope link",
            f"route add default via {POD_GATEWAY} dev eth0",
        )
        batch(self.edge.name, f"route replace {ip}/32 via {node.anchor}")
        pod = PodNet(name, ip, pod_ns, node)
        node.pods[name] = pod
        return pod

    def remove_pod(self, pod: PodNet) -> None:
        batch(self.edge.name, f"route del {pod.ip}/32")
        pod.netns.delete()
        self._made.remove(pod.netns)
        del pod.node.pods[pod.name]

    def power(self, node: NodeNet, on: bool) -> None:
        """A node's cable: off, nothing reaches it or leaves it (a droplet that lost power)."""
        state = "up" if on else "down"
        batch(self.edge.name, f"link set {node.edge_port} {state}")

    # --- the provider's edge ---------------------------------------------------------------

    def deliver(self, reserved_ip: str, anchor: str | None) -> float:
        """Send ``reserved_ip``'s packets to ``anchor`` from now on (``None``: nowhere), and
        return the moment (``time.monotonic``) the edge did.

        The flows tracked towards the old anchor are then forgotten, as the provider's mapping
        applies to every packet: an established connection's next packet goes to the new
        holder. Only those: a flow the new mapping has begun keeps its translation."""
        old = self._delivered.pop(reserved_ip, None)
        commands = []
        if old is not None:
            commands.append(f"delete element ip {_EDGE_TABLE} holders {{ {reserved_ip} }}")
        if anchor is not None:
            commands.append(f"add element ip {_EDGE_TABLE} holders {{ {reserved_ip} : {anchor} }}")
            self._delivered[reserved_ip] = anchor
        if commands:
            self.edge.run("nft", "-f", "-", stdin="\n".join(commands) + "\n")
        moved_at = time.monotonic()
        if old is not None:
            # conntrack exits 1 when no flow matched: nothing to forget is fine.
            forget = ["conntrack", "-D", "--orig-dst", reserved_ip, "--reply-src", old]
            subprocess.run(self.edge.argv(*forget), capture_output=True, check=False)
        return moved_at

    def close(self) -> None:
        for made in reversed(self._made):
            made.delete()
        self._made.clear()


def batch(netns: str, *commands: str) -> None:
    """``ip`` commands run in one process inside ``netns``."""
    run(["ip", "-n", netns, "-batch", "-"], stdin="\n".join(commands) + "\n")
