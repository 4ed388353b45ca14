"""Relay mode end to end on the real control plane and the DigitalOcean imitation, beyond the
placement suites that run in both modes: the function is given no way to the apiserver, the
new anchor is written by the caller before the IP moves (two calls), a write that lost a race
is made again only from fresh state, and no secret or token ever appears in an answer."""

from __future__ import annotations

import json
import logging

import pytest

from floating_ip_common import contract
from testbed.doks import DoksWorld
from testbed.function_harness import FunctionRunner, move_traefik, serve_traefik
from testbed.kube import KubeBed
from testbed.relay_courier import RelayCourier

IP = "192.0.2.50"
pytestmark = pytest.mark.parametrize("cluster_access", ["relay"])


def courier(runner: FunctionRunner) -> RelayCourier:
    assert runner.courier is not None
    return runner.courier


def test_the_function_has_no_way_to_the_apiserver(runner: FunctionRunner) -> None:
    assert not [k for k in runner.env if k.startswith("KUBE_")]
    assert runner.env["CLUSTER_ACCESS"] == "relay"


def test_a_move_is_two_calls_the_new_anchor_written_before_the_ip_moves(
    runner: FunctionRunner, world: DoksWorld, kube: KubeBed, namespace: str
) -> None:
    serve_traefik(world, namespace, IP, "a")
    runner.ok()
    assert world.holder_of(IP) == "a"
    move_traefik(world, namespace, 2, "b")

    report = runner.ok()

    first, second = courier(runner).rounds
    assert first.body["again"] is True
    assert not [c for c in first.body["changes"] if c["kind"] == "reserved_ip"]
    [add] = [w for w in first.body["kubernetes_writes"] if w["method"] == "PATCH"]
    anchors = [world.droplets[n].anchor_ip for n in ("a", "b")]
    assert add["body"]["spec"]["externalIPs"] == anchors, "both anchors while the IP moves"
    assert add["body"]["metadata"]["resourceVersion"], "conditional on what was decided from"
    assert second.body["again"] is False
    assert [c["node"] for c in second.body["changes"] if c["kind"] == "reserved_ip"] == [
        world.node("b")
    ]
    assert world.holder_of(IP) == "b"
    svc = kube.core.read_namespaced_service("traefik", namespace)
    assert svc.spec.external_ips == [world.droplets["b"].anchor_ip]
    assert report["errors"] == []
    runner.assert_an_idle_resync_writes_nothing(namespace)


def test_a_write_that_lost_a_race_is_decided_again_from_fresh_state(
    runner: FunctionRunner, world: DoksWorld, kube: KubeBed, namespace: str
) -> None:
    serve_traefik(world, namespace, IP, "a")
    # Someone else writes the Service between the function's answer and its writes.
    courier(runner).before_writes = lambda: kube.annotate_service(
        namespace, "traefik", {"team": "edge"}
    )

    runner.ok()

    assert len(courier(runner).rounds) >= 2, "the stale write was refused, then decided again"
    svc = kube.core.read_namespaced_service("traefik", namespace)
    assert svc.metadata.annotations["team"] == "edge", "the other writer's change is kept"
    assert svc.metadata.annotations[contract.HOLDER_NODE] == world.node("a")
    assert world.holder_of(IP) == "a"


def test_answers_and_logs_hold_no_secret_and_the_event_size_is_bounded(
    runner: FunctionRunner,
    world: DoksWorld,
    namespace: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    serve_traefik(world, namespace, IP, "a")
    runner.ok()
    move_traefik(world, namespace, 2, "b")
    runner.ok()
    text = json.dumps([r.body for r in courier(runner).rounds]) + caplog.text
    for secret in (runner.env["WEB_SECRET"], runner.env["DIGITALOCEAN_TOKEN"], runner.kube_token):
        assert secret not in text
    assert max(courier(runner).sent_bytes) < 256 * 1024
