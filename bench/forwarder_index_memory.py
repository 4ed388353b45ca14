"""What the forwarder's index of projections holds at a given size, without a control plane.

The forwarder benchmark's objects (same bodies, same counts for a scale) are projected and
upserted into a ``ClusterIndex`` as the watchers do; tracemalloc then reports the bytes still
held and the lines that allocated them. It tells the index's share of the forwarder's
resident memory from the rest (interpreter, threads, decoding of list pages).

Run with ``.venv/bin/python -m bench.forwarder_index_memory [SCALE]`` (the venv's import path
holds the project's packages, as for ``make bench``).
"""

from __future__ import annotations

import gc
import json
import sys
import tracemalloc
from typing import Any

from bench.forwarder_bench import (
    PODS_PER_SERVICE,
    Size,
    endpoint,
    node_body,
    pod_body,
    service_body,
)
from floating_ip_common import contract
from floating_ip_forwarder.forwarding import projections
from floating_ip_forwarder.forwarding.index import ClusterIndex

TOP = 8


def fill(index: ClusterIndex, size: Size) -> None:
    names = [node_body(i)[0]["metadata"]["name"] for i in range(size.nodes)]
    for i in range(size.nodes):
        node, status = node_body(i)
        index.upsert(projections.node({**node, **status}))
    for i in range(size.services):
        namespace = f"bench-{i % 10}"
        index.upsert(projections.service(service_body(namespace, i)))
        endpoints = []
        for k in range(PODS_PER_SERVICE):
            n = i * PODS_PER_SERVICE + k
            node_name = names[n % len(names)]
            pod = pod_body(namespace, i, k, node_name)
            index.upsert(projections.pod({"metadata": pod["metadata"]}))
            ip = f"10.244.{n // 250}.{n % 250 + 2}"
            endpoints.append(endpoint({**pod, "ip": ip, "node": node_name}, True))
        labels = {contract.SERVICE_NAME_LABEL: f"svc-{i}"}
        meta = {"name": f"svc-{i}-abcde", "namespace": namespace, "labels": labels}
        ports = [{"port": 8080, "protocol": "TCP"}, {"port": 8443, "protocol": "TCP"}]
        index.upsert(
            projections.endpoint_slice({"metadata": meta, "endpoints": endpoints, "ports": ports})
        )


def measure(scale: int) -> dict[str, Any]:
    tracemalloc.start()
    index = ClusterIndex()
    fill(index, Size(scale))
    gc.collect()
    held = tracemalloc.get_traced_memory()[0]
    top = tracemalloc.take_snapshot().statistics("lineno")[:TOP]
    tracemalloc.stop()
    return {
        "scale": scale,
        "objects": index.size(),
        "index_mib": round(held / 2**20, 1),
        "top_allocations": [str(stat) for stat in top],
    }


if __name__ == "__main__":
    print(json.dumps(measure(int(sys.argv[1]) if len(sys.argv) > 1 else 1), indent=2))
