"""Several reserved IPs moving at once: the apply step that assigned them one after the other
(each POSTed, then waited for until its action completed, before the next) against the one
that starts every assignment and then waits for all together, side by side on one bed.

DigitalOcean allows one reserved IP per droplet, so K IPs are held by K nodes; the change hits
all K holders at once, as a rack's power or a node pool's replacement would: either their
Nodes turn NotReady, or every Service's pod on them is deleted (each Service has a second pod
on its own spare node, where its IP goes). The next round moves the IPs back. The DigitalOcean
imitation makes each assign action last ``--latency`` seconds.

The function is called in-process right after the change (the forwarder's part is the same
for both and is what the failover bench times). From the change, the time until the LAST IP
is on its new droplet and its Service lists only the new anchor (``spec.externalIPs``,
watched), and the same for the first IP. The token's rate-limit counts are reset before each
change, so no round inherits another's requests.

``python -m bench.assign_fanout_bench [--ips 5] [--latency 2] [--repeats 3] [--uncapped]``
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

from bench import baseline
from bench.recorders import Monitor, ServiceWatch
from floating_ip import apply, reconcile
from floating_ip_common import contract
from testbed.controlplane import ControlPlane, binaries
from testbed.do_imitation.server import DoImitation
from testbed.doks import DoksWorld, Droplet, function_token
from testbed.function_harness import FunctionRunner
from testbed.kube import KubeBed, Port
from testbed.processes import wait_until

SEQUENTIAL_COMMIT = "b6f6fed"
"""The last commit whose apply step waited for each assignment before POSTing the next."""
APPLY = "lib/floating_ip/apply.py"
NODE_NOT_READY = "nodes NotReady"
PODS_MOVED = "pods moved"
KINDS = (NODE_NOT_READY, PODS_MOVED)
OLD, NEW = "sequential (old)", "together (new)"
UNCAPPED = "together, every action read each tick"
"""The new apply without its cap on action reads per tick (``--uncapped``): what the cap costs."""
DONE_TIMEOUT = 60.0
ACTION_READ = "/v2/actions/{action_id}"
ASSIGN = "/v2/reserved_ips/{reserved_ip}/actions"


def sequential_applier(workdir: Path) -> Any:
    """The old ``Applier`` class, loaded from ``SEQUENTIAL_COMMIT`` beside the new one (its
    imports are today's modules, whose interfaces it uses unchanged)."""
    source = baseline.export(workdir / "sequential", APPLY, commit=SEQUENTIAL_COMMIT) / APPLY
    spec = importlib.util.spec_from_file_location("floating_ip_sequential_apply", source)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module.Applier


@dataclass
class _Service:
    name: str
    ip: str
    nodes: tuple[Droplet, Droplet]
    holder: int = 0
    """Index in ``nodes`` of the node holding ``ip``."""

    @property
    def source(self) -> Droplet:
        return self.nodes[self.holder]

    @property
    def target(self) -> Droplet:
        return self.nodes[1 - self.holder]


class _Bench:
    monitor: Monitor
    watches: dict[str, ServiceWatch]

    def __init__(
        self, world: DoksWorld, runner: FunctionRunner, namespace: str, k: int, old_applier: Any
    ) -> None:
        self.world = world
        self.old_applier = old_applier
        self.kube = world.kube
        self.do = world.do
        self.runner = runner
        self.ns = namespace
        self.services: list[_Service] = []
        self.pods: dict[tuple[str, str], str] = {}
        """``(service, node)`` -> the Service's pod on that node."""
        self._names = (f"pod-{n}" for n in itertools.count())
        for i in range(k):
            pair = (world.add_node(f"h{i}"), world.add_node(f"s{i}"))
            ip = self.do.add_reserved_ip(region=world.region)
            name = f"svc-{i}"
            self.kube.create_service(
                namespace,
                name,
                [Port(443)],
                annotations={contract.ADDRESS: ip},
                service_type="NodePort",
                external_traffic_policy="Local",  # the client's address kept, as advised
            )
            self.services.append(_Service(name, ip, pair))

    def place(self) -> None:
        """Each IP on its holder (its only fit node), then a spare pod on the other node."""
        self.do.set_action_latency(0.0)
        for service in self.services:
            self._start_pod(service, service.source)
        self.runner.ok()
        for service in self.services:
            self._start_pod(service, service.target)
        self.runner.ok()
        for service in self.services:
            assert self.do.reserved_ip_holder(service.ip) == service.source.droplet_id

    def round(self, kind: str, code: str, latency: float) -> dict[str, Any]:
        self.do.set_action_latency(latency)
        self.do.set_rate_limits()
        with ExitStack() as stack:
            if code == OLD:
                stack.enter_context(mock.patch.object(reconcile, "Applier", self.old_applier))
            elif code == UNCAPPED:
                stack.enter_context(mock.patch.object(apply, "ACTION_READS_PER_TICK", 1_000))
            changed_at = time.time()
            for service in self.services:
                if kind == NODE_NOT_READY:
                    self.kube.set_node_ready(service.source.node, "False")
                else:
                    pod = self.pods.pop((service.name, service.source.node))
                    self.kube.delete_pod(self.ns, pod)
                    self.kube.sync_endpoint_slices(self.ns, service.name)
            called_at = time.time()
            response = self.runner.run()
            answered_at = time.time()
        assigned: dict[str, float] = {}
        done: dict[str, float] = {}

        def all_done() -> bool:
            for service in self.services:
                at = self._assigned_at(service, changed_at)
                dropped = self._dropped_at(service, changed_at)
                if at is not None:
                    assigned[service.ip] = at
                    if dropped is not None:
                        done[service.ip] = max(at, dropped)
            return len(done) == len(self.services)

        wait_until(all_done, timeout=DONE_TIMEOUT, what="every IP moved, its old anchor dropped")
        requests = [r for r in self.do.requests() if r.at >= changed_at]
        posts = [r.at for r in requests if r.method == "POST" and r.path.endswith("/actions")]
        self._restore(kind)

        def since_change(at: float) -> float:
            return round(at - changed_at, 3)

        return {
            "kind": kind,
            "code": code,
            "change_written": since_change(called_at),
            "first_assign_sent": since_change(min(posts)),
            "last_assign_sent": since_change(max(posts)),
            "first_ip_assigned": since_change(min(assigned.values())),
            "last_ip_assigned": since_change(max(assigned.values())),
            "first_ip_done": since_change(min(done.values())),
            "last_ip_done": since_change(max(done.values())),
            "function_seconds": round(answered_at - called_at, 3),
            "function_status": response.status,
            "digitalocean_calls": len(requests),
            "action_reads": sum(
                r.method == "GET" and r.path.startswith("/v2/actions/") for r in requests
            ),
            "refused_429": sum(r.status == 429 for r in requests),
        }

    def _assigned_at(self, service: _Service, since: float) -> float | None:
        """When the IP was first seen on its new droplet (the imitation, polled)."""
        droplet = service.target.droplet_id
        seen = self.monitor.holders[service.ip]
        return next((t for t, holder in seen if t >= since and holder == droplet), None)

    def _dropped_at(self, service: _Service, since: float) -> float | None:
        """When the Service first listed the new anchor alone (watched)."""
        only_new = (service.target.anchor_ip,)
        seen = self.watches[service.name].records
        return next((t for t, listed in seen if t >= since and listed == only_new), None)

    def _restore(self, kind: str) -> None:
        """The old holders back (Ready, or a pod again): the IPs stay where they are now."""
        self.do.set_action_latency(0.0)
        for service in self.services:
            if kind == NODE_NOT_READY:
                self.kube.set_node_ready(service.source.node, "True")
            else:
                self._start_pod(service, service.source)
            service.holder = 1 - service.holder
        before = len(self.do.requests("POST", ASSIGN))
        self.runner.ok()
        assert len(self.do.requests("POST", ASSIGN)) == before, "an IP moved on the way back"

    def _start_pod(self, service: _Service, node: Droplet) -> None:
        name = next(self._names)
        self.kube.create_pod(self.ns, name, node.node, {"app": service.name})
        self.kube.sync_endpoint_slices(self.ns, service.name)
        self.pods[(service.name, node.node)] = name


def run(
    workdir: Path, k: int, latency: float, repeats: int, codes: Sequence[str] = (OLD, NEW)
) -> dict[str, Any]:
    old_applier = sequential_applier(workdir)
    with ExitStack() as stack:
        plane = ControlPlane(workdir / "controlplane", binaries()).start()
        stack.callback(plane.stop)
        kube = KubeBed(plane.admin_client())
        do = stack.enter_context(DoImitation(workdir / "do", check_contract=False))
        world = DoksWorld(plane, kube, do)
        namespace = kube.create_namespace("fanout")
        env = world.function_env(NAMESPACES=namespace)
        os.environ["REQUESTS_CA_BUNDLE"] = env["REQUESTS_CA_BUNDLE"]
        bench = _Bench(
            world,
            FunctionRunner(world, env, function_token(plane, kube)),
            namespace,
            k,
            old_applier,
        )
        bench.place()
        no_log = workdir / "function.log"
        no_log.touch()
        bench.monitor = stack.enter_context(Monitor(do, [s.ip for s in bench.services], no_log))
        bench.watches = {
            s.name: stack.enter_context(ServiceWatch(plane, namespace, s.name))
            for s in bench.services
        }
        rounds = [
            bench.round(kind, code, latency)
            for _, kind, code in itertools.product(range(repeats), KINDS, codes)
        ]
        errors = [bench.monitor.error, *(w.error for w in bench.watches.values())]
        for error in errors:
            if error is not None:
                raise RuntimeError("a recorder failed") from error
    return {
        "ips": k,
        "action_latency": latency,
        "sequential_commit": SEQUENTIAL_COMMIT,
        "rounds": rounds,
        "summary": summary(rounds),
    }


FIGURES = (
    "first_ip_assigned",
    "last_ip_assigned",
    "last_ip_done",
    "function_seconds",
    "digitalocean_calls",
    "action_reads",
)


def summary(rounds: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per change and apply: medians, and the worst of the last IP's times."""
    rows = []
    for kind in KINDS:
        for code in dict.fromkeys(r["code"] for r in rounds):
            mine = [r for r in rounds if r["kind"] == kind and r["code"] == code]
            row: dict[str, Any] = {"kind": kind, "code": code, "rounds": len(mine)}
            for figure in FIGURES:
                row[figure] = statistics.median(r[figure] for r in mine)
            for figure in ("last_ip_assigned", "last_ip_done"):
                row[f"{figure}_max"] = max(r[figure] for r in mine)
            rows.append(row)
    return rows


def table(result: dict[str, Any]) -> str:
    lines = [
        f"{result['ips']} IPs, assign action {result['action_latency']:g} s; seconds from the "
        "change, median / max:",
        "| change | apply | first IP on its new droplet | last IP on its new droplet | "
        "last old anchor dropped | DO calls | action reads |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in result["summary"]:
        lines.append(
            f"| {row['kind']} | {row['code']} | {row['first_ip_assigned']:.2f} | "
            f"{row['last_ip_assigned']:.2f} / {row['last_ip_assigned_max']:.2f} | "
            f"{row['last_ip_done']:.2f} / {row['last_ip_done_max']:.2f} | "
            f"{row['digitalocean_calls']:g} | {row['action_reads']:g} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    cli = argparse.ArgumentParser(prog="python -m bench.assign_fanout_bench", description=__doc__)
    cli.add_argument("--ips", type=int, default=5, help="reserved IPs moving at once (default 5)")
    cli.add_argument("--latency", type=float, default=2.0, help="assign action seconds (default 2)")
    cli.add_argument(
        "--repeats", type=int, default=3, help="rounds per change and apply (default 3)"
    )
    cli.add_argument(
        "--uncapped", action="store_true", help="also the new apply reading every action each tick"
    )
    cli.add_argument("--json", type=Path, help="also write the figures here")
    args = cli.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="fanout-") as workdir:
        codes = (OLD, NEW, UNCAPPED) if args.uncapped else (OLD, NEW)
        result = run(Path(workdir), args.ips, args.latency, args.repeats, codes)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    print(table(result))


if __name__ == "__main__":
    main()
