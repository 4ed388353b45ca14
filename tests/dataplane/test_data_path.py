"""The promise, checked on packets: traffic to the reserved IP reaches the pod on the node the
function chose, with the client's own address, through a real kube-proxy.

Every test runs in both proxy modes (nftables, iptables) and both ways of exposing a Service
(``spec.externalIPs`` with the anchor; ``type: LoadBalancer`` of our class, whose
``status.loadBalancer.ingress`` lists the reserved IP and the anchor with ``ipMode: VIP``).
The function runs for real against the DigitalOcean imitation; the edge delivers the reserved
IP wherever the imitation says it is assigned. A wrong placement shows as lost traffic.
"""

from __future__ import annotations

from typing import Any

import pytest

from floating_ip_common import contract
from testbed.dataplane.bed import DataPathBed
from testbed.dataplane.client import Outcome, request
from testbed.dataplane.namespaces import Namespace
from testbed.dataplane.network import CLIENT_ADDRESS
from testbed.function_harness import FunctionRunner
from testbed.kube import Port
from testbed.processes import wait_until

IP = "192.0.2.30"
"""Not another suite's IP: their Services stay in earlier namespaces and share its claim."""
WEB = 8080
ADMIN = 9090
PROTOCOLS = ("TCP", "UDP")
EXPOSURES = ("externalIPs", "LoadBalancer")
OTHER_CLASS = "example.com/other-load-balancer"
"""A class the function leaves alone, for a Service whose status the test writes."""
PROGRAMMED = 20.0
"""kube-proxy syncs at most once a second; a change reaches the rules within a few syncs."""

SHAPES: dict[str, dict[str, Any]] = {
    "LoadBalancer": {
        "service_type": "LoadBalancer",
        "load_balancer_class": contract.LOAD_BALANCER_CLASS,
        "allocate_load_balancer_node_ports": False,
        "external_traffic_policy": "Local",
    },
    # externalTrafficPolicy is refused on a ClusterIP Service ("may only be set for
    # externally-accessible services"): externalIPs mode keeps the client's address only
    # on a NodePort Service (see the ClusterIP test below).
    "externalIPs": {"service_type": "NodePort", "external_traffic_policy": "Local"},
    "externalIPs-ClusterIP": {},
}
"""How each exposure mode shapes the Service."""

pytestmark = pytest.mark.slow
in_both_exposures = pytest.mark.parametrize("exposure", EXPOSURES)


def expose(bed: DataPathBed, namespace: str, name: str, port: int, exposure: str) -> None:
    """Service ``name`` for the pods ``app=web`` on ``port`` (TCP and UDP), opted in for IP."""
    by_exposure = SHAPES[exposure]
    bed.world.kube.create_service(
        namespace,
        name,
        [Port(port), Port(port, "UDP", name=f"udp-{port}")],
        selector={"app": "web"},
        annotations={contract.ADDRESS: IP},
        **by_exposure,
    )


def serve(bed: DataPathBed, namespace: str, pod: str, node: str) -> None:
    bed.add_pod(namespace, pod, node, {"app": "web"}, [WEB, ADMIN])
    for service in ("web", "admin"):
        bed.world.kube.sync_endpoint_slices(namespace, service)


def placed(bed: DataPathBed, runner: FunctionRunner, namespace: str, exposure: str) -> None:
    """Two Services sharing IP on WEB and ADMIN, exposed as ``exposure``, their pod on node a,
    placed there by the function."""
    for service, port in (("web", WEB), ("admin", ADMIN)):
        expose(bed, namespace, service, port, exposure)
    bed.follow(IP)
    bed.world.do.add_reserved_ip(IP, region=bed.world.region)
    serve(bed, namespace, "web-1", "a")
    runner.ok()
    assert bed.world.holder_of(IP) == "a"


def answer(netns: Namespace, pod: str, port: int, protocol: str, ip: str = IP) -> Outcome:
    """The first answer from ``pod`` through ``ip:port`` (a failure names the last outcome)."""
    seen: list[Outcome] = []

    def answered() -> bool:
        seen.append(request(netns, ip, port, protocol))
        return seen[-1].pod == pod

    try:
        wait_until(answered, timeout=PROGRAMMED, what=f"{pod} answers {protocol} {ip}:{port}")
    except TimeoutError as error:
        raise AssertionError(f"{error}; last outcome {seen[-1:]}") from None
    return seen[-1]


def unanswered(netns: Namespace, port: int, protocol: str, ip: str = IP) -> None:
    """Until nothing answers at ``ip:port`` (a pod still answering fails the test)."""
    wait_until(
        lambda: request(netns, ip, port, protocol).answer is None,
        timeout=PROGRAMMED,
        what=f"{protocol} {ip}:{port} unanswered",
    )


@in_both_exposures
def test_a_client_reaches_the_holders_pod_with_its_own_address(
    bed: DataPathBed, runner: FunctionRunner, namespace: str, exposure: str
) -> None:
    placed(bed, runner, namespace, exposure)

    client = bed.network.client
    for protocol in PROTOCOLS:
        for port in (WEB, ADMIN):  # the Service sharing the IP on other ports too
            seen = answer(client, "web-1", port, protocol)
            assert seen.answer is not None and seen.answer.source == CLIENT_ADDRESS, seen

    # Only the holder's anchor is listed: the other nodes do not take the Service's traffic.
    for short in ("b", "c"):
        anchor = bed.world.droplets[short].anchor_ip
        for protocol in PROTOCOLS:
            outcome = request(client, anchor, WEB, protocol)
            assert outcome.answer is None, f"{short} answered: {outcome}"


@in_both_exposures
def test_after_a_move_the_client_reaches_the_new_holder(
    bed: DataPathBed, runner: FunctionRunner, namespace: str, exposure: str
) -> None:
    placed(bed, runner, namespace, exposure)
    client = bed.network.client
    answer(client, "web-1", WEB, "TCP")

    # The pod is rescheduled: gone from a, started on b.
    bed.remove_pod("web-1")
    serve(bed, namespace, "web-2", "b")
    runner.ok()
    assert bed.world.holder_of(IP) == "b"

    for protocol in PROTOCOLS:
        for port in (WEB, ADMIN):
            seen = answer(client, "web-2", port, protocol)
            assert seen.answer is not None and seen.answer.source == CLIENT_ADDRESS, seen
    # a's anchor is no longer listed, and a has no ready endpoint: a does not answer.
    for protocol in PROTOCOLS:
        unanswered(client, WEB, protocol, ip=bed.world.droplets["a"].anchor_ip)


@in_both_exposures
def test_an_opted_out_service_stops_being_reachable(
    bed: DataPathBed, runner: FunctionRunner, namespace: str, exposure: str
) -> None:
    placed(bed, runner, namespace, exposure)
    client = bed.network.client
    answer(client, "web-1", ADMIN, "TCP")

    bed.world.kube.annotate_service(namespace, "admin", {contract.ADDRESS: None})
    runner.ok()

    for protocol in PROTOCOLS:
        unanswered(client, ADMIN, protocol)
        answer(client, "web-1", WEB, protocol)  # the Service still opted in keeps working


@in_both_exposures
def test_a_pod_in_the_cluster_reaches_the_service_through_the_reserved_ip(
    bed: DataPathBed, runner: FunctionRunner, namespace: str, exposure: str
) -> None:
    """From a pod on another node, in both modes; from a pod on the holder itself only in
    LoadBalancer-class mode, where the reserved IP is a VIP kube-proxy serves on every node.

    In externalIPs mode the reserved IP is not the node's: the packet leaves for the edge,
    comes back addressed to the anchor, and the pod's answer is un-NATed on the node to come
    from the anchor, not the reserved IP, so the caller drops it (with DOKS's masquerading it
    would come back from the node's own address and be dropped as a martian instead)."""
    placed(bed, runner, namespace, exposure)

    elsewhere = bed.add_pod(namespace, "probe-b", "b", {"app": "probe"}, [])
    for protocol in PROTOCOLS:
        seen = answer(elsewhere.net.netns, "web-1", WEB, protocol)
        assert seen.answer is not None and seen.answer.source == elsewhere.net.ip, seen

    on_holder = bed.add_pod(namespace, "probe-a", "a", {"app": "probe"}, [])
    for protocol in PROTOCOLS:
        if exposure == "LoadBalancer":
            seen = answer(on_holder.net.netns, "web-1", WEB, protocol)
            assert seen.answer is not None and seen.answer.source == on_holder.net.ip, seen
        else:
            # The rules are in place (the pod on b was answered): no answer ever comes back.
            outcomes = [request(on_holder.net.netns, IP, WEB, protocol) for _ in range(3)]
            assert all(o.answer is None for o in outcomes), outcomes


@pytest.mark.parametrize("exposure", ["externalIPs-ClusterIP"])
def test_a_cluster_ip_service_with_the_anchor_hides_the_client_address(
    bed: DataPathBed, runner: FunctionRunner, namespace: str, exposure: str
) -> None:
    """The limit of externalIPs mode on ``type: ClusterIP``: the Service cannot have
    ``externalTrafficPolicy: Local``, so kube-proxy masquerades and the pod sees the node."""
    placed(bed, runner, namespace, exposure)

    for protocol in PROTOCOLS:
        seen = answer(bed.network.client, "web-1", WEB, protocol)
        assert seen.answer is not None
        assert seen.answer.source == bed.world.droplets["a"].anchor_ip, seen


@in_both_exposures
def test_a_node_listed_without_a_ready_endpoint_drops_the_traffic(
    bed: DataPathBed, runner: FunctionRunner, namespace: str, exposure: str
) -> None:
    """What a wrong placement looks like: an anchor listed on a node with no ready endpoint
    is dropped there (``externalTrafficPolicy: Local``), the client waits in vain. Listed here
    by hand, where ``exposure`` lists it, in a Service the function does not manage."""
    placed(bed, runner, namespace, exposure)
    anchor_c = bed.world.droplets["c"].anchor_ip
    list_by_hand(bed, namespace, "stray", anchor_c, exposure)
    client = bed.network.client

    # Refused until c's kube-proxy has the Service (nothing listens there), then dropped.
    wait_until(
        lambda: request(client, anchor_c, WEB, "TCP").failure == "timeout",
        timeout=PROGRAMMED,
        what="c drops TCP to its listed anchor",
    )
    for protocol in PROTOCOLS:
        outcome = request(client, anchor_c, WEB, protocol)
        assert outcome.answer is None and outcome.failure == "timeout", outcome
    answer(client, "web-1", WEB, "TCP")  # the holder still serves the reserved IP


def list_by_hand(bed: DataPathBed, namespace: str, name: str, anchor: str, exposure: str) -> None:
    """Service ``name`` for the pods ``app=web`` on WEB with ``anchor`` listed as ``exposure``
    lists it: in ``spec.externalIPs``; or in ``status.loadBalancer.ingress`` (``ipMode: VIP``,
    as the function writes it) of a Service of another class, which nothing else writes."""
    kube = bed.world.kube
    ports = [Port(WEB), Port(WEB, "UDP", name="udp")]
    shape = dict(SHAPES[exposure])
    if exposure == "externalIPs":
        shape["external_ips"] = [anchor]
    else:
        shape["load_balancer_class"] = OTHER_CLASS
    kube.create_service(namespace, name, ports, selector={"app": "web"}, **shape)
    if exposure == "LoadBalancer":
        ingress = [{"ip": anchor, "ipMode": "VIP"}]
        kube.core.patch_namespaced_service_status(
            name, namespace, {"status": {"loadBalancer": {"ingress": ingress}}}
        )
    kube.sync_endpoint_slices(namespace, name)
