"""Benchmarks of the reconcile function: decision time, cold start, calls per resync/failover.

Run alone with ``python -m bench.function_bench``; ``make bench`` runs it with the others.
"""

from __future__ import annotations

import json
import os
import random
import re
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

from floating_ip.core.model import (
    Cluster,
    ConditionStatus,
    Endpoint,
    Node,
    ObjectRef,
    Observation,
    Pod,
    ReservedIP,
    Service,
    ServicePort,
    annotations_from,
)
from floating_ip.core.plan import plan
from floating_ip.handler import Request, handle
from floating_ip_common import contract
from testbed.controlplane import ControlPlane, binaries
from testbed.do_imitation.server import DoImitation
from testbed.doks import DoksWorld, function_token
from testbed.function_harness import resync
from testbed.kube import KubeBed, Port
from testbed.layout import FUNCTION_PYTHONPATH

KUBE_RESOURCES = ("services", "endpointslices", "pods", "nodes", "events", "configmaps")
"""Every kind the function reads or writes (configmaps: the forwarder's suspicions)."""


# --- warm decision time (the pure core) -------------------------------------------------------


def synthetic_observation(services: int, nodes: int, seed: int = 7) -> Observation:
    """``services`` annotated Services on ``nodes`` nodes, three Services per reserved IP
    (on different ports), two ready endpoints each, every IP already on a fit holder."""
    rng = random.Random(seed)
    cluster = Cluster(cluster_id="b3c1e7a0-0000-4000-8000-000000000001", region="nyc3")
    node_list = tuple(
        Node(
            f"node-{i}",
            droplet_id=1000 + i,
            ready=ConditionStatus.TRUE,
            region="nyc3",
            anchor_ipv4=f"10.20.{i // 250}.{i % 250 + 1}",
        )
        for i in range(nodes)
    )
    ips = [f"198.18.{i // 250}.{i % 250 + 1}" for i in range(min(nodes, services // 3 + 1))]
    service_list = []
    pods = []
    for i in range(services):
        ip = ips[i % len(ips)]
        holder = ips.index(ip) % nodes
        spots = {holder, rng.randrange(nodes)}
        endpoints = []
        for spot in spots:
            pod = Pod("bench", f"svc-{i}-{spot}", f"node-{spot}")
            pods.append(pod)
            endpoints.append(Endpoint(f"node-{spot}", True, pod=ObjectRef("bench", pod.name)))
        service_list.append(
            Service(
                namespace="bench",
                name=f"svc-{i}",
                uid=f"uid-{i}",
                annotations=annotations_from({contract.ADDRESS: ip}),
                ports=(ServicePort(8000 + i // len(ips)),),
                endpoints=tuple(endpoints),
                creation_timestamp="2026-01-01T00:00:00Z",
            )
        )
    reserved = tuple(
        ReservedIP(ip, "nyc3", droplet_id=1000 + (n % nodes)) for n, ip in enumerate(ips)
    )
    return Observation(cluster, tuple(service_list), node_list, tuple(pods), reserved, None)


def decision_time(services: int = 300, nodes: int = 100, repeats: int = 30) -> dict[str, Any]:
    observation = synthetic_observation(services, nodes)
    plan(observation)  # warm up
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        plan(observation)
        seconds.append(time.perf_counter() - started)
    return {
        "services": services,
        "nodes": nodes,
        "median_ms": round(statistics.median(seconds) * 1000, 2),
        "p95_ms": round(sorted(seconds)[int(0.95 * (len(seconds) - 1))] * 1000, 2),
    }


# --- live figures on the bed ------------------------------------------------------------------


def apiserver_requests(plane: ControlPlane) -> Counter[str]:
    """``verb resource`` → requests served so far, from the apiserver's own metrics."""
    context = ssl.create_default_context(cafile=str(plane.ca.ca_file))
    context.load_cert_chain(str(plane.admin.cert), str(plane.admin.key))
    with urllib.request.urlopen(f"{plane.url}/metrics", context=context) as reply:
        text = reply.read().decode()
    counts: Counter[str] = Counter()
    for line in text.splitlines():
        if not line.startswith("apiserver_request_total{"):
            continue
        labels = dict(re.findall(r'(\w+)="([^"]*)"', line))
        if labels.get("resource") in KUBE_RESOURCES:
            counts[f"{labels['verb']} {labels['resource']}"] += int(float(line.rsplit(" ", 1)[1]))
    return counts


def calls_during(plane: ControlPlane, do: DoImitation, action: Any) -> dict[str, Any]:
    before = apiserver_requests(plane)
    do.clear_requests()
    action()
    after = apiserver_requests(plane)
    kube = {k: after[k] - before[k] for k in after if after[k] != before[k]}
    do_calls = Counter(f"{r.method} {r.path}" for r in do.requests())
    writes = [c for c in do_calls if not c.startswith("GET")]
    kube_writes = [k for k in kube if not k.startswith(("LIST", "GET", "WATCH"))]
    return {
        "digitalocean": sum(do_calls.values()),
        "digitalocean_writes": sum(do_calls[c] for c in writes),
        "kubernetes": sum(kube.values()),
        "kubernetes_writes": sum(kube[k] for k in kube_writes),
        "detail": {"digitalocean": dict(do_calls), "kubernetes": kube},
    }


COLD_START = """
import json, sys, time
started = time.perf_counter()
from floating_ip.entry_digitalocean_functions import main
imported = time.perf_counter()
class Context:
    def get_remaining_time_in_millis(self): return 30000
event = json.loads(sys.stdin.read())
answer = main(event, Context())
done = time.perf_counter()
print(json.dumps({"status": answer["statusCode"], "import_s": imported - started,
                  "first_reconcile_s": done - imported}))
"""


def cold_start(env: dict[str, str], token: str, runs: int = 5) -> dict[str, Any]:
    headers, body = resync(token)
    event = {
        "http": {
            "method": "POST",
            "headers": {k.lower(): v for k, v in headers.items()},
            "body": body.decode(),
            "isBase64Encoded": False,
        }
    }
    totals, imports, firsts = [], [], []
    for _ in range(runs):
        started = time.perf_counter()
        out = subprocess.run(
            [sys.executable, "-c", COLD_START],
            input=json.dumps(event),
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, **env, "PYTHONPATH": FUNCTION_PYTHONPATH},
        )
        totals.append(time.perf_counter() - started)
        figures = json.loads(out.stdout.strip().splitlines()[-1])
        assert figures["status"] == 200, out.stdout
        imports.append(figures["import_s"])
        firsts.append(figures["first_reconcile_s"])
    return {
        "process_to_answer_s": round(statistics.median(totals), 3),
        "import_s": round(statistics.median(imports), 3),
        "first_reconcile_s": round(statistics.median(firsts), 3),
    }


def live_figures() -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-function-") as tmp:
        plane = ControlPlane(Path(tmp) / "cp", binaries()).start()
        try:
            with DoImitation(Path(tmp) / "do") as do:
                return _measure(plane, do)
        finally:
            plane.stop()


def _measure(plane: ControlPlane, do: DoImitation) -> dict[str, Any]:
    kube = KubeBed(plane.admin_client())
    world = DoksWorld(plane, kube, do)
    for name in ("a", "b", "c"):
        world.add_node(name)
    namespace = kube.create_namespace("bench")
    ip = do.add_reserved_ip("192.0.2.77", region=world.region)
    kube.create_service(
        namespace,
        "traefik",
        [Port(80), Port(443), Port(443, "UDP", "h3")],
        annotations={contract.ADDRESS: ip},
        service_type="NodePort",
        external_traffic_policy="Local",  # the client's address kept, as the docs advise
    )
    kube.create_pod(namespace, "traefik-1", world.node("a"), {"app": "traefik"})
    kube.sync_endpoint_slices(namespace, "traefik")
    token = function_token(plane, kube)
    env = world.function_env(NAMESPACES=namespace)
    os.environ["REQUESTS_CA_BUNDLE"] = env["REQUESTS_CA_BUNDLE"]

    def run() -> None:
        headers, body = resync(token)
        answer = handle(Request("POST", headers, body), env)
        assert answer.status == 200, answer.body

    first = calls_during(plane, do, run)
    idle = calls_during(plane, do, run)

    # The pod moves (the bed plays kubelet and the EndpointSlice controller), then the
    # function runs: only the function's own calls are counted.
    kube.delete_pod(namespace, "traefik-1")
    kube.create_pod(namespace, "traefik-2", world.node("b"), {"app": "traefik"})
    kube.sync_endpoint_slices(namespace, "traefik")
    moved = calls_during(plane, do, run)
    assert world.holder_of(ip) == "b"
    return {
        "first_placement_calls": first,
        "idle_resync_calls": idle,
        "failover_calls": moved,
        "cold_start": cold_start(env, token),
    }


def main() -> dict[str, Any]:
    results = {"decision": decision_time(), **live_figures()}
    print(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
