"""The leader's probe loop against real loopback listeners: a dead node is published first,
then its Services are sent; nothing is written while nothing changes; a new leader starts
from what is published."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from floating_ip_forwarder.dead_nodes.kubelet_leases import NodeLeaseClock
from floating_ip_forwarder.dead_nodes.monitor import Monitor, ProbeSettings
from floating_ip_forwarder.dead_nodes.observations import PeerBook
from floating_ip_forwarder.dead_nodes.suspicion import Limits
from floating_ip_forwarder.forwarding.index import ClusterIndex
from floating_ip_forwarder.forwarding.projections import EndpointView, NodeLeaseView, SliceView
from floating_ip_forwarder.ops.metrics import ForwarderMetrics
from tests.forwarder.test_index import node, svc


class Board:
    """Stands in for the ConfigMap: what was read and written, in order."""

    def __init__(self, data: dict[str, str] | None = None) -> None:
        self.data = dict(data or {})
        self.writes: list[dict[str, str]] = []
        self.calls: list[str] = []

    def read(self) -> dict[str, Any]:
        return dict(self.data)

    def write(self, data: dict[str, str]) -> None:
        self.calls.append("write")
        self.data = dict(data)
        self.writes.append(dict(data))


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def listeners() -> Iterator[dict[str, socket.socket]]:
    servers = {name: socket.create_server(("127.0.0.1", 0)) for name in ("n1", "n2", "n3")}
    yield servers
    for server in servers.values():
        server.close()


def build(
    servers: dict[str, socket.socket], board: Board, clock: Clock, touched: list[list[str]]
) -> Monitor:
    index = ClusterIndex()
    index.upsert(svc("web", holder="n1"))
    for name, server in servers.items():
        index.upsert(node(name))
        port = server.getsockname()[1]
        index.upsert(
            SliceView(
                ("apps", f"web-{name}"),
                "web",
                (EndpointView(name, f"web-{name}", True, True, False),),
                ((name, "127.0.0.1"),),
                (port,),
            )
        )
    leases = NodeLeaseClock()
    for name in servers:
        leases.saw(NodeLeaseView(name, "t0"), clock.now)

    def touch(subjects: list[str]) -> None:
        board.calls.append("touch")
        touched.append(subjects)

    monitor = Monitor(
        settings=ProbeSettings(period=1.0, timeout=0.3, limits=Limits(2, 20.0, 30.0, 0.0)),
        index=index,
        leases=leases,
        lock=threading.Lock(),
        board=board,
        touch=touch,
        metrics=ForwarderMetrics(),
        stopping=threading.Event(),
        clock=clock,
    )
    monitor.set_leading(True)
    return monitor


def test_a_dead_node_is_published_before_its_services_are_sent(
    listeners: dict[str, socket.socket],
) -> None:
    board, clock = Board(), Clock()
    touched: list[list[str]] = []
    monitor = build(listeners, board, clock, touched)
    monitor.round()
    assert board.writes == [] and touched == [], "all healthy: nothing written or sent"
    listeners["n1"].close()  # refused from now on
    monitor.round()
    clock.now += 1
    assert board.writes == []
    monitor.round()
    [written] = board.writes
    assert json.loads(written["n1"])["probe"] == "tcp"
    assert touched == [["apps/web"]]
    assert board.calls == ["write", "touch"]
    clock.now += 1
    monitor.round()
    assert len(board.writes) == 1, "unchanged: not written again"


def test_a_stale_lease_suspects_a_node_without_probes(
    listeners: dict[str, socket.socket],
) -> None:
    board, clock = Board(), Clock()
    touched: list[list[str]] = []
    monitor = build(listeners, board, clock, touched)
    clock.now += 25
    for name in ("n2", "n3"):
        monitor.leases.saw(NodeLeaseView(name, "t1"), clock.now)
    monitor.round()
    [written] = board.writes
    assert set(written) == {"n1"}
    assert json.loads(written["n1"])["probe"] == "lease"


def test_a_new_leader_keeps_what_was_published(listeners: dict[str, socket.socket]) -> None:
    published = {"n2": json.dumps({"probe": "tcp", "since": "2026-01-31T12:00:00Z", "detail": ""})}
    board, clock = Board(published), Clock()
    touched: list[list[str]] = []
    monitor = build(listeners, board, clock, touched)
    monitor.round()
    assert board.writes == [], "n2 answers now but must earn its hold-down first"
    clock.now += 31
    monitor.round()
    assert board.writes == [{}]
    assert touched == [["apps/web"]]


def test_a_standby_judges_too_and_publishes_at_once_when_it_takes_over(
    listeners: dict[str, socket.socket],
) -> None:
    """The leader died with n1: its successor already counted n1's failed rounds."""
    board, clock = Board(), Clock()
    touched: list[list[str]] = []
    monitor = build(listeners, board, clock, touched)
    monitor.set_leading(False)
    listeners["n1"].close()
    for _ in range(3):
        monitor.round()
        clock.now += 1
    assert board.writes == [] and touched == [], "a standby writes nothing"
    monitor.set_leading(True)
    monitor.round()
    [written] = board.writes
    assert set(written) == {"n1"}
    assert touched == [["apps/web"]]


# --- a second vantage point ----------------------------------------------------------------


class ObservationBoard:
    """Stands in for the observations ConfigMap: the merge patches, in order."""

    def __init__(self) -> None:
        self.patches: list[dict[str, str | None]] = []

    def patch(self, data: dict[str, str | None]) -> None:
        self.patches.append(dict(data))


def peer_entry(node: str, *failing: str, at: str = "t") -> str:
    return json.dumps({"node": node, "failing": sorted(failing), "cutOff": False, "at": at})


def with_peers(
    listeners: dict[str, socket.socket], clock: Clock
) -> tuple[Monitor, Board, ObservationBoard, PeerBook]:
    board, observations_board = Board(), ObservationBoard()
    peers = PeerBook("replica-0", clock)
    monitor = build(listeners, board, clock, [])
    monitor.settings = ProbeSettings(period=1.0, timeout=0.3, limits=Limits(2, 20.0, 30.0, 3.0))
    monitor.own_node = "n3"
    monitor.peers = peers
    monitor.observation_board = observations_board  # type: ignore[assignment]
    monitor.peer_data({"replica-1": peer_entry("n2")})  # as first listed: old news
    return monitor, board, observations_board, peers


def test_a_node_a_peer_still_reaches_is_reported_not_published(
    listeners: dict[str, socket.socket],
) -> None:
    clock = Clock()
    monitor, board, observations_board, _ = with_peers(listeners, clock)
    monitor.round()
    assert observations_board.patches == [], "nothing to say while all is well"
    listeners["n1"].close()
    for _ in range(2):
        monitor.round()
        clock.now += 1
    [mine] = observations_board.patches
    assert json.loads(mine["replica-0"] or "")["failing"] == ["n1"]
    for second in range(8):  # it answers, and keeps answering: n1 is fine from n2
        monitor.peer_data({"replica-1": peer_entry("n2", at=f"t{second}")})
        monitor.news()
        monitor.round()
        clock.now += 1
    assert board.writes == [], "never published"
    assert monitor.metrics.unconfirmed.value() == 1
    assert len(observations_board.patches) > 1, "heartbeats during the incident"


def test_a_confirmation_between_rounds_is_published_at_once(
    listeners: dict[str, socket.socket],
) -> None:
    clock = Clock()
    monitor, board, _, _ = with_peers(listeners, clock)
    listeners["n1"].close()
    for _ in range(2):
        monitor.round()
        clock.now += 1
    assert board.writes == []
    clock.now += 0.3
    monitor.peer_data({"replica-1": peer_entry("n2", "n1")})
    monitor.news()
    [written] = board.writes
    assert "confirmed by replica-1 on n2" in json.loads(written["n1"])["detail"]
    assert monitor.metrics.unconfirmed.value() == 0


def test_a_peer_that_stops_answering_leaves_this_replica_to_judge_alone(
    listeners: dict[str, socket.socket],
) -> None:
    """The other replica's node died with n1: its last word goes stale after CONFIRM_WAIT."""
    clock = Clock()
    monitor, board, _, _ = with_peers(listeners, clock)
    monitor.peer_data({"replica-1": peer_entry("n2", at="last")})
    listeners["n1"].close()
    for _ in range(4):
        monitor.round()
        clock.now += 1
    assert board.writes == []
    monitor.round()
    [written] = board.writes
    assert "one vantage point" in json.loads(written["n1"])["detail"]


# --- the Event about an unconfirmed node -----------------------------------------------------


class NodeEvents:
    """Stands in for the Events' writer: what the monitor reported, in order."""

    def __init__(self) -> None:
        self.reported: list[tuple[str, str, str | None]] = []

    def report(self, node: str, why: str, uid: str | None) -> None:
        self.reported.append((node, why, uid))


def disputed_rounds(monitor: Monitor, clock: Clock, rounds: int) -> None:
    """Rounds in which the other replica, on n2, keeps saying it reaches every node."""
    for second in range(rounds):
        monitor.peer_data({"replica-1": peer_entry("n2", at=f"t{clock.now}-{second}")})
        monitor.news()
        monitor.round()
        clock.now += 1


def test_the_leader_creates_one_event_each_time_a_node_becomes_unconfirmed(
    listeners: dict[str, socket.socket],
) -> None:
    clock = Clock()
    monitor, board, _, _ = with_peers(listeners, clock)
    monitor.index.upsert(replace(node("n1"), uid="uid-n1"))
    sink = NodeEvents()
    monitor.node_events = sink  # type: ignore[assignment]
    port = listeners["n1"].getsockname()[1]
    listeners["n1"].close()
    disputed_rounds(monitor, clock, 8)
    assert sink.reported == [("n1", "replica-1 still reach it", "uid-n1")], "once, not per round"

    listeners["n1"] = socket.create_server(("127.0.0.1", port))  # n1 answers again
    disputed_rounds(monitor, clock, 2)
    assert monitor.metrics.unconfirmed.value() == 0
    listeners["n1"].close()
    disputed_rounds(monitor, clock, 4)
    assert len(sink.reported) == 2, "a new failure, a new Event"
    assert board.writes == [], "never published"


def test_a_standby_creates_no_event_and_a_new_leader_reports_what_it_finds(
    listeners: dict[str, socket.socket],
) -> None:
    clock = Clock()
    monitor, _, _, _ = with_peers(listeners, clock)
    sink = NodeEvents()
    monitor.node_events = sink  # type: ignore[assignment]
    monitor.set_leading(False)
    listeners["n1"].close()
    disputed_rounds(monitor, clock, 4)
    assert monitor.metrics.unconfirmed.value() == 1 and sink.reported == []
    monitor.set_leading(True)
    disputed_rounds(monitor, clock, 3)
    assert [n for n, _, _ in sink.reported] == ["n1"]


def test_a_node_only_waiting_for_its_confirmation_gets_no_event(
    listeners: dict[str, socket.socket],
) -> None:
    """No other replica: the node waits ``confirm_wait`` and is then suspected, no Event."""
    clock = Clock()
    monitor = build(listeners, Board(), clock, [])
    monitor.settings = ProbeSettings(period=1.0, timeout=0.3, limits=Limits(2, 20.0, 30.0, 3.0))
    monitor.own_node = "n3"
    sink = NodeEvents()
    monitor.node_events = sink  # type: ignore[assignment]
    listeners["n1"].close()
    for _ in range(3):
        monitor.round()
        clock.now += 1
    assert monitor.metrics.unconfirmed.value() == 1, "waiting"
    for _ in range(3):
        monitor.round()
        clock.now += 1
    assert monitor.metrics.suspected.value() == 1
    assert sink.reported == []
