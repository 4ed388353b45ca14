"""The probe loop: probe, judge (``suspicion``), tell the other replicas what this one sees
(``observations``), and while leading publish (``board``) and notify.

Every ``period`` every replica connects to every ready endpoint of the opted-in Services (TCP
ports), reads the kubelet Leases' ages and steps the suspicion state machine, so a standby
that takes over after the leader died (perhaps with the very node it should have noticed)
already knows. Each replica writes its own observation when it changes (and as a heartbeat
during an incident); when another replica's observation changes, the last round is judged
again at once, so a confirmation does not wait for the next round. Only the leader writes
the suspicions: when the suspected set changed it replaces the ConfigMap first and then
hands the Services on the affected nodes to the dispatcher, so the function reads the new
set when it runs. A new leader merges what is already published.
"""

from __future__ import annotations

import http.client
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from floating_ip_common.kube_client import ApiError
from floating_ip_forwarder.dead_nodes import observations, prober, suspicions_configmap
from floating_ip_forwarder.dead_nodes.kubelet_leases import NodeLeaseClock
from floating_ip_forwarder.dead_nodes.node_events import NodeEvents
from floating_ip_forwarder.dead_nodes.observations import (
    ObservationBoard,
    ObservationWatch,
    PeerBook,
)
from floating_ip_forwarder.dead_nodes.suspicion import (
    Limits,
    NodeRound,
    State,
    Suspect,
    Vantage,
    adopt,
    rejudge,
    step,
)
from floating_ip_forwarder.dead_nodes.suspicions_configmap import Board
from floating_ip_forwarder.forwarding import cloudevent
from floating_ip_forwarder.forwarding.index import ClusterIndex
from floating_ip_forwarder.ops.metrics import ForwarderMetrics

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ProbeSettings:
    tcp: bool = True
    """Off: judge by the kubelet Leases alone."""
    period: float = 1.0
    timeout: float = 0.5
    limits: Limits = field(default_factory=Limits)


FORGET_AFTER = 600.0
"""The leader removes another replica's observation unchanged this long (its pod is gone, as
a rule; a live replica writes it again at its next incident)."""

Published = frozenset[tuple[str, str]]
"""``(node, probe)`` pairs: what the ConfigMap says (its "since" never changes a suspicion)."""


class Monitor:
    def __init__(
        self,
        *,
        settings: ProbeSettings,
        index: ClusterIndex,
        leases: NodeLeaseClock,
        lock: threading.Lock,
        board: Board,
        touch: Callable[[list[str]], None],
        metrics: ForwarderMetrics,
        stopping: threading.Event,
        clock: Callable[[], float] = time.monotonic,
        own_node: str | None = None,
        peers: PeerBook | None = None,
        observation_board: ObservationBoard | None = None,
        node_events: NodeEvents | None = None,
    ) -> None:
        """Without ``peers`` and ``observation_board`` this replica is its only vantage
        point (it judges alone after ``limits.confirm_wait``)."""
        self.settings = settings
        self.index = index
        self.leases = leases
        self.lock = lock
        self.board = board
        self.touch = touch
        self.metrics = metrics
        self.stopping = stopping
        self.clock = clock
        self.own_node = own_node
        self.peers = peers
        self.observation_board = observation_board
        self.observation_watch: ObservationWatch | None = None
        """Feeds ``peer_data``; started and stopped with the monitor."""
        self.node_events = node_events
        """Started and stopped with the monitor; only the leader reports."""
        self._evented: frozenset[str] = frozenset()
        """Unconfirmed nodes the leader has created an Event about, until they leave the
        unconfirmed set: one Event per node per time it becomes unconfirmed."""
        self._news = threading.Event()
        self._written: tuple[frozenset[str], bool] = (frozenset(), False)
        """This replica's observation as last written (nothing to say at first)."""
        self._written_at: float | None = None
        self._unconfirmed: dict[str, str] = {}
        self._leading = threading.Event()
        self._state = State()
        self._published: Published | None = None
        """``None``: not read yet in this leadership."""
        self.thread = threading.Thread(target=self.run, name="probes", daemon=True)

    def set_leading(self, leading: bool) -> None:
        if leading:
            self._leading.set()
        else:
            self._leading.clear()

    def start(self) -> None:
        if self.observation_watch is not None:
            self.observation_watch.start()
        if self.node_events is not None:
            self.node_events.start()
        self.thread.start()

    def stop(self) -> None:
        """Break the observations' watch and end the Events' thread (``stopping`` must
        already be set)."""
        if self.observation_watch is not None:
            self.observation_watch.stop()
        if self.node_events is not None:
            self.node_events.stop()

    def threads(self) -> list[threading.Thread]:
        watch = [self.observation_watch.thread] if self.observation_watch is not None else []
        events = [self.node_events.thread] if self.node_events is not None else []
        return [self.thread, *watch, *events]

    def peer_data(self, data: Any) -> None:
        """The observations ConfigMap as now (from its watch): judge again if it changed."""
        if self.peers is not None and self.peers.saw(data):
            self._news.set()

    def run(self) -> None:
        next_round = self.clock()
        while not self.stopping.is_set():
            news = self._news.wait(max(0.0, next_round - self.clock()))
            if self.stopping.is_set():
                return
            try:
                if news:
                    self._news.clear()
                    self.news()
                else:
                    next_round = self.clock() + self.settings.period
                    self.round()
            except (ApiError, OSError, http.client.HTTPException, ValueError) as error:
                log.warning("suspicions not published, will retry", extra={"error": str(error)})
            except Exception:
                log.exception("probe round failed unexpectedly")

    def vantage(self) -> Vantage:
        fresh = self.peers.fresh(self.settings.limits.confirm_wait) if self.peers else ()
        return Vantage(self.own_node, fresh)

    def news(self) -> None:
        """Another replica's observation changed: the last round judged again, no probes."""
        if not self._state.last:
            return
        now = self.clock()
        self._state = rejudge(self._state, now, self.settings.limits, self.vantage())
        # A leader that has not read what is published yet publishes at its next round.
        leading = self._leading.is_set() and self._published is not None
        self._after_judging(now, leading, time.time() - now)

    def round(self) -> None:
        offset = time.time() - self.clock()
        leading = self._leading.is_set()
        if not leading:
            self._published = None
        elif self._published is None:
            adopted = suspicions_configmap.decode(self.board.read(), offset)
            self._state = adopt(self._state, adopted)
            self._published = _signature(adopted)
        with self.lock:
            targets = self.index.probe_targets() if self.settings.tcp else {}
            nodes = self.index.node_names()
        answers = prober.probe((t for found in targets.values() for t in found), self.timeout)
        now = self.clock()
        with self.lock:
            ages = self.leases.ages(now)
        rounds = {
            node: NodeRound(
                probed=len(targets.get(node, ())),
                answered=sum(answers.get(t, False) for t in targets.get(node, ())),
                lease_age=ages.get(node),
            )
            for node in nodes
        }
        self._state = step(self._state, rounds, now, self.settings.limits, self.vantage())
        self.metrics.probe_rounds.inc()
        self.metrics.probes.inc(len(answers))
        self.metrics.probe_failures.inc(sum(not ok for ok in answers.values()))
        self._after_judging(now, leading, offset)

    def _after_judging(self, now: float, leading: bool, offset: float) -> None:
        self.metrics.suspected.set(len(self._state.suspects))
        self._report_unconfirmed()
        self._observe(now, offset)
        if leading:
            self._forget_gone_replicas()
        signature = _signature(self._state.suspects.values())
        if not leading or signature == self._published:
            return
        self.board.write(suspicions_configmap.encode(self._state.suspects.values(), offset))
        changed = {node for node, _ in signature ^ (self._published or frozenset())}
        self._published = signature
        log.warning(
            "suspected nodes changed",
            extra={
                "suspected": {s.node: s.detail for s in self._state.suspects.values()},
                "changed": sorted(changed),
            },
        )
        with self.lock:
            affected = self.index.services_on(changed)
        self.touch([cloudevent.subject_of(namespace, name) for namespace, name in affected])

    @property
    def timeout(self) -> float:
        return self.settings.timeout

    def _report_unconfirmed(self) -> None:
        unconfirmed = dict(self._state.unconfirmed)
        self.metrics.unconfirmed.set(len(unconfirmed))
        if unconfirmed != self._unconfirmed and unconfirmed:
            log.warning(
                "nodes look dead from here only: not suspected",
                extra={"unconfirmed": unconfirmed, "node": self.own_node},
            )
        self._unconfirmed = unconfirmed
        self._event_unconfirmed(frozenset(unconfirmed))

    def _event_unconfirmed(self, unconfirmed: frozenset[str]) -> None:
        """While leading, one Event per node newly settled unconfirmed (``report`` only
        queues: the probe loop never waits for the API server)."""
        if self.node_events is None or not self._leading.is_set():
            self._evented = frozenset()
            return
        settled = self._state.settled_unconfirmed
        for node in sorted(settled.keys() - self._evented):
            with self.lock:
                uid = self.index.node_uid(node)
            self.node_events.report(node, settled[node], uid)
        # Forgotten only once it is not unconfirmed at all: waiting again is no new failure.
        self._evented = (self._evented & unconfirmed) | frozenset(settled)

    def _observe(self, now: float, offset: float) -> None:
        """Write this replica's observation when it changed, or as a heartbeat while an
        incident is on (its own failing set or a fresh peer's is not empty)."""
        if self.observation_board is None or self.peers is None:
            return
        mine = (self._state.failing, self._state.cut_off)
        heartbeat = self.settings.limits.confirm_wait / 3
        incident = bool(mine[0]) or any(
            p.failing for p in self.peers.fresh(self.settings.limits.confirm_wait)
        )
        due = incident and (self._written_at is None or now - self._written_at >= heartbeat)
        if mine == self._written and not due:
            return
        text = observations.encode(self.own_node, mine[0], mine[1], now + offset)
        try:
            self.observation_board.patch({self.peers.identity: text})
        except (ApiError, OSError, http.client.HTTPException, ValueError) as error:
            log.warning("observation not written, will retry", extra={"error": str(error)})
            return
        self.metrics.observation_writes.inc()
        self._written, self._written_at = mine, now

    def _forget_gone_replicas(self) -> None:
        if self.observation_board is None or self.peers is None:
            return
        gone = self.peers.forgotten(FORGET_AFTER)
        if not gone:
            return
        try:
            self.observation_board.patch(dict.fromkeys(gone))
            self.peers.saw_removed(gone)
        except (ApiError, OSError, http.client.HTTPException, ValueError) as error:
            log.warning("old observations not removed", extra={"error": str(error)})


def _signature(suspects: Iterable[Suspect]) -> Published:
    return frozenset((s.node, s.probe.value) for s in suspects)
