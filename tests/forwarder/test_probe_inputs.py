"""What the leader probes and judges with: endpoint addresses and TCP ports from the slices,
kubelet Lease ages on this process's clock, and the published ConfigMap's round trip."""

from __future__ import annotations

import json

from floating_ip_forwarder.dead_nodes import suspicions_configmap
from floating_ip_forwarder.dead_nodes.kubelet_leases import NodeLeaseClock
from floating_ip_forwarder.dead_nodes.suspicion import Probe, Suspect
from floating_ip_forwarder.forwarding import projections
from floating_ip_forwarder.forwarding.index import ClusterIndex
from floating_ip_forwarder.forwarding.projections import NodeLeaseView
from tests.forwarder.test_index import node, svc
from tests.forwarder.test_projections import mutate, slice_obj


def with_ports(obj: dict[str, object]) -> dict[str, object]:
    obj["ports"] = [
        {"port": 8080, "protocol": "TCP"},
        {"port": 53, "protocol": "UDP"},
        {"port": 9090},
    ]
    return obj


def test_a_slice_gives_ready_addresses_and_tcp_ports_only() -> None:
    view = projections.endpoint_slice(with_ports(slice_obj()))
    assert view.probed == (("pool-a-1", "10.244.0.2"),), "the unready endpoint is not probed"
    assert view.tcp_ports == (8080, 9090)


def test_a_new_pod_ip_is_kept_for_probing_without_being_a_change() -> None:
    index = ClusterIndex()
    index.upsert(svc("web"))
    index.upsert(node("pool-a-1"))
    first = projections.endpoint_slice(with_ports(slice_obj()))
    assert index.upsert(first) == {("apps", "web")}
    moved = mutate(
        with_ports(slice_obj()),
        lambda o: o["endpoints"][0].update(addresses=["10.244.0.9"]),
    )
    assert index.upsert(projections.endpoint_slice(moved)) == frozenset()
    assert index.probe_targets() == {"pool-a-1": {("10.244.0.9", 8080), ("10.244.0.9", 9090)}}


def test_only_opted_in_services_are_probed_and_nodes_map_back_to_services() -> None:
    index = ClusterIndex()
    index.upsert(svc("web", holder="pool-a-3"))
    index.upsert(projections.endpoint_slice(with_ports(slice_obj())))
    other = mutate(
        with_ports(slice_obj()),
        lambda o: o["metadata"].update(name="db-abc", labels={"kubernetes.io/service-name": "db"}),
    )
    index.upsert(projections.endpoint_slice(other))
    assert set(index.probe_targets()) == {"pool-a-1"}
    assert index.services_on(["pool-a-3"]) == {("apps", "web")}, "the holder counts"
    assert index.services_on(["pool-a-1"]) == {("apps", "web")}
    assert index.services_on(["elsewhere"]) == frozenset()


def lease(name: str, renew: str | None) -> NodeLeaseView:
    return projections.node_lease({"metadata": {"name": name}, "spec": {"renewTime": renew}})


def test_lease_age_counts_from_the_last_change_seen_here_never_the_node_clock() -> None:
    clock = NodeLeaseClock()
    # The node's clock is a year off: it must not matter.
    clock.relisted([lease("n1", "2027-01-01T00:00:00.000000Z")], now=100.0)
    assert clock.ages(105.0) == {"n1": 5.0}
    clock.saw(lease("n1", "2027-01-01T00:00:00.000000Z"), now=110.0)  # same renewTime
    assert clock.ages(130.0) == {"n1": 30.0}
    clock.saw(lease("n1", "2027-01-01T00:00:10.000000Z"), now=131.0)
    assert clock.ages(132.0) == {"n1": 1.0}


def test_a_relist_forgets_deleted_leases_and_keeps_unchanged_ones() -> None:
    clock = NodeLeaseClock()
    clock.relisted([lease("n1", "a"), lease("n2", "a")], now=0.0)
    clock.relisted([lease("n1", "a")], now=10.0)
    assert clock.ages(12.0) == {"n1": 12.0}
    clock.forget("n1")
    assert clock.ages(12.0) == {}


def test_the_board_round_trips_and_is_readable() -> None:
    suspects = [
        Suspect("n1", Probe.TCP, 1000.0, "2 endpoints refused or timed out 2 times in a row"),
        Suspect("n2", Probe.LEASE, 1005.0, "kubelet Lease not renewed for 20 s"),
    ]
    offset = 1_780_000_000.0
    data = suspicions_configmap.encode(suspects, offset)
    assert json.loads(data["n1"]) == {
        "probe": "tcp",
        "since": suspicions_configmap.wall_text(1000.0 + offset),
        "detail": "2 endpoints refused or timed out 2 times in a row",
    }
    assert suspicions_configmap.decode(data, offset) == suspects


def test_an_unreadable_entry_is_skipped() -> None:
    assert suspicions_configmap.decode({"n1": "{not json", "n2": '{"probe": "smoke"}'}, 0.0) == []
