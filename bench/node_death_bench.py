"""Node death: from the moment the holder loses power to the reserved-IP assign request.

The whole system as ``make demo`` runs it, inside a private network namespace where the
pods' 10.244.x.y addresses are real (``testbed.netns``): each pod of the Service is a TCP
listener, each node's kubelet a Lease renewal loop. A death powers the holder off — its
listeners refuse or go silent, alternately, and its Lease stops — and times the assign
request in the DigitalOcean imitation's request log; the node then comes back, and the next
death waits until the forwarder has cleared it (a short ``SUSPICION_HOLD_DOWN``, set as a
user would, keeps the run short; it does not change detection). Then a UDP-only Service,
whose only signal is the kubelet Lease (default ``NODE_LEASE_STALE_AFTER``, 20 s). Last,
``LOSS_MINUTES`` with every node healthy while 20 % of the probes' packets, both ways, are
dropped at random (iptables in the namespace): every assign request then is a false move.
Those series run the system's one forwarder replica with ``CONFIRM_WAIT=0s``: it judges
alone at once, which is the single vantage point's rule from before the confirmation.

Last, the second vantage point (``vantage``): the bench stops that replica and starts two
of its own, the leader in a node network of its own (``testbed.replica_net``) on node-a,
the standby on node-b. The Service's pods are on node-b and node-c (a bystander Service's
pod on node-a gives every replica another node to reach), so the holder alternates: when
node-c dies both replicas are alive and the standby confirms; when node-b dies the standby
dies with it and the leader judges alone after ``CONFIRM_WAIT`` (the fallback). Then
``PARTITIONS`` partial partitions: the leader's node loses its path to the holder's node
only, for ``PARTITION_SECONDS``; every assign request is a false move. The same partitions
are then run against one replica with the single vantage point's rule (today's count).

Run outside the namespace, it re-runs itself inside one and returns what that run wrote.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlsplit

from kubernetes.client.exceptions import ApiException

from bench import figures
from demo import render
from demo.narrator import Narrator
from demo.observe import ACTIONS_PATH
from demo.options import Options
from demo.system import IMAGE_PYTHON, System, running
from floating_ip_common import contract
from testbed import netns, processes, replica_net
from testbed.forwarder_harness import ForwarderProcess
from testbed.kube import Port
from testbed.pods import PodListener, Power
from testbed.processes import wait_until
from testbed.replica_net import ReplicaNetwork

REPO = Path(__file__).resolve().parents[1]
TCP_DEATHS = 20
UDP_DEATHS = 5
LEASE_RENEWAL = 2.0
"""Seconds between a simulated kubelet's Lease renewals (the real kubelet: about 10 s)."""
FORWARDER = (("NODE_PROBES", "on"), ("SUSPICION_HOLD_DOWN", "3s"), ("CONFIRM_WAIT", "0s"))
"""The system's one replica: probes on, a short hold-down, and today's single vantage point
(it judges alone at once)."""
VANTAGE_DEATHS = 10
PARTITIONS = 4
PARTITION_SECONDS = 12.0
CONFIRM_WAIT = "3s"
"""The confirmation's setting for the two replicas (the default)."""
LEADER, STANDBY, OTHER = 0, 1, 2
"""Which droplet (node-a, node-b, node-c) each role is on."""
DEATH_TIMEOUT = 60.0
LOSS_MINUTES = 10.0
LOSS = 0.2
LOSS_PORT = 8080


def run(
    workdir: Path,
    log: TextIO,
    *,
    tcp: int = TCP_DEATHS,
    udp: int = UDP_DEATHS,
    loss_minutes: float = LOSS_MINUTES,
    vantage: int = VANTAGE_DEATHS,
    cluster_access: str = "callback",
) -> Any:
    """The figures; outside a private network namespace, by re-running in one."""
    workdir.mkdir(parents=True, exist_ok=True)
    if netns.inside():
        return _inside(workdir, log, tcp, udp, loss_minutes, vantage, cluster_access=cluster_access)
    why = netns.unavailable()
    if why is not None:
        raise RuntimeError(f"node death needs a private network namespace: {why}")
    out = workdir / "node-death.json"
    argv = [sys.executable, "-m", "bench.node_death_bench", str(workdir)]
    argv += [str(tcp), str(udp), str(loss_minutes), cluster_access, str(vantage)]
    done = subprocess.run(
        netns.wrap(argv), cwd=REPO, stdout=log, stderr=subprocess.STDOUT, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"the node-death run exited {done.returncode} (see its log)")
    return json.loads(out.read_text())


def _inside(  # noqa: PLR0917 - the bench's command line, in order
    workdir: Path,
    log: TextIO,
    tcp: int,
    udp: int,
    loss_minutes: float,
    vantage: int,
    *,
    cluster_access: str,
) -> dict[str, Any]:
    say = Narrator(render.Style(False), out=log)
    options = Options(
        action_latency=0.0,
        check_contract=False,
        forwarder_env=FORWARDER,
        kubelet_renewal=LEASE_RENEWAL,
        cluster_access=cluster_access,
    )
    lossy = loss_minutes > 0 and shutil.which("iptables") is not None
    if loss_minutes > 0 and not lossy:
        # Said at the start, not after the deaths: their figures stand without the loss run.
        say.say("bench", "iptables is not installed (apt-get install iptables): no loss run")
    with running(options, workdir, say) as system:
        deaths = _Deaths(system, say)
        try:
            single_cpu = _cpu(system.forwarder.pid)
            began = time.monotonic()
            figures_out: dict[str, Any] = {
                "tcp": deaths.series("tcp", [Port(8080, name="web")], tcp),
            }
            single_cpu = (_cpu(system.forwarder.pid) - single_cpu) / (time.monotonic() - began)
            figures_out |= {
                "udp": deaths.series("udp", [Port(5353, "UDP", name="dns")], udp),
                "loss": deaths.loss(loss_minutes) if lossy else None,
                "forwarder": dict(FORWARDER),
                "lease_renewal_seconds": LEASE_RENEWAL,
                "cluster_access": cluster_access,
            }
            why = replica_net.unavailable()
            if vantage > 0 and why is not None:
                say.say("bench", f"no second-vantage-point run: {why}")
            elif vantage > 0:
                second = deaths.vantage(vantage, workdir, loss_minutes if lossy else 0.0)
                second["single_cpu_per_minute"] = round(single_cpu * 60, 3)
                if second["confirmed"]["n"]:  # a short run may confirm no death at all
                    for at in ("p50", "p95"):
                        second[f"ratio_{at}"] = round(
                            second["confirmed"][at] / figures_out["tcp"][at], 2
                        )
                figures_out["vantage"] = second
            return figures_out
        finally:
            deaths.stop()


class _Deaths:
    def __init__(self, system: System, say: Narrator) -> None:
        self.system = system
        self.say = say
        self.kube = system.kube
        self.by_id = system.by_id()
        self.leases = system.kubelets
        self.listeners: dict[str, list[PodListener]] = {d.node: [] for d in system.droplets}

    def stop(self) -> None:
        for listeners in self.listeners.values():
            for listener in listeners:
                listener.stop()

    def series(self, name: str, ports: list[Port], count: int) -> dict[str, Any]:
        ip = self.system.ips[0 if name == "tcp" else 1]
        service = f"death-{name}"
        self._pods(service, ports)
        self.kube.annotate_service(self.system.namespace, service, {contract.ADDRESS: ip})
        self._until(lambda: self._holder(ip) is not None, f"{ip} placed")
        samples = []
        for n in range(count):
            power = Power.REFUSING if n % 2 == 0 else Power.SILENT
            samples.append(self._death(ip, power))
            self.say.say("bench", f"{name} death {n + 1}/{count}: {samples[-1]:.2f} s")
        self._remove(service)
        return {
            "n": len(samples),
            "p50": round(figures.percentile(samples, 50), 3),
            "p95": round(figures.percentile(samples, 95), 3),
            "max": round(max(samples), 3),
            "samples": [round(s, 3) for s in samples],
        }

    def loss(self, minutes: float) -> dict[str, Any]:
        """Every node healthy, probe packets lost at random: count the IP's moves. The IP of
        the UDP series stays where that left it, and one droplet is free to move it to."""
        ip, service = self.system.ips[1], "lossy"
        self._pods(service, [Port(LOSS_PORT, name="web")])
        self.kube.annotate_service(self.system.namespace, service, {contract.ADDRESS: ip})
        self._until(lambda: self._holder(ip) is not None, f"{ip} placed")
        rules = [
            ["INPUT", "-p", "tcp", "--dport", str(LOSS_PORT)],
            ["INPUT", "-p", "tcp", "--sport", str(LOSS_PORT)],
        ]
        moves, seen = self._under_loss(ip, rules, minutes)
        self.say.say("bench", f"{minutes:g} min at {LOSS:.0%} loss: {moves} moves")
        self._remove(service)
        return {
            "minutes": minutes,
            "loss": LOSS,
            "false_moves": moves,
            "nodes_ever_suspected": sorted(seen),
        }

    def _remove(self, service: str) -> None:
        """Its pods would tell on the next series' nodes by TCP: gone, with their listeners
        (its IP stays where it is, claimed by no Service)."""
        self.kube.core.delete_namespaced_service(service, self.system.namespace)
        for droplet in self.system.droplets:
            with contextlib.suppress(ApiException):
                self.kube.delete_pod(self.system.namespace, f"{service}-{droplet.node}")
        for listeners in self.listeners.values():
            for listener in listeners:
                listener.stop()
            listeners.clear()

    def _pods(self, service: str, ports: list[Port], on: tuple[str, ...] = ()) -> None:
        self.kube.create_service(
            self.system.namespace,
            service,
            ports,
            service_type="NodePort",
            external_traffic_policy="Local",  # the client's address kept, as the docs advise
        )
        for droplet in self.system.droplets:
            if on and droplet.node not in on:
                continue
            pod = f"{service}-{droplet.node}"
            self.system.controllers.start_pod(self.system.namespace, pod, droplet, service)
            pod_ip = self.kube.core.read_namespaced_pod(pod, self.system.namespace).status.pod_ip
            for port in ports:
                if port.protocol == "TCP":
                    listener = PodListener(pod_ip, port.port)
                    listener.set_power(Power.ON)
                    self.listeners[droplet.node].append(listener)

    def _death(self, ip: str, power: Power) -> float:
        holder = self._holder(ip)
        assert holder is not None
        off = time.time()
        self._power(holder, power)
        self._until(lambda: self._assign_after(ip, off) is not None, "the assign request")
        took = float(self._assign_after(ip, off) or 0.0) - off
        self._until(lambda: self._holder(ip) not in (None, holder), f"{ip} off {holder}")
        self._power(holder, Power.ON)
        self._until(lambda: not self._suspected(), "every node cleared")
        return took

    def _power(self, node: str, power: Power) -> None:
        for listener in self.listeners[node]:
            listener.set_power(power)
        if power is Power.ON:
            self.leases[node].start()
        else:
            self.leases[node].stop()

    def _holder(self, ip: str) -> str | None:
        droplet = self.by_id.get(self.system.do.reserved_ip_holder(ip) or 0)
        return droplet.node if droplet else None

    def _assign_after(self, ip: str, since: float) -> float | None:
        found = [
            r.at
            for r in self.system.do.requests("POST", ACTIONS_PATH)
            if r.at >= since and ip in r.path
        ]
        return min(found) if found else None

    def _suspected(self) -> dict[str, str]:
        try:
            found = self.kube.core.read_namespaced_config_map(
                contract.SUSPICIONS_CONFIGMAP, contract.SUSPICIONS_NAMESPACE
            )
        except ApiException as error:
            if error.status == 404:  # not written yet: nobody suspected
                return {}
            raise
        return dict(found.data or {})

    def _until(self, condition: Callable[[], bool], what: str) -> None:
        wait_until(condition, timeout=DEATH_TIMEOUT, what=what, interval=0.02)

    # --- the second vantage point ----------------------------------------------------------

    def vantage(self, count: int, workdir: Path, loss_minutes: float) -> dict[str, Any]:
        """Deaths with two replicas (confirmed; the standby dead too), ``loss_minutes`` of
        20 % loss on the holder's links only, then partial partitions with two replicas and
        with one replica judging alone."""
        ip, service = self.system.ips[0], "vantage"
        leader_node, standby_node, other_node = (
            self.system.droplets[i].node for i in (LEADER, STANDBY, OTHER)
        )
        # A droplet holds one reserved IP, and the earlier series left theirs anywhere: this
        # Service's IP first goes to node-b or node-c (one of them is free), then the
        # bystander takes the other IP to node-a, so node-b and node-c are free for this one.
        self._pods(service, [Port(8080, name="web")], on=(standby_node, other_node))
        self.kube.annotate_service(self.system.namespace, service, {contract.ADDRESS: ip})
        self._until(lambda: self._holder(ip) in (standby_node, other_node), f"{ip} placed")
        self._pods("bystander", [Port(8081, name="web")], on=(leader_node,))
        self.kube.annotate_service(
            self.system.namespace, "bystander", {contract.ADDRESS: self.system.ips[1]}
        )
        self._until(lambda: self._holder(self.system.ips[1]) == leader_node, "bystander placed")
        # The system's replica goes (SIGTERM releases its Lease): the bench's take over.
        processes.stop(self.system.forwarder)
        replicas = _Replicas(self.system, workdir)
        try:
            leader = replicas.start("vantage-leader", leader_node, network=True)
            self._until(leader.leading, "the bench's leader")
            standby = replicas.start("vantage-standby-0", standby_node)
            cpu = {p.pid: _cpu(p.pid) for p in (leader, standby)}
            standby_cpu = 0.0  # CPU seconds of the standbys that died with their node
            began = time.monotonic()
            confirmed: list[float] = []
            alone: list[float] = []
            for n in range(count):
                holder = self._holder(ip)
                # The holders alternate too: alternate the power within each kind, or every
                # confirmed death would be silent and every other one refused.
                kind_so_far = len(alone) if holder == standby_node else len(confirmed)
                power = Power.REFUSING if kind_so_far % 2 == 0 else Power.SILENT
                if holder == standby_node:
                    standby_cpu += _cpu(standby.pid) - cpu[standby.pid]
                    standby.crash()
                    alone.append(self._death(ip, power))
                    standby = replicas.start(f"vantage-standby-{n + 1}", standby_node)
                    cpu[standby.pid] = _cpu(standby.pid)
                    kind = "standby dead too"
                else:
                    confirmed.append(self._death(ip, power))
                    kind = "confirmed"
                took = (confirmed if kind == "confirmed" else alone)[-1]
                self.say.say("bench", f"vantage death {n + 1}/{count} ({kind}): {took:.2f} s")
            minutes = (time.monotonic() - began) / 60
            writes = leader.metric("observation_writes") + standby.metric("observation_writes")
            cpu_per_minute = {
                "leader": round((_cpu(leader.pid) - cpu[leader.pid]) / minutes, 3),
                "standby": round((standby_cpu + _cpu(standby.pid) - cpu[standby.pid]) / minutes, 3),
            }
            probes = leader.metric("probes")
            lossy = self._one_node_loss(ip, loss_minutes) if loss_minutes > 0 else None
            two = self._partitions(ip, leader, replicas.network_of(leader))
            replicas.stop()
            today = replicas.start(
                "single-vantage", None, network=True, extra={"CONFIRM_WAIT": "0s"}
            )
            self._until(today.leading, "the single replica")
            one = self._partitions(ip, today, replicas.network_of(today))
        finally:
            replicas.stop()
        return {
            "confirmed": _summary(confirmed),
            "standby_dead_too": _summary(alone),
            "confirm_wait": CONFIRM_WAIT,
            "observation_writes_per_death": round(writes / max(count, 1), 1),
            "leader_probes": probes,
            "cpu_seconds_per_minute": cpu_per_minute,
            "one_node_loss": lossy,
            "partitions": PARTITIONS,
            "partition_seconds": PARTITION_SECONDS,
            "false_moves": {"two_replicas": two, "single_vantage": one},
        }

    def _one_node_loss(self, ip: str, minutes: float) -> dict[str, Any]:
        """20 % of the packets to and from the holder's pod dropped at random (both
        replicas' probes; the other nodes' links are clean): every move is a false one."""
        holder = self._holder(ip)
        pods = [listener.address[0] for listener in self.listeners[holder or ""]]
        rules = [
            rule
            for pod in pods
            for rule in (
                ["INPUT", "-d", pod, "-p", "tcp", "--dport", str(LOSS_PORT)],
                ["OUTPUT", "-s", pod, "-p", "tcp", "--sport", str(LOSS_PORT)],
            )
        ]
        moves, seen = self._under_loss(ip, rules, minutes)
        self.say.say("bench", f"{minutes:g} min at {LOSS:.0%} loss on {holder}: {moves} moves")
        return {
            "minutes": minutes,
            "loss": LOSS,
            "node": holder,
            "false_moves": moves,
            "nodes_ever_suspected": sorted(seen),
        }

    def _under_loss(self, ip: str, rules: list[list[str]], minutes: float) -> tuple[int, set[str]]:
        """``LOSS`` of the packets the iptables ``rules`` match dropped at random for
        ``minutes``: the moves of ``ip`` meanwhile, and every node suspected at some point."""
        random = ["-m", "statistic", "--mode", "random", "--probability", str(LOSS), "-j", "DROP"]
        for rule in rules:
            subprocess.run(["iptables", "-A", *rule, *random], check=True)
        started = time.time()
        seen: set[str] = set()
        try:
            while time.time() - started < minutes * 60:
                seen |= set(self._suspected())
                time.sleep(0.5)  # a sampling interval, not a wait for a condition
        finally:
            for rule in rules:
                subprocess.run(["iptables", "-D", *rule, *random], check=True)
        moves = [
            r
            for r in self.system.do.requests("POST", ACTIONS_PATH)
            if r.at >= started and ip in r.path
        ]
        return len(moves), seen

    def _partitions(self, ip: str, leader: ForwarderProcess, network: ReplicaNetwork) -> int:
        """The leader's node loses its path to the holder's node only: count the moves."""
        moves = 0
        for n in range(PARTITIONS):
            holder = self._holder(ip)
            keep = [
                listener.address[0]
                for node, listeners in self.listeners.items()
                if node != holder
                for listener in listeners
            ]
            started = time.time()
            network.cut(keep)
            try:
                # A measurement interval, not a wait for a condition: any move in it counts.
                time.sleep(PARTITION_SECONDS)
            finally:
                network.heal()
            found = [
                r
                for r in self.system.do.requests("POST", ACTIONS_PATH)
                if r.at >= started and ip in r.path
            ]
            moves += len(found)
            unconfirmed = leader.metric("unconfirmed_suspicions")
            self.say.say(
                "bench",
                f"partition {n + 1}/{PARTITIONS} from {holder}: {len(found)} moves, "
                f"{unconfirmed:g} unconfirmed",
            )
            if found:
                self._until(lambda was=holder: self._holder(ip) not in (None, was), f"{ip} settled")
            self._until(lambda: not self._suspected(), "every node cleared")
        return moves


class _Replicas:
    """Forwarder replicas the bench starts: the system's environment, each its own name,
    node, metrics port and, for a leader that will be cut off, node network."""

    def __init__(self, system: System, workdir: Path) -> None:
        self.system = system
        self.workdir = workdir
        self.started: list[ForwarderProcess] = []
        self.networks: dict[int, ReplicaNetwork] = {}
        self._made = 0

    def start(
        self,
        name: str,
        node: str | None,
        *,
        network: bool = False,
        extra: dict[str, str] | None = None,
    ) -> ForwarderProcess:
        port = processes.free_port()
        env = dict(self.system.forwarder_env) | {
            "PATH": os.environ.get("PATH", ""),
            "POD_NAME": name,
            "METRICS_PORT": str(port),
            "CONFIRM_WAIT": CONFIRM_WAIT,
            **(extra or {}),
        }
        if node is not None:
            env["NODE_NAME"] = node
        argv = [*IMAGE_PYTHON, "-m", "floating_ip_forwarder.app"]
        made: ReplicaNetwork | None = None
        if network:
            self._made += 1
            inbound = [urlsplit(env[k]).port or 443 for k in ("KUBE_API_URL", "FUNCTION_URL")]
            made = ReplicaNetwork(self._made, inbound, [port])
            argv = made.argv(argv)
        replica = ForwarderProcess(REPO, env, self.workdir / f"{name}.log", argv=argv).start()
        self.started.append(replica)
        if made is not None:
            self.networks[id(replica)] = made
        replica.wait_ready(60)
        return replica

    def network_of(self, replica: ForwarderProcess) -> ReplicaNetwork:
        return self.networks[id(replica)]

    def stop(self) -> None:
        for replica in self.started:
            replica.terminate()
            replica.kill()
        self.started.clear()
        for network in self.networks.values():
            network.close()
        self.networks.clear()


def _cpu(pid: int) -> float:
    """CPU seconds (user and system) the process has used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _summary(samples: list[float]) -> dict[str, Any]:
    if not samples:
        return {"n": 0}
    return {
        "n": len(samples),
        "p50": round(figures.percentile(samples, 50), 3),
        "p95": round(figures.percentile(samples, 95), 3),
        "max": round(max(samples), 3),
        "samples": [round(x, 3) for x in samples],
    }


if __name__ == "__main__":
    target = Path(sys.argv[1])
    figures_out = run(
        target,
        sys.stdout,
        tcp=int(sys.argv[2]),
        udp=int(sys.argv[3]),
        loss_minutes=float(sys.argv[4]),
        cluster_access=sys.argv[5] if len(sys.argv) > 5 else "callback",
        vantage=int(sys.argv[6]) if len(sys.argv) > 6 else VANTAGE_DEATHS,
    )
    (target / "node-death.json").write_text(json.dumps(figures_out, indent=2))
