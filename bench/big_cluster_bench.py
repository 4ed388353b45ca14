"""One reconcile on a big cluster, old code and new side by side: 1,000 Services (30 opted
in, in 3 namespaces), 200 Nodes, 5,000 Pods (50 of them in the opted-in namespaces).

Each side runs in a fresh process (as a function instance does): idle resyncs, timed; the
process's peak resident memory; the Kubernetes bytes the apiserver sent, from its own
``apiserver_response_sizes`` metric (the same measure for both sides), in all and per
resource. That metric sums the body bytes written to the connection: after gzip when the
apiserver compressed (the new code asks for it; the apiserver compresses bodies over
128 KiB), so it is the bytes on the wire (without headers, chunk framing and TLS) for both
sides. The decoded bytes (what was parsed) are the function's own count (the old code's
count is its wire bytes too: it never asked for gzip). The first resync, which places the
30 reserved IPs, is made before, by the new code, and not counted.

Run alone with ``python -m bench.big_cluster_bench``.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench import baseline
from bench.forwarder_bench import Cluster, node_body, pod_body, pod_status
from bench.machine import REPO
from floating_ip.handler import Request, handle
from floating_ip_common import contract
from testbed.controlplane import ControlPlane, binaries
from testbed.do_imitation.server import DoImitation
from testbed.doks import DoksWorld, function_token
from testbed.function_harness import resync
from testbed.kube import DOKS_REGION, KubeBed

NODES = 200
SERVICES = 1000
OPTED_IN = 30
OPTED_IN_NAMESPACES = 3
NAMESPACES = 100
PODS = 5000
PODS_OPTED_IN = 50
RUNS = 20
"""Idle resyncs per side, in one process; the first is the process's cold one."""
MEMORY_LIMIT_MB = int(re.findall(r"memory: (\d+)", (REPO / "project.yml").read_text())[0])
"""project.yml's ``limits.memory``: peak RSS must stay under half of it."""

INVOKE = """
import json, sys, time
from floating_ip.handler import Request, handle
headers, env, runs = json.loads(sys.stdin.read())
seconds, observed = [], None
for _ in range(runs):
    started = time.perf_counter()
    answer = handle(Request("POST", headers, b"{}"), env)
    seconds.append(time.perf_counter() - started)
    assert answer.status == 200, answer.body
    observed = answer.body["observed"]
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the forking parent.
peak = next(l for l in open("/proc/self/status") if l.startswith("VmHWM:")).split()[1]
print(json.dumps({"seconds": seconds, "observed": observed, "peak_rss_kib": int(peak)}))
"""


RESOURCES = ("nodes", "services", "pods", "endpointslices", "configmaps")
"""What the function reads from Kubernetes, for the per-resource breakdown."""


def response_bytes(plane: ControlPlane) -> dict[str, float]:
    """Response body bytes the apiserver sent so far as it sent them: in all and per resource."""
    sent = {resource: plane.response_bytes(resource=resource) for resource in RESOURCES}
    return {"all": plane.response_bytes(), **sent}


def load(plane: ControlPlane, do: DoImitation, world: DoksWorld) -> list[str]:
    """The big cluster; returns the opted-in namespaces."""
    cluster = Cluster(plane)
    raw = cluster.raw()

    def add_node(i: int) -> None:
        node, status = node_body(i)
        do.add_doks_node(world.cluster_id, id=300000 + i, name=node["metadata"]["name"])
        cluster.raw().call("POST", "/api/v1/nodes", node)
        cluster.raw().merge_patch(f"/api/v1/nodes/{node['metadata']['name']}/status", status)
        # Ready, as a node controller would leave it: the not-ready taint admission put goes.
        cluster.raw().merge_patch(
            f"/api/v1/nodes/{node['metadata']['name']}", {"spec": {"taints": None}}
        )

    cluster.parallel(add_node, range(NODES))
    nodes = [node_body(i)[0]["metadata"]["name"] for i in range(NODES)]
    namespaces = [f"big-{n}" for n in range(NAMESPACES)]
    for namespace in namespaces:
        raw.call("POST", "/api/v1/namespaces", {"metadata": {"name": namespace}})
    opted_in_namespaces = namespaces[:OPTED_IN_NAMESPACES]
    services = [(namespaces[i % NAMESPACES], i) for i in range(SERVICES)]
    opted = [s for s in services if s[0] in opted_in_namespaces][:OPTED_IN]
    others = [s for s in services if s not in opted]

    def add_service(item: tuple[str, int]) -> None:
        namespace, i = item
        annotations = {"meta.helm.sh/release-name": f"app-{i}"}
        if item in opted:
            n = opted.index(item)
            annotations[contract.ADDRESS] = f"198.18.0.{n + 1}"
        body = {
            "metadata": {"name": f"svc-{i}", "namespace": namespace, "annotations": annotations},
            "spec": {
                "clusterIP": "None" if item not in opted else None,
                "selector": {"app": f"app-{i}"},
                "ports": [
                    {"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"},
                    {"name": "https", "port": 443, "targetPort": 8443, "protocol": "TCP"},
                ],
            },
        }
        cluster.raw().call("POST", f"/api/v1/namespaces/{namespace}/services", body)

    cluster.parallel(add_service, services)
    for n, _ in enumerate(opted):
        do.add_reserved_ip(f"198.18.0.{n + 1}", region=DOKS_REGION)

    # Pods: PODS_OPTED_IN behind the opted-in Services (ready, in their slices), the rest
    # spread over the other Services (as created; the function must never read them).
    pods_of: dict[tuple[str, int], list[dict[str, Any]]] = {s: [] for s in opted}
    plan = [(opted[k % len(opted)], k) for k in range(PODS_OPTED_IN)]
    plan += [(others[k % len(others)], k) for k in range(PODS - PODS_OPTED_IN)]

    def add_pod(item: tuple[tuple[str, int], int]) -> None:
        (namespace, i), k = item
        node = nodes[(i * 7 + k) % NODES]
        body = pod_body(namespace, i, k, node)
        path = f"/api/v1/namespaces/{namespace}/pods"
        cluster.raw().call("POST", path, body)
        if (namespace, i) in pods_of:
            ip = f"10.245.{k // 250}.{k % 250 + 2}"
            cluster.raw().merge_patch(
                f"{path}/{body['metadata']['name']}/status", pod_status(ip, True)
            )
            pods_of[(namespace, i)].append({"metadata": body["metadata"], "ip": ip, "node": node})

    cluster.parallel(add_pod, plan)
    for (namespace, i), pods in pods_of.items():
        raw.call(
            "POST",
            f"/apis/discovery.k8s.io/v1/namespaces/{namespace}/endpointslices",
            {
                "metadata": {
                    "name": f"svc-{i}-abcde",
                    "labels": {contract.SERVICE_NAME_LABEL: f"svc-{i}"},
                },
                "addressType": "IPv4",
                "endpoints": [
                    {
                        "addresses": [p["ip"]],
                        "conditions": {"ready": True, "serving": True, "terminating": False},
                        "nodeName": p["node"],
                        "targetRef": {
                            "kind": "Pod",
                            "namespace": namespace,
                            "name": p["metadata"]["name"],
                        },
                    }
                    for p in pods
                ],
                "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
            },
        )
    return opted_in_namespaces


def side(
    env: dict[str, str], plane: ControlPlane, token: str, old_lib: Path | None = None
) -> dict[str, Any]:
    """RUNS idle resyncs in a fresh process running the function: this checkout's (the venv's
    import path), or the baseline's ``old_lib``, put ahead of it."""
    headers, _ = resync(token)
    before = response_bytes(plane)
    ahead = {"PYTHONPATH": str(old_lib)} if old_lib is not None else {}
    done = subprocess.run(
        [sys.executable, "-c", INVOKE],
        input=json.dumps([headers, env, RUNS]),
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, **env, **ahead},
    )
    if done.returncode != 0:
        raise RuntimeError(f"the function failed:\n{done.stderr[-3000:]}")
    after = response_bytes(plane)
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    warm = sorted(figures["seconds"][1:])
    observed = figures["observed"]
    wire = round((after["all"] - before["all"]) / RUNS)
    # The old code counts no bytes and never asks for gzip: what it parsed is what was sent.
    decoded = observed.get("kubernetes_bytes_decoded", wire)
    return {
        "first_s": round(figures["seconds"][0], 3),
        "warm_median_s": round(statistics.median(warm), 3),
        "warm_p95_s": round(warm[round(0.95 * (len(warm) - 1))], 3),
        "peak_rss_mb": round(figures["peak_rss_kib"] / 1024, 1),
        # On the wire, by the apiserver's count (see the module's docstring).
        "kube_bytes_per_invocation": wire,
        "kube_bytes_by_resource": {
            resource: round((after[resource] - before[resource]) / RUNS) for resource in RESOURCES
        },
        "kube_decoded_bytes_per_invocation": decoded,
        "observed": {k: v for k, v in observed.items() if k != "firewall"},
    }


def run(workdir: Path) -> dict[str, Any]:
    old_lib = baseline.export(workdir / "baseline", "lib") / "lib"
    plane = ControlPlane(workdir / "control-plane", binaries()).start()
    try:
        with DoImitation(workdir / "digitalocean", check_contract=False) as do:
            kube = KubeBed(plane.admin_client())
            world = DoksWorld(plane, kube, do)
            opted_in = load(plane, do, world)
            token = function_token(plane, kube)
            # The baseline (old code) reads the token from its environment; this code from the call.
            env = world.function_env(NAMESPACES="*", KUBE_TOKEN=token)
            os.environ["REQUESTS_CA_BUNDLE"] = env["REQUESTS_CA_BUNDLE"]
            placing = handle(Request("POST", *resync(token)), env)
            if placing.status != 200 or placing.body["errors"]:
                raise RuntimeError(f"placing failed: {json.dumps(placing.body)[:2000]}")
            placed = sum(1 for c in placing.body["changes"] if c.get("kind") == "reserved_ip")
            if placed != OPTED_IN:
                raise RuntimeError(f"placed {placed} of {OPTED_IN}: {placing.body['services']}")
            old = side(env, plane, token, old_lib)
            new = side(env, plane, token)
    finally:
        plane.stop()
    return {
        "cluster": {
            "services": SERVICES,
            "opted_in": OPTED_IN,
            "opted_in_namespaces": opted_in,
            "nodes": NODES,
            "pods": PODS,
            "pods_opted_in_namespaces": PODS_OPTED_IN,
            "assigned_by_first_resync": placed,
        },
        "old": old,
        "new": new,
        "ratios": {
            "warm_p95": round(new["warm_p95_s"] / old["warm_p95_s"], 2),
            "bytes": round(new["kube_bytes_per_invocation"] / old["kube_bytes_per_invocation"], 2),
            "decoded_bytes": round(
                new["kube_decoded_bytes_per_invocation"] / old["kube_decoded_bytes_per_invocation"],
                2,
            ),
            "peak_rss": round(new["peak_rss_mb"] / old["peak_rss_mb"], 2),
        },
        "memory_limit_mb": MEMORY_LIMIT_MB,
        "margin": round(MEMORY_LIMIT_MB / new["peak_rss_mb"], 2),
    }


def main() -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-big-cluster-") as tmp:
        results = run(Path(tmp))
    print(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
