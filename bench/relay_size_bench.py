"""Relay mode's event size on the big cluster of ``big_cluster_bench`` (1,000 Services, 30
opted in across 3 namespaces, 200 Nodes, 5,000 Pods): the state the forwarder sends with
each event, as it reads and trims it, against the 1 MB a DigitalOcean Function accepts.

Run alone with ``python -m bench.relay_size_bench``.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from bench.big_cluster_bench import NODES, OPTED_IN, PODS, SERVICES, load
from floating_ip_common.kube_access import KubeAccess
from floating_ip_common.kube_client import KubeClient
from floating_ip_forwarder.forwarding.relay import MAX_STATE_BYTES, Relay
from testbed.controlplane import ControlPlane, binaries
from testbed.do_imitation.server import DoImitation
from testbed.doks import DoksWorld
from testbed.forwarder_harness import FORWARDER_ACCOUNT, NAMESPACE, kubectl, write_overlay
from testbed.kube import KubeBed


def run(workdir: Path) -> dict[str, Any]:
    plane = ControlPlane(workdir / "control-plane", binaries()).start()
    try:
        with DoImitation(workdir / "digitalocean", check_contract=False) as do:
            kube = KubeBed(plane.admin_client())
            world = DoksWorld(plane, kube, do)
            load(plane, do, world)
            overlay = write_overlay(
                workdir / "overlay", secret="s" * 24, function_url="https://function.invalid/"
            )
            kubectl(plane, "apply", "-k", str(overlay))
            token = workdir / "forwarder.token"
            token.write_text(kube.mint_token(NAMESPACE, FORWARDER_ACCOUNT))
            client = KubeClient(KubeAccess(plane.url, str(token), str(plane.ca.ca_file)))
            connection = client.connection()
            try:
                relay = Relay(connection, ())
                state = relay.state()
                body = relay.body({"service": "big-0/svc-0"}, state)
            finally:
                connection.close()
    finally:
        plane.stop()
    by_kind = {k: len(json.dumps(v, separators=(",", ":"))) for k, v in state.items()}
    return {
        "cluster": {"services": SERVICES, "opted_in": OPTED_IN, "nodes": NODES, "pods": PODS},
        "objects": {k: len(v) for k, v in state.items() if isinstance(v, list)},
        "event_bytes": len(body),
        "bytes_by_kind": by_kind,
        "limit_bytes": MAX_STATE_BYTES,
        "bytes_per_node": round(by_kind["nodes"] / max(1, len(state["nodes"]))),
    }


def main() -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-relay-size-") as tmp:
        results = run(Path(tmp))
    print(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
