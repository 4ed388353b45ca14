"""Nodes that lose power, on the real control plane, with pods that really listen.

Run by ``test_node_death.py`` inside a private network namespace (``testbed.netns``) where
the pods' 10.244.x.y addresses are real; on its own, every test here is skipped. The
forwarder (its shipped settings and identity, probes on) and the function (its shipped
identity) run as in ``test_function_e2e``; a node's pods are TCP listeners and its kubelet a
Lease renewal loop, so "power off" is what the forwarder would really see. Detection settings
are shortened through the variables a user sets.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import pytest
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from floating_ip_common import contract
from floating_ip_forwarder.dead_nodes import node_events
from testbed import netns, replica_net
from testbed.controlplane import ControlPlane
from testbed.doks import DoksWorld
from testbed.forwarder_harness import ForwarderProcess, kubectl
from testbed.kube import KubeBed, Port
from testbed.pods import NODE_LEASE_NAMESPACE, KubeletLease, PodListener, Power
from testbed.processes import free_port, wait_until
from testbed.replica_net import ReplicaNetwork
from tests.forwarder.conftest import StartForwarder
from tests.forwarder.test_function_e2e import function_url  # noqa: F401 - fixture

pytestmark = pytest.mark.skipif(
    not netns.inside(), reason="needs the pod range on lo: run through test_node_death.py"
)

IP = "192.0.2.20"
TCP_PORT = 8080
LEASE_RENEWAL = 0.5
DETECTION = {
    "NODE_PROBES": "on",
    "PROBE_PERIOD": "1s",
    "PROBE_TIMEOUT": "500ms",
    "PROBE_FAILURES": "2",
    "NODE_LEASE_STALE_AFTER": "3s",
    "SUSPICION_HOLD_DOWN": "15s",
}
HOLD_DOWN = 15.0
ACTIONS = "/v2/reserved_ips/{reserved_ip}/actions"


@dataclass
class Node:
    short: str
    name: str
    lease: KubeletLease
    listeners: list[PodListener] = field(default_factory=list)

    def power(self, power: Power) -> None:
        for listener in self.listeners:
            listener.set_power(power)
        if power is Power.ON:
            self.lease.start()
        else:
            self.lease.stop()


@dataclass
class Cluster:
    world: DoksWorld
    kube: KubeBed
    namespace: str
    nodes: dict[str, Node]
    service: str = "web"

    def holder(self) -> str | None:
        return self.world.holder_of(IP)

    def suspected(self) -> dict[str, dict[str, str]]:
        return json_config_map(self.kube, contract.SUSPICIONS_CONFIGMAP)

    def suspected_shorts(self) -> set[str]:
        names = self.suspected()
        return {short for short, node in self.nodes.items() if node.name in names}

    def events(self, reason: str) -> list[k8s.CoreV1Event]:
        found = self.kube.core.list_namespaced_event(self.namespace).items
        return [e for e in found if e.reason == reason and e.involved_object.name == self.service]

    def event(self, reason: str) -> k8s.CoreV1Event:
        """The one Event of ``reason`` on the Service, once the function has written it."""
        wait_until(lambda: bool(self.events(reason)), timeout=15, what=f"a {reason} Event")
        [found] = self.events(reason)
        return found

    def node_events(self, short: str) -> list[k8s.CoreV1Event]:
        """The forwarder's Events about node ``short``, found as a user would (by field
        selector, in the one namespace they can be in) and by this Node's uid (a node of the
        same name in an earlier test is another object)."""
        uid = self.kube.core.read_node(self.nodes[short].name).metadata.uid
        selector = (
            f"involvedObject.kind=Node,involvedObject.name={self.nodes[short].name},"
            f"involvedObject.uid={uid},reason={node_events.REASON}"
        )
        return self.kube.core.list_namespaced_event(
            node_events.NAMESPACE, field_selector=selector
        ).items

    def assignments(self) -> int:
        return len(self.world.do.requests("POST", ACTIONS))

    def assigned_after(self, off: float) -> float:
        """Seconds from ``off`` to the one assign request made since (another fails)."""
        [assign] = [r for r in self.world.do.requests("POST", ACTIONS) if r.at >= off]
        return assign.at - off

    def other(self, short: str) -> str:
        return next(s for s in self.nodes if s != short)


@pytest.fixture
def cluster(
    world: DoksWorld,
    kube: KubeBed,
    namespace: str,
) -> Iterator[Callable[..., Cluster]]:
    """``make(ports, pods)``: three nodes a, b, c whose kubelets renew their Leases, the
    Service ``web`` with ``ports`` and the reserved IP, and a ready pod on each node of
    ``pods`` (a and b unless told) whose listeners answer on every TCP port."""
    made: list[Node] = []
    with_namespace(kube)

    def make(ports: list[Port], pods: tuple[str, ...] = ("a", "b")) -> Cluster:
        world.add_node("c")  # a and b come with the world
        nodes = {
            short: Node(
                short, world.node(short), KubeletLease(kube.api, world.node(short), LEASE_RENEWAL)
            )
            for short in ("a", "b", "c")
        }
        made.extend(nodes.values())
        world.do.add_reserved_ip(IP, region=world.region)
        kube.create_service(namespace, "web", ports, annotations={contract.ADDRESS: IP})
        for short in pods:
            pod_ip = kube.create_pod(namespace, f"web-{short}", world.node(short), {"app": "web"})
            nodes[short].listeners = [
                PodListener(pod_ip, p.port) for p in ports if p.protocol == "TCP"
            ]
        kube.sync_endpoint_slices(namespace, "web")
        for node in nodes.values():
            node.power(Power.ON)
        return Cluster(world, kube, namespace, nodes)

    try:
        yield make
    finally:
        for node in made:
            for listener in node.listeners:
                listener.stop()
            node.lease.delete()


def with_namespace(kube: KubeBed) -> None:
    """The apiserver creates kube-node-lease itself, shortly after it starts."""
    wait_until(
        lambda: _exists(kube, NODE_LEASE_NAMESPACE), timeout=30, what="namespace kube-node-lease"
    )


def _exists(kube: KubeBed, namespace: str) -> bool:
    try:
        kube.core.read_namespace(namespace)
    except ApiException as error:
        if error.status == 404:
            return False
        raise
    return True


def start(
    start_forwarder: StartForwarder, cluster: Cluster, url: str, **extra: str
) -> ForwarderProcess:
    forwarder = start_forwarder(
        cluster.namespace,
        FUNCTION_URL=url,
        CLUSTER_ID=cluster.world.cluster_id,
        **(DETECTION | extra),
    )
    wait_until(lambda: cluster.holder() is not None, timeout=60, what="the IP placed")
    return forwarder


def wait_rounds(forwarder: ForwarderProcess, rounds: int) -> None:
    """Until the leader has judged the nodes ``rounds`` more times."""
    target = forwarder.metric("probe_rounds") + rounds
    wait_until(
        lambda: forwarder.metric("probe_rounds") >= target,
        timeout=rounds * 3 + 10,
        what=f"{rounds} probe rounds",
    )


@pytest.mark.slow
@pytest.mark.parametrize("power", [Power.REFUSING, Power.SILENT], ids=["refusing", "silent"])
def test_holder_loses_power_and_the_ip_moves_as_unreachable(
    start_forwarder: StartForwarder,
    function_url: str,  # noqa: F811 - the imported fixture
    cluster: Callable[..., Cluster],
    power: Power,
) -> None:
    bed = cluster([Port(TCP_PORT)])
    # One replica: no second vantage point answers, so it judges alone after CONFIRM_WAIT;
    # the Lease signal at its default leaves the finding to the probes.
    start(start_forwarder, bed, function_url, NODE_LEASE_STALE_AFTER="20s")
    holder = bed.holder()
    assert holder in ("a", "b")
    survivor = "b" if holder == "a" else "a"

    off = time.time()
    bed.nodes[holder].power(power)
    wait_until(lambda: bed.holder() == survivor, timeout=30, what=f"the IP on {survivor}")
    moved_in = time.time() - off

    assigned_in = bed.assigned_after(off)
    event = bed.event("Unreachable")
    assert event.type == "Warning"
    assert f"Node {bed.nodes[holder].name} is unreachable: tcp probe failed since" in (
        event.message or ""
    )
    assert "one vantage point" in (event.message or "")
    assert bed.suspected()[bed.nodes[holder].name]["probe"] == "tcp"
    print(f"{power.value}: assign request {assigned_in:.2f}s, moved {moved_in:.2f}s")


@pytest.mark.slow
def test_forwarder_cut_off_from_every_node_moves_nothing(
    start_forwarder: StartForwarder,
    function_url: str,  # noqa: F811
    cluster: Callable[..., Cluster],
) -> None:
    bed = cluster([Port(TCP_PORT)])
    forwarder = start(start_forwarder, bed, function_url)
    holder = bed.holder()
    assigned = bed.assignments()
    # Every pod stops answering; the kubelets keep renewing (the apiserver sees them).
    for node in bed.nodes.values():
        for listener in node.listeners:
            listener.set_power(Power.SILENT)
    wait_rounds(forwarder, 6)
    assert forwarder.metric("suspected_nodes") == 0
    assert bed.suspected() == {}
    assert (bed.holder(), bed.assignments()) == (holder, assigned)


@pytest.mark.slow
def test_udp_only_service_moves_when_the_holders_lease_goes_stale(
    start_forwarder: StartForwarder,
    function_url: str,  # noqa: F811
    cluster: Callable[..., Cluster],
) -> None:
    bed = cluster([Port(5353, "UDP")])
    start(start_forwarder, bed, function_url)
    holder = bed.holder()
    assert holder in ("a", "b")
    off = time.time()
    bed.nodes[holder].power(Power.REFUSING)
    wait_until(lambda: bed.holder() == bed.other(holder), timeout=30, what="the IP moved")
    assigned_in = bed.assigned_after(off)
    event = bed.event("Unreachable")
    assert "lease probe failed since" in (event.message or "")
    print(f"udp-only: assign request {assigned_in:.2f}s after the last renewal stopped")


@pytest.mark.slow
def test_flap_resync_and_recovery(
    start_forwarder: StartForwarder,
    function_url: str,  # noqa: F811
    cluster: Callable[..., Cluster],
) -> None:
    """a dies: the IP moves to b. a returns at once but stays suspected for the hold-down; a
    new leader's resync meanwhile does not move the IP back. b flaps during a's hold-down:
    no fit node, so the IP stays (one move per hold-down). After the hold-down a is eligible
    again: b dying then moves the IP to a."""
    bed = cluster([Port(TCP_PORT)])
    forwarder = start(start_forwarder, bed, function_url)
    first = bed.holder()
    assert first in ("a", "b")
    second = "b" if first == "a" else "a"

    bed.nodes[first].power(Power.REFUSING)
    wait_until(lambda: bed.holder() == second, timeout=30, what=f"the IP on {second}")
    recovered_at = time.monotonic()
    bed.nodes[first].power(Power.ON)
    moves = bed.assignments()

    # A new leader (the old one stops; its resync comes at once) while first is suspected.
    forwarder.terminate()
    forwarder = start(start_forwarder, bed, function_url)
    wait_rounds(forwarder, 2)
    assert bed.suspected_shorts() == {first}, "the new leader kept the published suspicion"

    # second flaps inside first's hold-down: first is not fit yet, so nothing moves.
    bed.nodes[second].power(Power.REFUSING)
    wait_rounds(forwarder, 3)
    bed.nodes[second].power(Power.ON)
    assert time.monotonic() - recovered_at < HOLD_DOWN, "the bed was too slow for this check"
    assert (bed.holder(), bed.assignments()) == (second, moves)

    # After the hold-down first is eligible again.
    wait_until(lambda: first not in bed.suspected_shorts(), timeout=HOLD_DOWN + 15, what="cleared")
    assert bed.holder() == second, "recovery alone does not move the IP back"
    wait_until(lambda: second not in bed.suspected_shorts(), timeout=HOLD_DOWN + 15, what="b ok")
    bed.nodes[second].power(Power.SILENT)
    wait_until(lambda: bed.holder() == first, timeout=30, what=f"the IP back on {first}")


@pytest.mark.slow
def test_leader_on_the_dead_node_the_next_leader_moves_the_ip(
    start_forwarder: StartForwarder,
    function_url: str,  # noqa: F811
    cluster: Callable[..., Cluster],
) -> None:
    """The leader dies with the holder (SIGKILL: no Lease release); the standby, which was
    probing too, takes the election Lease after its 15 s duration and publishes at once (the
    Lease signal keeps its default 20 s here, so the probes are what finds the node)."""
    bed = cluster([Port(TCP_PORT)])
    detection = DETECTION | {"NODE_LEASE_STALE_AFTER": "20s"}
    leader = start_forwarder(
        bed.namespace, FUNCTION_URL=function_url, CLUSTER_ID=bed.world.cluster_id, **detection
    )
    wait_until(lambda: bed.holder() is not None, timeout=60, what="the IP placed")
    standby = start_forwarder(
        bed.namespace,
        name="replica-1",
        FUNCTION_URL=function_url,
        CLUSTER_ID=bed.world.cluster_id,
        **detection,
    )
    assert leader.leading() and not standby.leading()
    holder = bed.holder()
    assert holder in ("a", "b")

    off = time.time()
    leader.crash()
    bed.nodes[holder].power(Power.SILENT)
    wait_until(lambda: bed.holder() == bed.other(holder), timeout=45, what="the IP moved")
    assigned_in = bed.assigned_after(off)
    assert standby.leading()
    assert "tcp probe failed" in (bed.event("Unreachable").message or "")
    print(f"leader on the dead node: assign request {assigned_in:.2f}s")


# --- a second vantage point ------------------------------------------------------------------

ALL_PODS = ("a", "b", "c")
BY_TCP = DETECTION | {"NODE_LEASE_STALE_AFTER": "20s"}
"""The Lease signal at its default, so that what finds a dead node here is the probes."""


@pytest.fixture
def replica_networks(control_plane: ControlPlane) -> Iterator[Callable[..., ReplicaNetwork]]:
    """``make(function_url, metrics_port)``: a node network of its own for one replica, its
    API server and function relayed. Requested before ``start_forwarder``, so the replicas
    stop (and release their Lease through it) before it goes."""
    why = replica_net.unavailable()
    if why is not None:
        pytest.skip(why)
    made: list[ReplicaNetwork] = []

    def make(url: str, metrics_port: int) -> ReplicaNetwork:
        inbound = [control_plane.apiserver_port, urlsplit(url).port or 443]
        made.append(ReplicaNetwork(len(made) + 1, inbound, [metrics_port]))
        return made[-1]

    try:
        yield make
    finally:
        for network in made:
            network.close()


def placed(start_forwarder: StartForwarder, bed: Cluster, url: str) -> str:
    """Place the IP with a replica of no known node, which then stops (releasing the Lease):
    the test's replicas are started on nodes chosen around the holder."""
    placer = start_forwarder(
        bed.namespace, name="placer", FUNCTION_URL=url, CLUSTER_ID=bed.world.cluster_id, **BY_TCP
    )
    wait_until(lambda: bed.holder() is not None, timeout=60, what="the IP placed")
    holder = bed.holder()
    assert holder is not None
    placer.terminate()
    return holder


def replica(
    start_forwarder: StartForwarder,
    bed: Cluster,
    url: str,
    name: str,
    on: str,
    **extra: str,
) -> ForwarderProcess:
    return start_forwarder(
        bed.namespace,
        name=name,
        node=bed.nodes[on].name,
        FUNCTION_URL=url,
        CLUSTER_ID=bed.world.cluster_id,
        **(BY_TCP | extra),
    )


def observations(bed: Cluster) -> dict[str, dict[str, object]]:
    return json_config_map(bed.kube, contract.OBSERVATIONS_CONFIGMAP)


def json_config_map(kube: KubeBed, name: str) -> dict[str, Any]:
    """The JSON values of a ConfigMap the forwarders write ({} until one is written)."""
    try:
        found = kube.core.read_namespaced_config_map(name, contract.SUSPICIONS_NAMESPACE)
    except ApiException as error:
        if error.status == 404:
            return {}
        raise
    return {k: json.loads(v) for k, v in (found.data or {}).items()}


@pytest.mark.slow
def test_leader_cut_off_from_the_other_nodes_moves_nothing(
    control_plane: ControlPlane,
    replica_networks: Callable[..., ReplicaNetwork],
    start_forwarder: StartForwarder,
    function_url: str,  # noqa: F811
    cluster: Callable[..., Cluster],
) -> None:
    """The leader's node loses its path to every other node but still reaches the API
    server: it judges nobody by TCP. Then it loses the path to the holder's node only (it
    still reaches the third): the other replica, which still reaches the holder, disputes
    it. Either way nothing is published and the IP stays."""
    bed = cluster([Port(TCP_PORT)], pods=ALL_PODS)
    holder = placed(start_forwarder, bed, function_url)
    here, there = (s for s in ALL_PODS if s != holder)
    metrics_port = free_port()
    network = replica_networks(function_url, metrics_port)
    leader = replica(
        start_forwarder,
        bed,
        function_url,
        "replica-0",
        here,
        within=network.argv,
        METRICS_PORT=str(metrics_port),
    )
    wait_until(leader.leading, timeout=30, what="the leader in its own node network")
    standby = replica(start_forwarder, bed, function_url, "replica-1", there)
    assert not standby.leading()
    wait_rounds(leader, 2)
    assigned = bed.assignments()
    own_pods = [listener.address[0] for listener in bed.nodes[here].listeners]

    network.cut(keep=own_pods)
    wait_until(
        lambda: leader.metric("probe_failures") > 0, timeout=10, what="the leader's probes fail"
    )
    wait_rounds(leader, 8)
    assert leader.metric("suspected_nodes") == 0
    assert leader.metric("unconfirmed_suspicions") == 0, "cut off: it judges nobody by TCP"
    assert bed.suspected() == {}
    assert not any(bed.node_events(short) for short in bed.nodes), "nothing to report"
    assert (bed.holder(), bed.assignments()) == (holder, assigned)

    network.heal()
    third = [listener.address[0] for listener in bed.nodes[there].listeners]
    network.cut(keep=own_pods + third)
    wait_until(
        lambda: leader.metric("unconfirmed_suspicions") == 1,
        timeout=20,
        what="the holder's node unconfirmed",
    )
    wait_until(
        lambda: bool(bed.node_events(holder)), timeout=15, what="the Event on the holder's node"
    )
    wait_rounds(leader, 8)
    assert leader.metric("unconfirmed_suspicions") == 1
    assert leader.metric("suspected_nodes") == 0
    [event] = bed.node_events(holder)  # one, however many rounds
    assert (event.type, event.reporting_component) == ("Warning", node_events.COMPONENT)
    assert event.message == (
        f"Probes to node {bed.nodes[holder].name} fail from node {bed.nodes[here].name}, but "
        "it is not suspected: replica-1 still reach it. No floating IP was moved."
    )
    assert leader.metric("node_events", result="created") == 1
    described = kubectl(control_plane, "describe", "node", bed.nodes[holder].name)
    assert node_events.REASON in described, "kubectl describe node finds it by the Node's uid"
    assert not any(bed.node_events(short) for short in bed.nodes if short != holder)
    assert bed.suspected() == {}
    assert (bed.holder(), bed.assignments()) == (holder, assigned)
    seen = observations(bed)
    assert seen["replica-0"]["failing"] == [bed.nodes[holder].name]
    assert seen["replica-1"]["failing"] == [], "the other replica answered: it still reaches it"
    assert any(
        e.get("message") == "nodes look dead from here only: not suspected" for e in leader.logs()
    )
    network.heal()


@pytest.mark.slow
def test_holder_dies_and_the_other_replica_confirms(
    start_forwarder: StartForwarder,
    function_url: str,  # noqa: F811
    cluster: Callable[..., Cluster],
) -> None:
    bed = cluster([Port(TCP_PORT)], pods=ALL_PODS)
    holder = placed(start_forwarder, bed, function_url)
    here, there = (s for s in ALL_PODS if s != holder)
    leader = replica(start_forwarder, bed, function_url, "replica-0", here)
    wait_until(leader.leading, timeout=30, what="the leader")
    replica(start_forwarder, bed, function_url, "replica-1", there)
    wait_rounds(leader, 2)

    off = time.time()
    bed.nodes[holder].power(Power.SILENT)
    wait_until(lambda: bed.holder() not in (None, holder), timeout=30, what="the IP moved")
    assigned_in = bed.assigned_after(off)
    detail = bed.suspected()[bed.nodes[holder].name]["detail"]
    assert f"confirmed by replica-1 on {bed.nodes[there].name}" in detail
    assert leader.metric("suspected_nodes") == 1
    print(f"confirmed by the other replica: assign request {assigned_in:.2f}s")


@pytest.mark.slow
def test_standby_dies_with_the_holder_and_the_leader_judges_alone_after_the_wait(
    start_forwarder: StartForwarder,
    function_url: str,  # noqa: F811
    cluster: Callable[..., Cluster],
) -> None:
    """No second vantage point answers (the standby ran on the holder's node): after
    CONFIRM_WAIT the leader judges alone, as its own node still reaches the third node."""
    bed = cluster([Port(TCP_PORT)], pods=ALL_PODS)
    holder = placed(start_forwarder, bed, function_url)
    here = next(s for s in ALL_PODS if s != holder)
    leader = replica(start_forwarder, bed, function_url, "replica-0", here)
    wait_until(leader.leading, timeout=30, what="the leader")
    standby = replica(start_forwarder, bed, function_url, "replica-1", holder)
    wait_rounds(leader, 2)

    off = time.time()
    standby.crash()
    bed.nodes[holder].power(Power.SILENT)
    wait_until(lambda: bed.holder() not in (None, holder), timeout=30, what="the IP moved")
    assigned_in = bed.assigned_after(off)
    suspicion = bed.suspected()[bed.nodes[holder].name]
    assert suspicion["probe"] == "tcp"
    assert "no other replica answered (one vantage point)" in suspicion["detail"]
    print(f"no second vantage point: assign request {assigned_in:.2f}s")


LOSS_ROUNDS = 45
"""Rounds of the short loss test; the bench runs the same for 10 minutes."""


@pytest.mark.slow
def test_loss_on_the_holders_links_moves_nothing(
    start_forwarder: StartForwarder,
    function_url: str,  # noqa: F811
    cluster: Callable[..., Cluster],
) -> None:
    """20 % of the packets to and from the holder's pod are lost at random (iptables in the
    bed's namespace), seen by both replicas: probes fail, the node is never suspected."""
    if shutil.which("iptables") is None:
        pytest.skip("iptables is not installed (apt-get install iptables)")
    bed = cluster([Port(TCP_PORT)], pods=ALL_PODS)
    holder = placed(start_forwarder, bed, function_url)
    here, there = (s for s in ALL_PODS if s != holder)
    leader = replica(start_forwarder, bed, function_url, "replica-0", here)
    wait_until(leader.leading, timeout=30, what="the leader")
    replica(start_forwarder, bed, function_url, "replica-1", there)
    wait_rounds(leader, 2)
    assigned, failed = bed.assignments(), leader.metric("probe_failures")
    drop = ["-m", "statistic", "--mode", "random", "--probability", "0.2", "-j", "DROP"]
    rules = [
        rule
        for listener in bed.nodes[holder].listeners
        for rule in (
            ["INPUT", "-d", listener.address[0], "-p", "tcp", "--dport", str(TCP_PORT)],
            ["OUTPUT", "-s", listener.address[0], "-p", "tcp", "--sport", str(TCP_PORT)],
        )
    ]
    for rule in rules:
        subprocess.run(["iptables", "-A", *rule, *drop], check=True)
    try:
        wait_rounds(leader, LOSS_ROUNDS)
        dropped = sum(_dropped(chain) for chain in ("INPUT", "OUTPUT"))
    finally:
        for rule in rules:
            subprocess.run(["iptables", "-D", *rule, *drop], check=True)
    # Six connects per endpoint a round: a lost SYN rarely fails a probe, never a node.
    assert dropped > LOSS_ROUNDS, "the loss was real"
    assert leader.metric("probe_failures") - failed <= LOSS_ROUNDS // 10
    assert bed.suspected() == {}
    assert (bed.holder(), bed.assignments()) == (holder, assigned)


def _dropped(chain: str) -> int:
    """Packets the random-drop rules of ``chain`` dropped so far."""
    listed = subprocess.run(
        ["iptables", "-L", chain, "-n", "-v", "-x"], capture_output=True, text=True, check=True
    ).stdout
    return sum(int(line.split()[0]) for line in listed.splitlines() if "statistic" in line)
