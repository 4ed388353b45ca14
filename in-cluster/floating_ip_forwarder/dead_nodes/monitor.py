"""The probe loop: probe, judge (``suspicion``), and while leading publish (``board``) and
notify.

Every ``period`` every replica connects to every ready endpoint of the opted-in Services (TCP
ports), reads the kubelet Leases' ages and steps the suspicion state machine, so a standby
that takes over after the leader died (perhaps with the very node it should have noticed)
already knows. Only the leader writes: when the suspected set changed it replaces the
ConfigMap first and then hands the Services on the affected nodes to the dispatcher, so the
function reads the new set when it runs. A new leader merges what is already published.
"""

from __future__ import annotations

import http.client
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from floating_ip_common.kube_client import ApiError
from floating_ip_forwarder.dead_nodes import prober, suspicions_configmap
from floating_ip_forwarder.dead_nodes.kubelet_leases import NodeLeaseClock
from floating_ip_forwarder.dead_nodes.suspicion import (
    Limits,
    NodeRound,
    State,
    Suspect,
    adopt,
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
    ) -> None:
        self.settings = settings
        self.index = index
        self.leases = leases
        self.lock = lock
        self.board = board
        self.touch = touch
        self.metrics = metrics
        self.stopping = stopping
        self.clock = clock
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
        self.thread.start()

    def run(self) -> None:
        next_round = self.clock()
        while not self.stopping.wait(max(0.0, next_round - self.clock())):
            next_round = self.clock() + self.settings.period
            try:
                self.round()
            except (ApiError, OSError, http.client.HTTPException, ValueError) as error:
                log.warning("suspicions not published, will retry", extra={"error": str(error)})
            except Exception:
                log.exception("probe round failed unexpectedly")

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
        self._state = step(self._state, rounds, now, self.settings.limits)
        self.metrics.probe_rounds.inc()
        self.metrics.probes.inc(len(answers))
        self.metrics.probe_failures.inc(sum(not ok for ok in answers.values()))
        self.metrics.suspected.set(len(self._state.suspects))
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


def _signature(suspects: Iterable[Suspect]) -> Published:
    return frozenset((s.node, s.probe.value) for s in suspects)
