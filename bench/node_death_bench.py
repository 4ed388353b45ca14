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

Run outside the namespace, it re-runs itself inside one and returns what that run wrote.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from kubernetes.client.exceptions import ApiException

from bench import figures
from demo import render
from demo.narrator import Narrator
from demo.observe import ACTIONS_PATH
from demo.options import Options
from demo.system import System, running
from floating_ip_common import contract
from testbed import netns
from testbed.kube import Port
from testbed.pods import PodListener, Power
from testbed.processes import wait_until

REPO = Path(__file__).resolve().parents[1]
TCP_DEATHS = 20
UDP_DEATHS = 5
LEASE_RENEWAL = 2.0
"""Seconds between a simulated kubelet's Lease renewals (the real kubelet: about 10 s)."""
FORWARDER = (("NODE_PROBES", "on"), ("SUSPICION_HOLD_DOWN", "3s"))
DEATH_TIMEOUT = 60.0
LOSS_MINUTES = 10.0
LOSS = 0.2
LOSS_PORT = 8080


def run(
    workdir: Path,
    log: TextIO,
    tcp: int = TCP_DEATHS,
    udp: int = UDP_DEATHS,
    loss_minutes: float = LOSS_MINUTES,
    *,
    cluster_access: str = "callback",
) -> Any:
    """The figures; outside a private network namespace, by re-running in one."""
    workdir.mkdir(parents=True, exist_ok=True)
    if netns.inside():
        return _inside(workdir, log, tcp, udp, loss_minutes, cluster_access=cluster_access)
    why = netns.unavailable()
    if why is not None:
        raise RuntimeError(f"node death needs a private network namespace: {why}")
    out = workdir / "node-death.json"
    argv = [sys.executable, "-m", "bench.node_death_bench", str(workdir)]
    argv += [str(tcp), str(udp), str(loss_minutes), cluster_access]
    done = subprocess.run(
        netns.wrap(argv), cwd=REPO, stdout=log, stderr=subprocess.STDOUT, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"the node-death run exited {done.returncode} (see its log)")
    return json.loads(out.read_text())


def _inside(
    workdir: Path, log: TextIO, tcp: int, udp: int, loss_minutes: float, *, cluster_access: str
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
            return {
                "tcp": deaths.series("tcp", [Port(8080, name="web")], tcp),
                "udp": deaths.series("udp", [Port(5353, "UDP", name="dns")], udp),
                "loss": deaths.loss(loss_minutes) if lossy else None,
                "forwarder": dict(FORWARDER),
                "lease_renewal_seconds": LEASE_RENEWAL,
                "cluster_access": cluster_access,
            }
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
        # Its pods would tell on the next series' nodes by TCP: gone, with their listeners.
        self.kube.core.delete_namespaced_service(service, self.system.namespace)
        for droplet in self.system.droplets:
            self.kube.delete_pod(self.system.namespace, f"{service}-{droplet.node}")
        for listeners in self.listeners.values():
            for listener in listeners:
                listener.stop()
            listeners.clear()
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
        self.say.say("bench", f"{minutes:g} min at {LOSS:.0%} loss: {len(moves)} moves")
        return {
            "minutes": minutes,
            "loss": LOSS,
            "false_moves": len(moves),
            "nodes_ever_suspected": sorted(seen),
        }

    def _pods(self, service: str, ports: list[Port]) -> None:
        self.kube.create_service(self.system.namespace, service, ports)
        for droplet in self.system.droplets:
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


if __name__ == "__main__":
    target = Path(sys.argv[1])
    access = sys.argv[5] if len(sys.argv) > 5 else "callback"
    figures_out = run(
        target,
        sys.stdout,
        int(sys.argv[2]),
        int(sys.argv[3]),
        float(sys.argv[4]),
        cluster_access=access,
    )
    (target / "node-death.json").write_text(json.dumps(figures_out, indent=2))
