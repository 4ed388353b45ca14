"""Benchmark of the event forwarder on a loaded control plane.

5,000 Pods, 1,000 Services (100 opted in), 200 Nodes and their EndpointSlices times a scale
factor (``--forwarder-scale``; 10 is 50,000 Pods); the forwarder
runs as shipped (the image's files, the kustomize base's identity) against a recording HTTPS
receiver. Measured: resident memory (peak and settled), CPU time, posts per 1,000 pod
changes (in a burst and paced), node heartbeats' posts, and the time from a change to its
POST arriving.

Run alone with ``python -m bench.forwarder_bench [SCALE]``.
"""

from __future__ import annotations

import json
import os
import random
import secrets
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from floating_ip_common import contract
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
from testbed.processes import free_port, wait_until
from testbed.receiver import Receiver
from testbed.tls import TestCA

NODES = 200
SERVICES = 1000
OPTED_IN = 100
"""At scale 1; every count of objects is multiplied by the scale, Nodes up to ``MAX_NODES``."""
MAX_NODES = 1000
"""The ten-times cluster of the cold-path issue has 1,000 Nodes (not 2,000): Pods and Services
grow with the workload, a cluster's node count far less."""
PODS_PER_SERVICE = 5
NAMESPACES = 10
CHANGES = 1000
PACE = 20.0
"""Pod changes per second in the paced round (a rolling update's order of magnitude)."""
LATENCY_SAMPLES = 20
QUIET_WINDOW = 0.5
MAX_DELAY = 2.0
WORKERS = 8
"""Keep-alive connections writing at once: enough to keep the apiserver busy on two cores."""

_local = threading.local()


@dataclass(frozen=True)
class Size:
    """How many objects of each kind: today's bench times ``scale``."""

    scale: int = 1

    def __post_init__(self) -> None:
        if self.scale < 1:
            raise ValueError(f"scale {self.scale}: a whole number of at least 1")

    @property
    def nodes(self) -> int:
        return min(MAX_NODES, NODES * self.scale)

    @property
    def services(self) -> int:
        return SERVICES * self.scale

    @property
    def opted_in(self) -> int:
        return OPTED_IN * self.scale

    @property
    def pods(self) -> int:
        return self.services * PODS_PER_SERVICE


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- objects as a real cluster has them (sizes matter for memory and CPU) ----------------------


def node_body(i: int) -> tuple[dict[str, Any], dict[str, Any]]:
    name = f"pool-{i // 50}-node-{i}"
    node = {
        "metadata": {
            "name": name,
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "node.kubernetes.io/instance-type": "s-4vcpu-8gb",
                "topology.kubernetes.io/region": "nyc3",
                "doks.digitalocean.com/node-pool": f"pool-{i // 50}",
                "doks.digitalocean.com/node-id": f"{i:08d}-0000-4000-8000-000000000000",
            },
            "annotations": {contract.ANCHOR_IPV4: f"10.20.{i // 250}.{i % 250 + 1}"},
        },
        "spec": {"providerID": f"digitalocean://{300000 + i}"},
    }
    # A kubelet reports every image it holds: most of a real Node's bytes.
    images = [
        {
            "names": [
                f"registry.example/team/app-{j}@sha256:{secrets.token_hex(32)}",
                f"registry.example/team/app-{j}:v1.{j}.0",
            ],
            "sizeBytes": 50_000_000 + j,
        }
        for j in range(30)
    ]
    status = {
        "status": {
            "conditions": [
                {
                    "type": kind,
                    "status": "True" if kind == "Ready" else "False",
                    "reason": f"Kubelet{kind}",
                    "message": "kubelet is posting ready status",
                    "lastHeartbeatTime": now(),
                    "lastTransitionTime": now(),
                }
                for kind in ("MemoryPressure", "DiskPressure", "PIDPressure", "Ready")
            ],
            "addresses": [
                {"type": "InternalIP", "address": f"10.116.{i // 250}.{i % 250 + 2}"},
                {"type": "ExternalIP", "address": f"203.0.{i // 250}.{i % 250 + 2}"},
                {"type": "Hostname", "address": name},
            ],
            "capacity": {"cpu": "4", "memory": "8148060Ki", "pods": "110"},
            "allocatable": {"cpu": "3900m", "memory": "6694Mi", "pods": "110"},
            "nodeInfo": {
                "kubeletVersion": "v1.37.2",
                "containerRuntimeVersion": "containerd://1.7.0",
                "kernelVersion": "6.1.0",
                "osImage": "Debian GNU/Linux 12",
                "architecture": "amd64",
                "operatingSystem": "linux",
                "machineID": secrets.token_hex(16),
                "systemUUID": secrets.token_hex(16),
                "bootID": secrets.token_hex(16),
                "kubeProxyVersion": "",
            },
            "images": images,
        }
    }
    return node, status


def opted_in(i: int) -> bool:
    """One Service in ``SERVICES // OPTED_IN`` opts in, at any scale."""
    return i % (SERVICES // OPTED_IN) == 0


def service_body(namespace: str, i: int) -> dict[str, Any]:
    annotations = {"meta.helm.sh/release-name": f"app-{i}"}
    if opted_in(i):
        annotations[contract.ADDRESS] = f"198.18.{i // 250}.{i % 250 + 1}"
    return {
        "metadata": {
            "name": f"svc-{i}",
            "namespace": namespace,
            "labels": {"app.kubernetes.io/name": f"app-{i}", "app.kubernetes.io/part-of": "bench"},
            "annotations": annotations,
        },
        "spec": {
            "selector": {"app": f"app-{i}"},
            "ports": [
                {"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"},
                {"name": "https", "port": 443, "targetPort": 8443, "protocol": "TCP"},
            ],
        },
    }


def pod_body(namespace: str, service: int, k: int, node: str) -> dict[str, Any]:
    return {
        "metadata": {
            "name": f"app-{service}-{secrets.token_hex(4)}-{k}",
            "namespace": namespace,
            "labels": {
                "app": f"app-{service}",
                "pod-template-hash": "5d8f7c9b6d",
                "app.kubernetes.io/part-of": "bench",
            },
            "annotations": {"kubectl.kubernetes.io/restartedAt": now()},
        },
        "spec": {
            "nodeName": node,
            "containers": [
                {
                    "name": "app",
                    "image": f"registry.example/team/app-{service % 30}:v1.0.0",
                    "ports": [{"containerPort": 8080}, {"containerPort": 8443}],
                    "env": [{"name": "MODE", "value": "production"}],
                    "resources": {
                        "requests": {"cpu": "50m", "memory": "64Mi"},
                        "limits": {"memory": "128Mi"},
                    },
                }
            ],
        },
    }


def pod_status(ip: str, ready: bool) -> dict[str, Any]:
    flag = "True" if ready else "False"
    return {
        "status": {
            "phase": "Running",
            "podIP": ip,
            "podIPs": [{"ip": ip}],
            "startTime": now(),
            "conditions": [
                {"type": kind, "status": flag, "lastTransitionTime": now()}
                for kind in ("Initialized", "ContainersReady", "Ready")
            ]
            + [{"type": "PodScheduled", "status": "True", "lastTransitionTime": now()}],
        }
    }


def endpoint(pod: dict[str, Any], ready: bool) -> dict[str, Any]:
    meta = pod["metadata"]
    return {
        "addresses": [pod["ip"]],
        "conditions": {"ready": ready, "serving": ready, "terminating": False},
        "nodeName": pod["node"],
        "targetRef": {"kind": "Pod", "namespace": meta["namespace"], "name": meta["name"]},
    }


# --- loading the control plane ---------------------------------------------------------------


class Cluster:
    """The loaded cluster and the bookkeeping to change it like kubelets and controllers."""

    def __init__(self, plane: ControlPlane, size: Size = Size()) -> None:
        self.plane = plane
        self.size = size
        self.nodes: list[str] = []
        self.namespaces = [f"bench-{n}" for n in range(NAMESPACES)]
        self.services: list[tuple[str, int, bool]] = []
        """``(namespace, index, opted_in)``"""
        self.pods: dict[tuple[str, int], list[dict[str, Any]]] = {}
        self.ready: dict[str, bool] = {}
        self.locks: dict[tuple[str, int], threading.Lock] = {}

    def raw(self) -> RawKube:
        if not hasattr(_local, "raw"):
            _local.raw = RawKube(self.plane)
        raw: RawKube = _local.raw
        return raw

    def parallel(self, work: Callable[[Any], object], items: Iterable[Any]) -> None:
        with ThreadPoolExecutor(WORKERS) as pool:
            for _ in pool.map(work, items):
                pass

    def load(self) -> None:
        def add_node(i: int) -> None:
            node, status = node_body(i)
            self.raw().call("POST", "/api/v1/nodes", node)
            self.raw().merge_patch(f"/api/v1/nodes/{node['metadata']['name']}/status", status)

        self.parallel(add_node, range(self.size.nodes))
        self.nodes = [node_body(i)[0]["metadata"]["name"] for i in range(self.size.nodes)]
        for namespace in self.namespaces:
            self.raw().call("POST", "/api/v1/namespaces", {"metadata": {"name": namespace}})
        self.services = [
            (self.namespaces[i % NAMESPACES], i, opted_in(i)) for i in range(self.size.services)
        ]

        def add_service(item: tuple[str, int, bool]) -> None:
            namespace, i, _ = item
            self.raw().call(
                "POST", f"/api/v1/namespaces/{namespace}/services", service_body(namespace, i)
            )
            pods = []
            for k in range(PODS_PER_SERVICE):
                node = self.nodes[(i * PODS_PER_SERVICE + k) % len(self.nodes)]
                body = pod_body(namespace, i, k, node)
                path = f"/api/v1/namespaces/{namespace}/pods"
                self.raw().call("POST", path, body)
                n = i * PODS_PER_SERVICE + k
                ip = f"10.244.{n // 250}.{n % 250 + 2}"
                name = body["metadata"]["name"]
                # The kubelet's status write: in the Pod's managedFields, which the metadata
                # the forwarder lists and watches carries.
                self.raw().merge_patch(f"{path}/{name}/status", pod_status(ip, True))
                pods.append({"metadata": body["metadata"], "ip": ip, "node": node})
                self.ready[name] = True
            self.pods[(namespace, i)] = pods
            self.locks[(namespace, i)] = threading.Lock()
            self.raw().call(
                "POST",
                f"/apis/discovery.k8s.io/v1/namespaces/{namespace}/endpointslices",
                self.slice_body(namespace, i),
            )
            done = len(self.pods)
            if done % 1000 == 0:
                print(f"  {done * PODS_PER_SERVICE} pods created", file=sys.stderr, flush=True)

        self.parallel(add_service, self.services)

    def slice_body(self, namespace: str, i: int) -> dict[str, Any]:
        pods = self.pods[(namespace, i)]
        return {
            "metadata": {
                "name": f"svc-{i}-abcde",
                "namespace": namespace,
                "labels": {
                    contract.SERVICE_NAME_LABEL: f"svc-{i}",
                    "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io",
                },
            },
            "addressType": "IPv4",
            "endpoints": [endpoint(p, self.ready[p["metadata"]["name"]]) for p in pods],
            "ports": [
                {"name": "http", "port": 8080, "protocol": "TCP"},
                {"name": "https", "port": 8443, "protocol": "TCP"},
            ],
        }

    def flip(self, namespace: str, i: int, k: int) -> None:
        """A pod's readiness flips: its kubelet's status write, then the EndpointSlice
        controller's."""
        with self.locks[(namespace, i)]:
            pod = self.pods[(namespace, i)][k]
            name = pod["metadata"]["name"]
            self.ready[name] = not self.ready[name]
            path = f"/api/v1/namespaces/{namespace}/pods/{name}/status"
            self.raw().merge_patch(path, pod_status(pod["ip"], self.ready[name]))
            self.raw().call(
                "PUT",
                f"/apis/discovery.k8s.io/v1/namespaces/{namespace}/endpointslices/svc-{i}-abcde",
                self.slice_body(namespace, i),
            )

    def heartbeat(self, name: str) -> None:
        """What a kubelet does: the same status, new heartbeat times."""
        current = self.raw().call("GET", f"/api/v1/nodes/{name}")
        for condition in current["status"]["conditions"]:
            condition["lastHeartbeatTime"] = now()
        self.raw().merge_patch(
            f"/api/v1/nodes/{name}/status",
            {"status": {"conditions": current["status"]["conditions"]}},
        )


# --- measuring the process -------------------------------------------------------------------


def proc_status(pid: int) -> dict[str, float]:
    """VmRSS and VmHWM in MiB."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = round(int(value.split()[0]) / 1024, 1)
    return out


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])  # utime + stime
    return ticks / os.sysconf("SC_CLK_TCK")


def settle(forwarder: ForwarderProcess) -> None:
    """Until nothing waits to be sent."""
    wait_until(
        lambda: forwarder.metric("queue_depth") == 0,
        timeout=120,
        what="the forwarder's queue empty",
        interval=0.2,
    )


def posts_during(
    receiver: Receiver, forwarder: ForwarderProcess, action: Callable[[], None]
) -> dict[str, float]:
    since = time.monotonic()
    cpu = cpu_seconds(forwarder.pid)
    seen = watch_events(forwarder)
    action()
    elapsed = time.monotonic() - since
    time.sleep(MAX_DELAY + 0.5)  # the last change's event may still be in its quiet window
    settle(forwarder)
    received = [r for r in receiver.accepted() if r.at >= since]
    return {
        "seconds": round(elapsed, 2),
        "posts": len(received),
        "service_events": sum(not r.is_resync for r in received),
        "resyncs": sum(r.is_resync for r in received),
        "cpu_seconds": round(cpu_seconds(forwarder.pid) - cpu, 3),
        "watch_events": watch_events(forwarder) - seen,
    }


def watch_events(forwarder: ForwarderProcess) -> float:
    return sum(v for k, v in forwarder.metrics().items() if "watch_events_total" in k)


# --- the run ---------------------------------------------------------------------------------


def forwarder_env(
    plane: ControlPlane, function_url: str, function_ca: Path, secret: str, token: Path
) -> dict[str, str]:
    """The forwarder's environment as the shipped base sets it, against the bench's
    control plane and receiver."""
    return {
        "PATH": "/usr/bin:/bin",
        "FUNCTION_URL": function_url,
        "FUNCTION_CA_FILE": str(function_ca),
        "WEB_SECRET": secret,
        "CLUSTER_ID": "0f1e2d3c-4b5a-4697-8877-665544332211",
        "KUBE_API_URL": plane.url,
        "KUBE_TOKEN_FILE": str(token),
        "KUBE_CA_FILE": str(plane.ca.ca_file),
        "POD_NAMESPACE": NAMESPACE,
        "POD_NAME": "bench",
        "METRICS_PORT": str(free_port()),
        "QUIET_WINDOW": f"{QUIET_WINDOW}s",
        "MAX_DELAY": f"{MAX_DELAY}s",
    }


def run(plane: ControlPlane, workdir: Path, size: Size) -> dict[str, Any]:
    rng = random.Random(11)
    secret = secrets.token_urlsafe(24)
    kube = KubeBed(plane.admin_client())
    overlay = write_overlay(
        workdir / "overlay", secret=secret, function_url="https://function.invalid/"
    )
    kubectl(plane, "apply", "-k", str(overlay))

    cluster = Cluster(plane, size)
    started = time.monotonic()
    cluster.load()
    load_seconds = time.monotonic() - started

    ca = TestCA(workdir / "receiver-ca")
    receiver = Receiver(ca.issue("receiver", "127.0.0.1"), secret).start()
    token = workdir / "token"
    token.write_text(kube.mint_token(NAMESPACE, FORWARDER_ACCOUNT, 7200))
    env = forwarder_env(plane, receiver.url(), ca.ca_file, secret, token)
    # The bed's pod IPs are not on this machine's network: send nothing to them (the
    # probe-cost part measures probing, in a network namespace where they are).
    env["NODE_PROBES"] = "off"
    forwarder = ForwarderProcess(image_layout(workdir / "image"), env, workdir / "forwarder.log")
    try:
        started = time.monotonic()
        forwarder.start()
        forwarder.wait_ready(timeout=120 * size.scale)
        sync_seconds = time.monotonic() - started
        wait_until(lambda: bool(receiver.resyncs()), timeout=30, what="the start resync")
        after_sync = {**proc_status(forwarder.pid), "cpu_seconds": cpu_seconds(forwarder.pid)}

        pods = [(ns, i, k) for ns, i, _ in cluster.services for k in range(PODS_PER_SERVICE)]

        def burst() -> None:
            cluster.parallel(lambda p: cluster.flip(*p), rng.sample(pods, CHANGES))

        def paced() -> None:
            start = time.monotonic()
            for n, pod in enumerate(rng.sample(pods, CHANGES)):
                delay = start + n / PACE - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                cluster.flip(*pod)

        def heartbeats() -> None:
            cluster.parallel(cluster.heartbeat, cluster.nodes)

        burst_figures = posts_during(receiver, forwarder, burst)
        paced_figures = posts_during(receiver, forwarder, paced)
        heartbeat_figures = posts_during(receiver, forwarder, heartbeats)
        latency = change_to_post(cluster, receiver, forwarder, rng)
        idle_cpu = cpu_seconds(forwarder.pid)
        time.sleep(10)
        idle_cpu = cpu_seconds(forwarder.pid) - idle_cpu
        memory = proc_status(forwarder.pid)
        delay = {k: v for k, v in forwarder.metrics().items() if "event_delay" in k}
    finally:
        forwarder.terminate()
        receiver.stop()
    return {
        "scale": size.scale,
        "objects": {
            "nodes": size.nodes,
            "services": size.services,
            "opted_in": size.opted_in,
            "pods": len(pods),
            "endpointslices": size.services,
        },
        "load_seconds": round(load_seconds, 1),
        "sync_seconds": round(sync_seconds, 2),
        "rss_mib_after_sync": after_sync["VmRSS"],
        "rss_mib_at_end": memory["VmRSS"],
        "peak_rss_mib": memory["VmHWM"],
        "cpu_seconds_start_and_sync": round(after_sync["cpu_seconds"], 2),
        "burst_1000_pod_changes": burst_figures,
        "paced_1000_pod_changes": {**paced_figures, "changes_per_second": PACE},
        "node_heartbeats": {**heartbeat_figures, "nodes": size.nodes},
        "change_to_post_seconds": latency,
        "idle_cpu_percent": round(100 * idle_cpu / 10, 2),
        "quiet_window_seconds": QUIET_WINDOW,
        "max_delay_seconds": MAX_DELAY,
        "forwarder_delay_histogram": delay,
    }


def change_to_post(
    cluster: Cluster, receiver: Receiver, forwarder: ForwarderProcess, rng: random.Random
) -> dict[str, float]:
    """Single changes to opted-in Services, one at a time: API write to POST arrival."""
    samples = []
    opted = [(ns, i) for ns, i, opted_in in cluster.services if opted_in]
    for _ in range(LATENCY_SAMPLES):
        # Spaced out so that the rate limit (60 a minute) is not what gets measured.
        time.sleep(1.5)
        namespace, i = rng.choice(opted)
        subject = f"{namespace}/svc-{i}"
        since = time.monotonic()
        cluster.flip(namespace, i, rng.randrange(PODS_PER_SERVICE))
        event = receiver.wait_subject(subject, since, or_resync=True, timeout=30)
        samples.append(event.at - since)
        settle(forwarder)
    samples.sort()
    return {
        "median": round(statistics.median(samples), 3),
        "p90": round(samples[int(len(samples) * 0.9) - 1], 3),
        "max": round(samples[-1], 3),
        "min": round(samples[0], 3),
    }


def main(scale: int = 1) -> dict[str, Any]:
    size = Size(scale)
    with tempfile.TemporaryDirectory(prefix="forwarder-bench-") as tmp:
        workdir = Path(tmp)
        plane = ControlPlane(workdir / "controlplane", binaries()).start()
        try:
            results = run(plane, workdir, size)
        finally:
            plane.stop()
    print(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    sys.exit(0 if main(int(sys.argv[1]) if len(sys.argv) > 1 else 1) else 1)
