"""Failover latency on the whole system, as ``make demo`` runs it: the real control plane, the
DigitalOcean imitation, the function over HTTPS, the forwarder with its shipped settings and
identity, the annotator as each pod's init container.

Each move is a real move between nodes (a → b → c → a …), alternating two kinds of change:
*pod moved* (a new pod is Ready on the next node, then the old one is deleted, as at the end
of a rolling update) and *node NotReady* (pods on both nodes, the holder's node stops being
Ready). From the change, four milestones are timed: the new anchor listed (a watch of
``spec.externalIPs``, or of ``status.loadBalancer.ingress`` in LoadBalancer-class mode), the
assign request (the imitation's request log), the action completed (the imitation, polled)
and the old anchor dropped (the watch): the failover is done.

The moves are repeated at several action latencies (how long DigitalOcean takes to complete
an assignment): 0 s shows this project's own overhead; a realistic action adds its duration,
plus up to one action poll (0.15 s while the action is under 3 s old, then up to 1 s).
DigitalOcean publishes no figure: its own API example takes ~11 s, so the default second
setting, 2 s, shows how the latency adds up without making 30 moves last minutes;
``--latency`` takes any list.

Between moves the bench waits until the function has answered a call that started after the
last change (so no event is pending), and paces the moves so the forwarder's rate limit
(60 events a minute, bursts of 10) never delays an event: that wait would be measured
otherwise. Last, a burst: 200 readiness flips of a second Service's spare pods, as fast as the
EndpointSlice can be written (about a second; the EndpointSlice controller's writes, not the
kubelets'), and how many invocations they cost.
"""

from __future__ import annotations

import dataclasses
import itertools
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import yaml

from bench import figures
from bench.recorders import Monitor, ServiceWatch, external_ips, ingress_anchors
from demo import manifests, render
from demo.model import Droplet
from demo.narrator import Narrator
from demo.observe import ACTIONS_PATH
from demo.options import Options
from demo.system import System, running
from floating_ip_common import contract
from floating_ip_forwarder.app.settings import ForwarderSettings, parse_duration
from testbed.kube import Port
from testbed.processes import wait_until

POD_MOVED = "pod moved"
NODE_NOT_READY = "node NotReady"
KINDS = (POD_MOVED, NODE_NOT_READY)
SERVICE = "bench"
BURST_SERVICE = "burst"
PORTS = [Port(80, name="web"), Port(443, name="websecure")]
DEFAULT_MOVES = 30
DEFAULT_LATENCIES = (0.0, 2.0)
BURST_FLIPS = 200
MOVE_TIMEOUT = 30.0
"""Seconds a move may take beyond three action latencies."""
SETTLE_TIMEOUT = 30.0
SETTLE_MARGIN = 0.3
"""Settled: a call started after the change, and none for the quiet window plus this since
the last one ended. The forwarder sends a quiet Service's first change at once and coalesces
what follows (the move's second change, the function's own writes to the Service); a move
made before those are sent would not start from a quiet Service, and would measure the quiet
window instead of the failover."""
TOKENS_PER_MOVE = 3
"""Events a move may cost: the change, and margin for one more."""
CALLS_PER_MOVE = 30
"""DigitalOcean requests a move may cost (18 at a 2 s action, most of them reads of the
action): the bench waits until the token's minute has room for them. Back to back, the moves
would spend the token's 250 requests a minute, and a 429's ``Retry-After`` (1 s or more)
would be measured instead of the failover; a cluster fails over far less often."""
WRITES = ("POST", "PUT", "PATCH", "DELETE")
TOO_MANY = 429
"""A refused request does not count against the token's budget."""
EXTERNAL_IPS_MODE = "externalIPs"
CLASS_MODE = "loadBalancerClass"
MODES = (EXTERNAL_IPS_MODE, CLASS_MODE)
"""How the Service is exposed: the anchor in ``spec.externalIPs``, or a LoadBalancer Service
of our class whose ``status.loadBalancer.ingress`` lists it."""


@dataclass(frozen=True)
class FailoverOptions:
    moves: int = DEFAULT_MOVES
    """Moves per action latency (kinds alternate)."""
    latencies: tuple[float, ...] = DEFAULT_LATENCIES
    burst: bool = True
    mode: str = EXTERNAL_IPS_MODE
    cluster_access: str = "callback"
    """``relay``: the function reaches no apiserver (two calls per move)."""


@dataclass(frozen=True)
class RateLimit:
    """The forwarder's shared token bucket, as the shipped ConfigMap sets it."""

    per_minute: float
    burst: int
    quiet_window: float
    max_delay: float


def run(options: FailoverOptions, workdir: Path, log: TextIO) -> dict[str, Any]:
    """Starts the whole system in ``workdir`` (its set-up narrated to ``log``), plays the
    moves and the burst, stops everything; returns the figures."""
    if options.moves < 1 or not options.latencies:
        raise ValueError("at least one move and one action latency")
    workdir.mkdir(parents=True, exist_ok=True)
    say = Narrator(render.Style(False), out=log)
    # The contract check is for tests: here it would add its own work to every DO call.
    system_options = Options(
        action_latency=options.latencies[0],
        check_contract=False,
        cluster_access=options.cluster_access,
    )
    with running(system_options, workdir, say) as system:
        return _Bench(system, say, options).run()


def forwarder_rate_limit(system: System) -> RateLimit:
    """The rate limit and coalescing windows of the shipped kustomize base (defaults where the
    ConfigMap says nothing)."""
    rendered = manifests.kubectl(system.control_plane, "kustomize", str(manifests.FORWARDER_BASE))
    docs = [d for d in yaml.safe_load_all(rendered) if isinstance(d, dict)]
    settings = manifests.read_forwarder_deploy(docs).settings
    defaults = {f.name: f.default for f in dataclasses.fields(ForwarderSettings)}

    def duration(name: str, default: object) -> float:
        return parse_duration(settings[name]) if name in settings else float(str(default))

    return RateLimit(
        per_minute=float(settings.get("RATE_LIMIT", defaults["rate_per_minute"])),
        burst=int(settings.get("RATE_BURST", defaults["burst"])),
        quiet_window=duration("QUIET_WINDOW", defaults["quiet_window"]),
        max_delay=duration("MAX_DELAY", defaults["max_delay"]),
    )


class _Bench:
    def __init__(self, system: System, say: Narrator, options: FailoverOptions) -> None:
        self.system = system
        self.say = say
        self.options = options
        self.kube = system.kube
        self.ns = system.namespace
        self.ip, self.burst_ip = system.ips[0], system.ips[1]
        self.nodes = system.droplets
        self.limit = forwarder_rate_limit(system)
        self.holder = 0
        """Index in ``nodes`` of the node holding ``ip``."""
        self.pods: dict[int, str] = {}
        """The bench Service's pod on each node that has one."""
        self._names = (f"{SERVICE}-{n}" for n in range(10_000))
        self.paced = 0.0

    def run(self) -> dict[str, Any]:
        with ExitStack() as stack:
            class_mode = self.options.mode == CLASS_MODE
            self.kube.create_service(
                self.ns,
                SERVICE,
                PORTS,
                service_type="LoadBalancer" if class_mode else "NodePort",
                external_traffic_policy="Local",  # the client's address kept, as advised
                load_balancer_class=contract.LOAD_BALANCER_CLASS if class_mode else None,
                allocate_load_balancer_node_ports=False if class_mode else None,
            )
            self.monitor = stack.enter_context(
                Monitor(self.system.do, (self.ip, self.burst_ip), self.system.function_log)
            )
            listed = ingress_anchors(self.ip) if class_mode else external_ips
            self.watch = stack.enter_context(
                ServiceWatch(self.system.control_plane, self.ns, SERVICE, listed)
            )
            started = time.monotonic()
            self._place_first()
            settings = []
            for latency in self.options.latencies:
                self.system.do.set_action_latency(latency)
                settings.append(self._round(latency))
                self.say.say("bench", f"{self.options.moves} moves at {latency:g} s done")
            burst = self._burst() if self.options.burst else None
            took = time.monotonic() - started
        return {
            "mode": self.options.mode,
            "moves_per_setting": self.options.moves,
            "kinds": list(KINDS),
            "settings": settings,
            "burst": burst,
            "forwarder": dataclasses.asdict(self.limit),
            "paced_seconds": round(self.paced, 1),
            "seconds": round(took, 1),
            "contract_checked": False,
        }

    # --- waiting ------------------------------------------------------------------------

    def _check(self) -> None:
        for recorder in (self.monitor, self.watch):
            if recorder.error is not None:
                raise RuntimeError(f"a recorder failed: {recorder.error!r}") from recorder.error

    def _until(self, condition: Callable[[], bool], timeout: float, what: str) -> None:
        try:
            wait_until(condition, timeout=timeout, what=what, interval=0.01)
        finally:
            self._check()

    def _settle(self, since: float) -> None:
        """Until the function answered a call that started after ``since`` (taken before the
        change: the forwarder may post it before the change's own call returns) and no call
        came for a quiet window: it saw every change, and the forwarder holds nothing back."""
        quiet = self.limit.quiet_window + SETTLE_MARGIN

        def settled() -> bool:
            calls = self.monitor.calls
            return any(c.started_at > since for c in calls) and (
                time.time() - max(c.seen_at for c in calls) >= quiet
            )

        self._until(settled, SETTLE_TIMEOUT, "the function's answer to the latest change")

    def _pace(self) -> None:
        """Until the forwarder's bucket (replayed from the calls seen) holds a move's events,
        and the token's minute at DigitalOcean has room for a move's requests."""
        wait = figures.seconds_until_tokens(
            self.monitor.call_starts(),
            time.time(),
            TOKENS_PER_MOVE,
            per_second=self.limit.per_minute / 60,
            burst=self.limit.burst,
            since=self.monitor.started,
        )
        limits = self.system.do.settings()["rate_limits"]
        counted = (r.at for r in self.system.do.requests() if r.status != TOO_MANY)
        wait = max(
            wait,
            figures.seconds_until_window_room(
                counted,
                time.time(),
                CALLS_PER_MOVE,
                limit=int(limits["per_minute"]),
                window=float(limits["minute_seconds"]),
            ),
        )
        if wait > 0:
            self.paced += wait
            time.sleep(wait)  # a computed refill time, not a guess

    def _converged(self, ip: str, droplet: Droplet, timeout: float) -> None:
        self._until(
            lambda: (
                self.monitor.holder(ip) == droplet.droplet_id
                and self.watch.latest() == (droplet.anchor,)
            ),
            timeout,
            f"{ip} on {droplet.node} and only its anchor {droplet.anchor} listed",
        )

    # --- the moves ----------------------------------------------------------------------

    def _start_pod(self, node: int) -> None:
        name = next(self._names)
        self.system.controllers.start_pod(self.ns, name, self.nodes[node], SERVICE)
        self.pods[node] = name

    def _place_first(self) -> None:
        self._start_pod(self.holder)
        annotating = time.time()
        self.kube.annotate_service(self.ns, SERVICE, {contract.ADDRESS: self.ip})
        self._converged(self.ip, self.nodes[self.holder], MOVE_TIMEOUT)
        self._settle(annotating)

    def _round(self, latency: float) -> dict[str, Any]:
        moves = [self._move(KINDS[n % len(KINDS)], latency) for n in range(self.options.moves)]
        return figures.setting_summary(latency, moves, KINDS)

    def _move(self, kind: str, latency: float) -> dict[str, Any]:
        old, new = self.holder, (self.holder + 1) % len(self.nodes)
        source, target = self.nodes[old], self.nodes[new]
        starting = time.time()
        self._start_pod(new)
        self._settle(starting)
        self._pace()

        changed_at = time.time()
        if kind == POD_MOVED:
            self.system.controllers.delete_pod(self.ns, self.pods.pop(old), SERVICE)
        else:
            self.system.controllers.node_not_ready(source)
        self._converged(self.ip, target, MOVE_TIMEOUT + 3 * latency)
        self._settle(changed_at)
        ended = time.time()

        move = figures.Move(changed_at, target.droplet_id, target.anchor, source.anchor)
        recorded = figures.Recorded(
            external_ips=list(self.watch.records),
            assigns=self._assigns(changed_at),
            holders=list(self.monitor.holders[self.ip]),
        )
        calls = [r for r in self.system.do.requests() if changed_at <= r.at <= ended]
        record = {
            "kind": kind,
            "from": source.node,
            "to": target.node,
            "phases": figures.phases(move, recorded),
            "digitalocean_calls": len(calls),
            "digitalocean_writes": sum(r.method in WRITES for r in calls),
            "digitalocean_rate_limited": sum(r.status == 429 for r in calls),
            "invocations": len(self.monitor.calls_between(changed_at, ended)),
        }
        if kind == NODE_NOT_READY:
            # Back to one pod, on the new holder; the node's return changes nothing (the IP
            # stays on a fit holder), and the pod's deletion is the last change, so the next
            # settle has an event to wait for.
            self.kube.set_node_ready(source.node, "True")
            self.system.controllers.delete_pod(self.ns, self.pods.pop(old), SERVICE)
        self.holder = new
        return record

    def _assigns(self, since: float) -> list[tuple[float, int]]:
        path = ACTIONS_PATH.replace("{reserved_ip}", self.ip)
        found = []
        for request in self.system.do.requests("POST", ACTIONS_PATH):
            body = request.body
            if request.path != path or request.at < since or not isinstance(body, dict):
                continue
            if body.get("type") == "assign" and isinstance(body.get("droplet_id"), int):
                found.append((request.at, int(body["droplet_id"])))
        return found

    # --- the burst ----------------------------------------------------------------------

    def _burst(self) -> dict[str, Any]:
        """A second Service with two pods on each node that does not hold the first IP; once
        its IP is placed, the spare node's pods flip readiness ``BURST_FLIPS`` times."""
        spare_nodes = [n for n in range(len(self.nodes)) if n != self.holder]
        self.kube.create_service(self.ns, BURST_SERVICE, [Port(22, name="ssh")])
        pods: dict[int, list[str]] = {}
        for node in spare_nodes:
            pods[node] = [f"{BURST_SERVICE}-{node}-{k}" for k in range(2)]
            for name in pods[node]:
                self.system.controllers.start_pod(self.ns, name, self.nodes[node], BURST_SERVICE)
        annotated = time.time()
        self.kube.annotate_service(self.ns, BURST_SERVICE, {contract.ADDRESS: self.burst_ip})
        by_droplet = {self.nodes[n].droplet_id: n for n in spare_nodes}
        self._until(
            lambda: self.monitor.holder(self.burst_ip) in by_droplet,
            MOVE_TIMEOUT + 3 * (self.options.latencies[-1]),
            f"{self.burst_ip} placed",
        )
        self._settle(annotated)
        holder = by_droplet[self.monitor.holder(self.burst_ip) or 0]
        flipping = next(pods[n] for n in spare_nodes if n != holder)
        self._pace()

        slice_name = f"{BURST_SERVICE}-slice"
        current = self.kube.discovery.read_namespaced_endpoint_slice(slice_name, self.ns)
        endpoints = self.kube.api.sanitize_for_serialization(current.endpoints)
        index = {e["targetRef"]["name"]: e for e in endpoints}
        started = time.time()
        for name in itertools.islice(itertools.cycle(flipping), BURST_FLIPS):
            conditions = index[name]["conditions"]
            ready = not conditions.get("ready", True)
            conditions.update(ready=ready, serving=ready)
            self.kube.discovery.patch_namespaced_endpoint_slice(
                slice_name,
                self.ns,
                {"endpoints": endpoints},
                _content_type="application/merge-patch+json",
            )
        changed = time.time()
        self._settle(changed)
        ended = time.time()
        calls = [r for r in self.system.do.requests() if started <= r.at <= ended]
        return {
            "changes": BURST_FLIPS,
            "pods": len(flipping),
            "seconds": round(changed - started, 3),
            "invocations": len(self.monitor.calls_between(started, ended)),
            "digitalocean_calls": len(calls),
            "digitalocean_writes": sum(r.method in WRITES for r in calls),
            "digitalocean_rate_limited": sum(r.status == 429 for r in calls),
            "ip_stayed": self.monitor.holder(self.burst_ip) == self.nodes[holder].droplet_id,
        }
