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
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from floating_ip_common import contract
from testbed import netns
from testbed.doks import DoksWorld
from testbed.forwarder_harness import ForwarderProcess
from testbed.kube import KubeBed, Port
from testbed.pods import NODE_LEASE_NAMESPACE, KubeletLease, PodListener, Power
from testbed.processes import wait_until
from tests.forwarder.conftest import StartForwarder
from tests.forwarder.test_function_e2e import function_url, world  # noqa: F401 - fixtures

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
        try:
            found = self.kube.core.read_namespaced_config_map(
                contract.SUSPICIONS_CONFIGMAP, contract.SUSPICIONS_NAMESPACE
            )
        except ApiException as error:
            if error.status == 404:
                return {}
            raise
        return {k: json.loads(v) for k, v in (found.data or {}).items()}

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

    def assignments(self) -> int:
        return len(self.world.do.requests("POST", ACTIONS))

    def other(self, short: str) -> str:
        return next(s for s in self.nodes if s != short)


@pytest.fixture
def cluster(
    world: DoksWorld,  # noqa: F811 - the imported fixture
    kube: KubeBed,
    namespace: str,
) -> Iterator[Callable[[list[Port]], Cluster]]:
    """``make(ports)``: three nodes a, b, c whose kubelets renew their Leases, the Service
    ``web`` with ``ports`` and the reserved IP, and a ready pod on a and on b whose listeners
    answer on every TCP port."""
    made: list[Node] = []
    with_namespace(kube)

    def make(ports: list[Port]) -> Cluster:
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
        for short in ("a", "b"):
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


def start(start_forwarder: StartForwarder, cluster: Cluster, url: str) -> ForwarderProcess:
    forwarder = start_forwarder(
        cluster.namespace, FUNCTION_URL=url, CLUSTER_ID=cluster.world.cluster_id, **DETECTION
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
    cluster: Callable[[list[Port]], Cluster],
    power: Power,
) -> None:
    bed = cluster([Port(TCP_PORT)])
    start(start_forwarder, bed, function_url)
    holder = bed.holder()
    assert holder in ("a", "b")
    survivor = "b" if holder == "a" else "a"

    off = time.time()
    bed.nodes[holder].power(power)
    wait_until(lambda: bed.holder() == survivor, timeout=30, what=f"the IP on {survivor}")
    moved_in = time.time() - off

    [assign] = [r for r in bed.world.do.requests("POST", ACTIONS) if r.at >= off]
    event = bed.event("Unreachable")
    assert event.type == "Warning"
    assert f"Node {bed.nodes[holder].name} is unreachable: tcp probe failed since" in (
        event.message or ""
    )
    assert bed.suspected()[bed.nodes[holder].name]["probe"] == "tcp"
    print(f"{power.value}: assign request {assign.at - off:.2f}s, moved {moved_in:.2f}s")


@pytest.mark.slow
def test_forwarder_cut_off_from_every_node_moves_nothing(
    start_forwarder: StartForwarder,
    function_url: str,  # noqa: F811
    cluster: Callable[[list[Port]], Cluster],
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
    cluster: Callable[[list[Port]], Cluster],
) -> None:
    bed = cluster([Port(5353, "UDP")])
    start(start_forwarder, bed, function_url)
    holder = bed.holder()
    assert holder in ("a", "b")
    off = time.time()
    bed.nodes[holder].power(Power.REFUSING)
    wait_until(lambda: bed.holder() == bed.other(holder), timeout=30, what="the IP moved")
    [assign] = [r for r in bed.world.do.requests("POST", ACTIONS) if r.at >= off]
    event = bed.event("Unreachable")
    assert "lease probe failed since" in (event.message or "")
    print(f"udp-only: assign request {assign.at - off:.2f}s after the last renewal stopped")


@pytest.mark.slow
def test_flap_resync_and_recovery(
    start_forwarder: StartForwarder,
    function_url: str,  # noqa: F811
    cluster: Callable[[list[Port]], Cluster],
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
    cluster: Callable[[list[Port]], Cluster],
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
    [assign] = [r for r in bed.world.do.requests("POST", ACTIONS) if r.at >= off]
    assert standby.leading()
    assert "tcp probe failed" in (bed.event("Unreachable").message or "")
    print(f"leader on the dead node: assign request {assign.at - off:.2f}s")
