"""What a client sees while the reserved IP moves, on the real data path.

The data-path bed (``testbed.dataplane``): three nodes as network namespaces each running a
real kube-proxy, the provider's edge delivering the reserved IP to the holder's anchor as soon
as the DigitalOcean imitation's action completes, the real function placing it. A client
beyond the edge sends a request every 10 ms over TCP (a new connection each) and UDP, and
keeps one TCP connection open carrying a request every 10 ms. The Service is of our
LoadBalancer class with ``externalTrafficPolicy: Local``, as the README recommends.

Per move: the outage (last answer of the old pod → first answer of the new one, by send time;
10 ms when nothing was lost), the requests lost, and what the open connection saw. Cases:

- ``rescheduled``: the old pod ends at once, its replacement starts on another node (a
  single-replica Deployment's pod deleted, or a node drained without a preStop delay);
- ``drained``: the node is cordoned and its pod evicted with a preStop delay, so it keeps
  serving while Terminating; the replacement starts elsewhere, the IP moves, then the old
  pod ends — what the README advises for planned moves;
- ``killed``: two replicas; the holder loses power and is declared dead at once (the
  forwarder's detection, measured by the node-death part, comes on top).

The bed starts no pod and pulls no image: a pod is ready the moment it is made. The function
is called the moment each change is written, as the forwarder's first event for a quiet
Service is sent at once. Run alone with ``python -m bench.data_path_bench [moves]``.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from bench import figures
from floating_ip_common import contract
from testbed.controlplane import ControlPlane, binaries
from testbed.dataplane import kube_proxy, namespaces
from testbed.dataplane.bed import DataPathBed
from testbed.dataplane.traffic import PROTOCOLS, MoveSeen, Traffic, seen_around
from testbed.do_imitation.server import DoImitation
from testbed.doks import DoksWorld, function_token
from testbed.function_harness import FunctionRunner
from testbed.kube import KubeBed, Port
from testbed.processes import wait_until

IP = "192.0.2.40"
PORT = 8080
MOVES = 10
CASES = ("rescheduled", "drained", "killed")
ACTION_LATENCIES = (0.0, 2.0)
"""The imitation's reserved-IP action: instant, and about what DigitalOcean takes."""
SETTLE = 0.3
"""Seconds of answers from the new pod recorded after the first, to see stragglers."""
MOVE_TIMEOUT = 30.0
RETRY = 0.2
"""Seconds before the function is called again while its action is still in progress."""


class Run:
    """One bed in one proxy mode: the Service, its pods, the traffic and the moves."""

    def __init__(self, world: DoksWorld, runner: FunctionRunner, bed: DataPathBed, ns: str):
        self.world, self.runner, self.bed, self.ns = world, runner, bed, ns
        self.pods: dict[str, str] = {}  # pod name → node short name
        self._numbers = iter(range(1, 10_000))
        world.do.add_reserved_ip(IP, region=world.region)
        world.kube.create_service(
            ns,
            "web",
            [Port(PORT), Port(PORT, "UDP", name="udp")],
            annotations={contract.ADDRESS: IP},
            service_type="LoadBalancer",
            load_balancer_class=contract.LOAD_BALANCER_CLASS,
            allocate_load_balancer_node_ports=False,
            external_traffic_policy="Local",
        )
        bed.follow(IP)

    def start_pod(self, short: str) -> str:
        name = f"web-{next(self._numbers)}"
        self.bed.add_pod(self.ns, name, short, {"app": "web"}, [PORT])
        self.pods[name] = short
        self.bed.world.kube.sync_endpoint_slices(self.ns, "web")
        return name

    def end_pod(self, name: str) -> None:
        self.bed.remove_pod(name)
        del self.pods[name]
        self.bed.world.kube.sync_endpoint_slices(self.ns, "web")

    def reconcile(self) -> None:
        """One run of the function, repeated while an assignment is still in progress, as the
        forwarder resends after the function's Retry-After."""
        deadline = time.monotonic() + MOVE_TIMEOUT
        while True:
            response = self.runner.run()
            body = response.body
            if response.status == 200 and not body.get("pending") and not body.get("errors"):
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"the function did not settle: {json.dumps(body)[:2000]}")
            time.sleep(RETRY)

    def holder(self) -> str:
        holder = self.world.holder_of(IP)
        if holder is None:
            raise RuntimeError("the reserved IP is not assigned")
        return holder

    def pod_on(self, short: str) -> str:
        return next(name for name, node in self.pods.items() if node == short)


def _other(short: str) -> str:
    return "b" if short == "a" else "a"


def rescheduled(run: Run) -> tuple[str, str]:
    old_node = run.holder()
    old = run.pod_on(old_node)
    run.end_pod(old)
    run.reconcile()
    new = run.start_pod(_other(old_node))
    run.reconcile()
    return old, new


def drained(run: Run) -> tuple[str, str]:
    old_node = run.holder()
    old = run.pod_on(old_node)
    node_name = run.world.node(old_node)
    kube = run.world.kube
    kube.cordon(node_name)
    run.reconcile()
    # Evicted with a preStop delay: Terminating, still serving (its endpoint serving, not ready).
    kube.delete_pod(run.ns, old, grace_seconds=30)
    kube.sync_endpoint_slices(run.ns, "web")
    run.reconcile()
    new = run.start_pod(_other(old_node))
    run.reconcile()
    wait_until(lambda: run.holder() != old_node, timeout=MOVE_TIMEOUT, what="the IP moved")
    # The preStop delay is over once the IP has moved: the old pod exits.
    run.end_pod(old)
    kube.cordon(node_name, unschedulable=False)
    run.reconcile()
    return old, new


def killed(run: Run) -> tuple[str, str]:
    old_node = run.holder()
    survivor = _other(old_node)
    if not [n for n, s in run.pods.items() if s == survivor]:
        run.start_pod(survivor)
        run.reconcile()
    old, new = run.pod_on(old_node), run.pod_on(survivor)
    node = run.bed.node(old_node)
    run.bed.network.power(node, on=False)
    run.world.kube.set_node_ready(run.world.node(old_node), "False")
    run.reconcile()
    return old, new


def revive(run: Run, short: str) -> None:
    run.bed.network.power(run.bed.node(short), on=True)
    run.world.kube.set_node_ready(run.world.node(short), "True")
    run.reconcile()


MOVERS: dict[str, Callable[[Run], tuple[str, str]]] = {
    "rescheduled": rescheduled,
    "drained": drained,
    "killed": killed,
}


def measure(run: Run, traffic: Traffic, case: str, log: TextIO) -> Move:
    before = run.holder()
    current = run.pod_on(before)
    traffic.clear()
    wait_until(
        lambda: (
            {s.protocol for s in traffic.samples() if s.outcome.pod == current} >= set(PROTOCOLS)
        ),
        timeout=MOVE_TIMEOUT,
        what="answers over TCP and UDP before the move",
    )
    old, new = MOVERS[case](run)

    def settled() -> bool:
        samples = traffic.samples()
        firsts = [
            min((s.sent for s in samples if s.protocol == p and s.outcome.pod == new), default=0)
            for p in ("TCP", "UDP")
        ]
        return all(firsts) and time.monotonic() - max(firsts) > SETTLE

    wait_until(settled, timeout=MOVE_TIMEOUT, what=f"answers from {new} after the move")
    # When the edge started delivering to the new holder: splits the outage into the part
    # before the IP moved (the old holder stopped answering) and after (the new one not ready).
    moved_at = max(at for at, ip, _ in run.bed.edge_moves if ip == IP)
    move = Move(seen_around(traffic.samples(), old, new), moved_at)
    if case == "killed":
        revive(run, before)
    print(f"  {case}: {old} → {new} {_brief(move)}", file=log, flush=True)
    return move


@dataclass(frozen=True)
class Move:
    seen: MoveSeen
    ip_moved_at: float

    def old_silent(self, protocol: str) -> float:
        """Seconds the old pod's last answer came before the IP moved."""
        return self.ip_moved_at - self.seen.last_old[protocol]

    def new_after(self, protocol: str) -> float:
        """Seconds the new pod's first answer came after the IP moved."""
        return self.seen.first_new[protocol] - self.ip_moved_at


def _brief(move: Move) -> str:
    seen = move.seen
    parts = []
    for p in ("TCP", "UDP"):
        before, after = move.old_silent(p), move.new_after(p)
        parts.append(
            f"{p} outage {seen.outage[p]:.3f} s (old silent {before:+.3f} s before the IP moved, "
            f"new answered {after:+.3f} s after) lost {seen.lost[p]} {seen.failures[p]}"
        )
    return "; ".join(parts) + f"; open connection: {seen.established}"


def _added(counts: list[dict[str, int]]) -> dict[str, int]:
    total: dict[str, int] = {}
    for count in counts:
        for kind, n in count.items():
            total[kind] = total.get(kind, 0) + n
    return total


def summary(moves: list[Move]) -> dict[str, Any]:
    seen = [m.seen for m in moves]
    out: dict[str, Any] = {"moves": len(seen)}
    for protocol in ("TCP", "UDP"):
        out[protocol] = {
            "outage_s": figures.distribution([s.outage[protocol] for s in seen]),
            "lost": figures.distribution([float(s.lost[protocol]) for s in seen], 1),
            "moves_losing_requests": sum(1 for s in seen if s.lost[protocol]),
            "failures": _added([s.failures[protocol] for s in seen]),
            "old_silent_before_ip_moved_s": figures.distribution(
                [m.old_silent(protocol) for m in moves]
            ),
            "new_answered_after_ip_moved_s": figures.distribution(
                [m.new_after(protocol) for m in moves]
            ),
        }
    kinds: dict[str, int] = {}
    for s in seen:
        kinds[s.established] = kinds.get(s.established, 0) + 1
    out["established_tcp"] = kinds
    return out


def run_mode(mode: str, latency: float, moves: int, workdir: Path, log: TextIO) -> dict[str, Any]:
    plane = ControlPlane(workdir / "controlplane", binaries()).start()
    try:
        with DoImitation(workdir / "do") as do:
            kube = KubeBed(plane.admin_client())
            world = DoksWorld(plane, kube, do)
            ns = kube.create_namespace("bench")
            token = function_token(plane, kube)
            env = world.function_env(NAMESPACES=ns)
            os.environ["REQUESTS_CA_BUNDLE"] = env["REQUESTS_CA_BUNDLE"]
            do.set_action_latency(latency)
            # Moves follow each other back to back here: the token's 250 requests a minute
            # (which the failover part paces for) is not what this part measures.
            do.set_rate_limits(per_minute=100_000, per_hour=1_000_000)
            bed = DataPathBed(world, mode, workdir, kube_proxy.binary())
            try:
                for short in ("a", "b", "c"):
                    bed.add_node(short)
                run = Run(world, FunctionRunner(world, env, token), bed, ns)
                run.start_pod("a")
                run.reconcile()
                traffic = Traffic(bed.network.client, IP, PORT, workdir)
                try:
                    results = {}
                    for case in CASES:
                        print(f"{mode}, action {latency:g} s, {case}", file=log, flush=True)
                        seen = [measure(run, traffic, case, log) for _ in range(moves)]
                        results[case] = summary(seen)
                    return results
                finally:
                    traffic.stop()
            finally:
                bed.close()
    finally:
        plane.stop()


def run(workdir: Path, log: TextIO, moves: int = MOVES) -> dict[str, Any]:
    """Every case in both proxy modes at each action latency."""
    reason = namespaces.unavailable()
    if reason is not None:
        raise RuntimeError(f"the data path cannot run here: {reason}")
    out: dict[str, Any] = {"moves_per_case": moves, "interval_s": 0.01, "runs": []}
    for mode in kube_proxy.MODES:
        for latency in ACTION_LATENCIES:
            here = workdir / f"{mode}-{latency:g}"
            here.mkdir(parents=True, exist_ok=True)
            cases = run_mode(mode, latency, moves, here, log)
            out["runs"].append({"mode": mode, "action_latency_s": latency, "cases": cases})
    return out


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else MOVES
    with tempfile.TemporaryDirectory(prefix="data-path-bench-") as tmp:
        print(json.dumps(run(Path(tmp), sys.stderr, count), indent=1))
