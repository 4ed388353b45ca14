"""Probe cost: the forwarder's CPU and memory with node probing off and on, in one run.

The forwarder bench's cluster (5,000 Pods, 1,000 Services of which 100 opted in, 200 Nodes
whose kubelets renew their Leases every 10 s, spread over the period as real kubelets are)
inside a private network namespace (``testbed.netns``) where the pods' 10.244.x.y addresses
sit on ``lo``. One listener per port (8080, 8443) on every address of the namespace accepts
each probe's connection, so every probe makes the full TCP handshake a live pod answers with
and nothing leaves the machine. The listeners run in this process, not in the forwarder.

For each setting of ``NODE_PROBES`` a fresh forwarder, the same environment otherwise:
ready and its start resync sent, then ``WINDOW`` seconds with nothing changing but the Leases:
CPU %, resident memory (synced, at the end, peak) and the probes it made per second.

Run outside the namespace, it re-runs itself inside one and returns what that run wrote.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, TextIO

from bench.forwarder_bench import (
    NODES,
    OPTED_IN,
    PODS_PER_SERVICE,
    SERVICES,
    Cluster,
    cpu_seconds,
    forwarder_env,
    proc_status,
)
from testbed import netns
from testbed.controlplane import ControlPlane, binaries
from testbed.forwarder_harness import (
    FORWARDER_ACCOUNT,
    NAMESPACE,
    ForwarderProcess,
    RawKube,
    image_layout,
    kubectl,
    write_overlay,
)
from testbed.kube import KubeBed
from testbed.pods import NODE_LEASE_NAMESPACE
from testbed.processes import wait_until
from testbed.receiver import Receiver
from testbed.tls import TestCA

REPO = Path(__file__).resolve().parents[1]
POD_PORTS = (8080, 8443)
"""The target ports of the bench's EndpointSlices: every pod answers on both."""
LEASE_RENEWAL = 10.0
"""Seconds between a kubelet's Lease renewals, as the real kubelet."""
WINDOW = 30.0
"""Seconds of steady state measured per setting."""
SETTINGS = ("off", "on")


def run(workdir: Path, log: TextIO) -> Any:
    """The figures; outside a private network namespace, by re-running in one."""
    workdir.mkdir(parents=True, exist_ok=True)
    if netns.inside():
        return _inside(workdir)
    why = netns.unavailable()
    if why is not None:
        raise RuntimeError(f"probe cost needs a private network namespace: {why}")
    argv = [sys.executable, "-m", "bench.probe_cost_bench", str(workdir)]
    done = subprocess.run(
        netns.wrap(argv), cwd=REPO, stdout=log, stderr=subprocess.STDOUT, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"the probe-cost run exited {done.returncode} (see its log)")
    return json.loads((workdir / "probe-cost.json").read_text())


class Listeners:
    """Accepts and closes every connection to ``POD_PORTS`` on any address here."""

    def __init__(self) -> None:
        self.servers = [socket.create_server(("0.0.0.0", port), backlog=4096) for port in POD_PORTS]
        self._accepted = [0] * len(self.servers)
        """Per listener: each counter has one writer, its thread."""
        self.threads = [
            threading.Thread(target=self._serve, args=(n,), daemon=True)
            for n in range(len(self.servers))
        ]
        for thread in self.threads:
            thread.start()

    @property
    def accepted(self) -> int:
        return sum(self._accepted)

    def _serve(self, n: int) -> None:
        server = self.servers[n]
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return  # closed
            conn.close()
            self._accepted[n] += 1

    def stop(self) -> None:
        for server in self.servers:
            with contextlib.suppress(OSError):
                server.shutdown(socket.SHUT_RDWR)
            server.close()
        for thread in self.threads:
            thread.join(5)


class Kubelets:
    """Every node's Lease renewed every ``LEASE_RENEWAL`` seconds, the nodes spread evenly
    over the period."""

    def __init__(self, plane: ControlPlane, nodes: list[str]) -> None:
        self.raw = RawKube(plane)
        self.nodes = nodes
        self.renewals = 0
        self._stop = threading.Event()
        path = f"/apis/coordination.k8s.io/v1/namespaces/{NODE_LEASE_NAMESPACE}/leases"
        for node in nodes:
            self.raw.call("POST", path, {"metadata": {"name": node}, "spec": self._spec(node)})
        self._path = path
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    @staticmethod
    def _spec(node: str) -> dict[str, Any]:
        now = time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime())
        return {"holderIdentity": node, "leaseDurationSeconds": 40, "renewTime": now}

    def _run(self) -> None:
        step = LEASE_RENEWAL / len(self.nodes)
        started = time.monotonic()
        n = 0
        while not self._stop.wait(max(0.0, started + n * step - time.monotonic())):
            node = self.nodes[n % len(self.nodes)]
            self.raw.merge_patch(f"{self._path}/{node}", {"spec": self._spec(node)})
            self.renewals += 1
            n += 1

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self.raw.close()


def _inside(workdir: Path) -> dict[str, Any]:
    plane = ControlPlane(workdir / "controlplane", binaries()).start()
    try:
        return _measure(plane, workdir)
    finally:
        plane.stop()


def _measure(plane: ControlPlane, workdir: Path) -> dict[str, Any]:
    secret = secrets.token_urlsafe(24)
    kube = KubeBed(plane.admin_client())
    overlay = write_overlay(
        workdir / "overlay", secret=secret, function_url="https://function.invalid/"
    )
    kubectl(plane, "apply", "-k", str(overlay))
    cluster = Cluster(plane)
    cluster.load()
    wait_until(
        lambda: (
            NODE_LEASE_NAMESPACE
            in {n.metadata.name for n in kube.core.list_namespace().items if n.metadata}
        ),
        timeout=60,
        what="namespace kube-node-lease",
    )
    ca = TestCA(workdir / "receiver-ca")
    receiver = Receiver(ca.issue("receiver", "127.0.0.1"), secret).start()
    token = workdir / "token"
    token.write_text(kube.mint_token(NAMESPACE, FORWARDER_ACCOUNT, 7200))
    listeners = Listeners()
    kubelets = Kubelets(plane, cluster.nodes)
    layout = image_layout(workdir / "image")
    results: dict[str, Any] = {}
    try:
        for setting in SETTINGS:
            env = forwarder_env(plane, receiver.url(), ca.ca_file, secret, token)
            env["NODE_PROBES"] = setting
            log = workdir / f"forwarder-probes-{setting}.log"
            results[setting] = _one(ForwarderProcess(layout, env, log), receiver)
    finally:
        kubelets.stop()
        listeners.stop()
        receiver.stop()
    on, off = results["on"], results["off"]
    return {
        "objects": {
            "nodes": NODES,
            "services": SERVICES,
            "opted_in": OPTED_IN,
            "pods": SERVICES * PODS_PER_SERVICE,
            "probe_targets": OPTED_IN * PODS_PER_SERVICE * len(POD_PORTS),
        },
        "window_seconds": WINDOW,
        "lease_renewal_seconds": LEASE_RENEWAL,
        "lease_renewals": kubelets.renewals,
        "connections_accepted": listeners.accepted,
        **results,
        "ratios_on_to_off": {
            key: round(on[key] / off[key], 2) if off[key] else None
            for key in ("cpu_percent", "rss_mib_synced", "rss_mib_at_end", "peak_rss_mib")
        },
    }


def _one(forwarder: ForwarderProcess, receiver: Receiver) -> dict[str, Any]:
    since = time.monotonic()
    try:
        forwarder.start()
        forwarder.wait_ready(timeout=180)
        wait_until(
            lambda: bool(receiver.resyncs(since)),
            timeout=60,
            what="the start resync",
        )
        synced = proc_status(forwarder.pid)
        # One round first, so the window is steady state (its first round opens the selector).
        wait_until(lambda: forwarder.metric("probe_rounds") >= 1, timeout=30, what="a probe round")
        cpu, probes = cpu_seconds(forwarder.pid), forwarder.metric("probes")
        rounds, failed = forwarder.metric("probe_rounds"), forwarder.metric("probe_failures")
        started = time.monotonic()
        time.sleep(WINDOW)  # the measuring window itself: nothing to wait for
        elapsed = time.monotonic() - started
        cpu = cpu_seconds(forwarder.pid) - cpu
        memory = proc_status(forwarder.pid)
        return {
            "cpu_percent": round(100 * cpu / elapsed, 2),
            "rss_mib_synced": synced["VmRSS"],
            "rss_mib_at_end": memory["VmRSS"],
            "peak_rss_mib": memory["VmHWM"],
            "probes_per_second": round((forwarder.metric("probes") - probes) / elapsed, 1),
            "probe_rounds": int(forwarder.metric("probe_rounds") - rounds),
            "probe_failures": int(forwarder.metric("probe_failures") - failed),
            "suspected_nodes": int(forwarder.metric("suspected_nodes")),
        }
    finally:
        forwarder.terminate()


if __name__ == "__main__":
    # Inside the namespace (``run`` re-runs this module there): figures into the given directory.
    target = Path(sys.argv[1])
    (target / "probe-cost.json").write_text(json.dumps(_inside(target), indent=2))
