"""Whole-system soak (``make soak``; skipped unless ``SYSTEM_SOAK_ROUNDS`` is set): the real
control plane, the forwarder process, the function under functions-framework, the
DigitalOcean imitation, and a random schedule of cluster changes and faults.

Each round arms one fault, makes the holder unfit in one way, and waits until the IP and
``spec.externalIPs`` are on a fit node; then the holder's trouble is undone and a direct
resync must move nothing (the new holder is fit: no flap). Faults: DigitalOcean 429 / 5xx
on the assign, an assign whose answer is lost after DigitalOcean acted, an assign action
that errors (the function answers 503 and the forwarder retries), list failures, the
forwarder killed with SIGKILL and restarted, the apiserver restarted, and a second
invocation racing the forwarder's on the same Service. It ends with an idle minute, in
which nothing may be written.
"""

from __future__ import annotations

import os
import random
import re
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests

from floating_ip_common import contract
from testbed.controlplane import ControlPlane
from testbed.doks import DoksWorld
from testbed.forwarder_harness import FUNCTION_ACCOUNT, NAMESPACE, Shipped
from testbed.function_harness import binary_event, resync
from testbed.kube import KubeBed
from testbed.processes import wait_until
from testbed.tls import CertFiles, TestCA
from tests.forwarder.conftest import StartForwarder
from tests.forwarder.test_function_e2e import IP, PORTS, serve_function

ROUNDS = int(os.environ.get("SYSTEM_SOAK_ROUNDS", "0"))
SEED = int(os.environ.get("SYSTEM_SOAK_SEED", "15"))
ACTIONS = "/v2/reserved_ips/{reserved_ip}/actions"
SHORT = ("a", "b", "c")
GOING_AWAY = "ToBeDeletedByClusterAutoscaler"

pytestmark = pytest.mark.skipif(ROUNDS == 0, reason="a soak: make soak runs it")


@pytest.fixture
def function_url(
    world: DoksWorld,
    kube: KubeBed,
    shipped: Shipped,
    namespace: str,
    receiver_tls: tuple[TestCA, CertFiles],
    web_secret: str,
    tmp_path: Path,
) -> Iterator[str]:
    """The function as in the end-to-end test; refusals are counted, not failed: an apiserver
    just restarted answers 403 until its authorizer has loaded the RBAC objects."""
    with serve_function(world, kube, namespace, receiver_tls, web_secret, tmp_path) as (url, log):
        yield url
        refused = len(re.findall(r"kubernetes [^:]*: 403 ", log.read_text()))
        print(f"  function answers with a 403 from Kubernetes (apiserver restarts): {refused}")


def untaint(kube: KubeBed, node: str, key: str) -> None:
    taints = [t for t in (kube.core.read_node(node).spec.taints or []) if t.key != key]
    kube.core.patch_node(node, {"spec": {"taints": [t.to_dict() for t in taints]}})


def holder_state(doks: DoksWorld, kube: KubeBed, namespace: str) -> tuple[str | None, bool]:
    """The node holding the IP, and whether the Service lists exactly its anchor."""
    short = doks.holder_of(IP)
    service = kube.core.read_namespaced_service("traefik", namespace)
    notes = service.metadata.annotations or {}
    listed = (
        short is not None
        and service.spec.external_ips == [doks.droplets[short].anchor_ip]
        and notes.get(contract.HOLDER_NODE) == doks.node(short)
    )
    return short, listed


def test_whole_system_soak(
    start_forwarder: StartForwarder,
    function_url: str,
    world: DoksWorld,
    kube: KubeBed,
    control_plane: ControlPlane,
    namespace: str,
    web_secret: str,
    receiver_tls: tuple[TestCA, CertFiles],
) -> None:
    rng = random.Random(SEED)
    world.add_node("c")
    world.do.add_reserved_ip(IP, region=world.region)
    world.do.set_action_latency(0.5)
    kube.create_service(namespace, "traefik", PORTS, annotations={contract.ADDRESS: IP})
    for short in SHORT:
        kube.create_pod(namespace, f"traefik-{short}", world.node(short), {"app": "traefik"})
    kube.sync_endpoint_slices(namespace, "traefik")
    env = {"FUNCTION_URL": function_url, "CLUSTER_ID": world.cluster_id, "RESYNC_PERIOD": "30"}
    forwarders = [start_forwarder(namespace, name="soak-0", **env)]
    wait_until(lambda: holder_state(world, kube, namespace)[1], timeout=60, what="placed")

    session = requests.Session()
    session.trust_env = False
    session.verify = str(receiver_tls[0].ca_file)  # the function's certificate is from it

    def direct_call(subject: str | None = None) -> int:
        token = kube.mint_token(NAMESPACE, FUNCTION_ACCOUNT, contract.KUBE_TOKEN_SECONDS)
        headers, body = (
            binary_event(contract.EVENT_SERVICE_CHANGED, subject, kube_token=token)
            if subject
            else resync(token)
        )
        headers[contract.AUTH_HEADER] = web_secret
        headers["ce-clusterid"] = world.cluster_id
        return session.post(function_url, headers=headers, data=body, timeout=60).status_code

    def restart_forwarder() -> None:
        forwarders[-1].crash()
        forwarders.append(
            start_forwarder(namespace, name=f"soak-{len(forwarders)}", wait=False, **env)
        )

    def restart_apiserver() -> None:
        control_plane.stop_apiserver()
        control_plane.start_apiserver()

    def pod_ready(short: str, ready: bool) -> None:
        kube.set_pod_ready(namespace, f"traefik-{short}", ready)
        kube.sync_endpoint_slices(namespace, "traefik")

    racing: list[threading.Thread] = []

    def race() -> None:
        thread = threading.Thread(target=direct_call, args=(f"{namespace}/traefik",))
        thread.start()
        racing.append(thread)

    faults: dict[str, Callable[[], None]] = {
        "DigitalOcean 503 on assign x2": lambda: world.do.fail_next("POST", ACTIONS, 503, times=2),
        "DigitalOcean 429 on assign": lambda: world.do.fail_next(
            "POST", ACTIONS, 429, retry_after=1
        ),
        "DigitalOcean 500 on list x3": lambda: world.do.fail_next(
            "GET", "/v2/reserved_ips", 500, times=3
        ),
        "assign answer lost after acting": lambda: world.do.lose_answer_next("POST", ACTIONS),
        "assign action errored (function 503)": lambda: world.do.fail_next_actions(1),
        "forwarder SIGKILL and restart": restart_forwarder,
        "apiserver restart": restart_apiserver,
        "two invocations racing": race,
    }
    troubles: dict[str, tuple[Callable[[str], None], Callable[[str], None]]] = {
        "NotReady": (
            lambda n: kube.set_node_ready(world.node(n), "False"),
            lambda n: kube.set_node_ready(world.node(n), "True"),
        ),
        "cordoned": (
            lambda n: kube.cordon(world.node(n)),
            lambda n: kube.cordon(world.node(n), unschedulable=False),
        ),
        "draining taint": (
            lambda n: kube.taint(world.node(n), GOING_AWAY, "NoSchedule", "1"),
            lambda n: untaint(kube, world.node(n), GOING_AWAY),
        ),
        "pod not ready": (lambda n: pod_ready(n, False), lambda n: pod_ready(n, True)),
    }
    converge: list[float] = []
    by_fault: dict[str, list[float]] = {}
    moves = flaps = wrong = 0
    for _ in range(ROUNDS):
        holder, _ = holder_state(world, kube, namespace)
        assert holder is not None
        round_began = max((r.seq for r in world.do.requests()), default=0)
        fault = rng.choice(sorted(faults))
        trouble = rng.choice(sorted(troubles))
        faults[fault]()
        began = time.monotonic()
        troubles[trouble][0](holder)

        def moved_and_listed(before: str = holder) -> bool:
            now, listed = holder_state(world, kube, namespace)
            return now not in (None, before) and listed

        wait_until(moved_and_listed, timeout=120, what=f"the IP off {holder} ({trouble}, {fault})")
        converge.append(time.monotonic() - began)
        by_fault.setdefault(fault, []).append(converge[-1])
        moves += 1
        for thread in racing:
            thread.join(60)
        racing.clear()
        world.do.clear_faults()
        world.do.fail_next_actions(0)
        new_holder, _ = holder_state(world, kube, namespace)
        # A wrong placement: any assign this round aimed at the troubled (unfit) droplet.
        unfit_droplet = world.droplets[holder].droplet_id
        wrong += sum(
            1
            for r in world.do.requests("POST", ACTIONS)
            if r.seq > round_began
            and isinstance(r.body, dict)
            and r.body.get("droplet_id") == unfit_droplet
        )
        troubles[trouble][1](holder)  # the old holder is fit again: nothing may move back
        assigns = world.do.count("POST", ACTIONS)
        assert direct_call() == 200
        flaps += world.do.count("POST", ACTIONS) - assigns
        assert holder_state(world, kube, namespace)[0] == new_holder

    # Idle: nothing changes for a minute (two forwarder resyncs); nothing may be written.
    version = kube.core.read_namespaced_service("traefik", namespace).metadata.resource_version
    world.do.clear_requests()
    time.sleep(60)  # an idle period is the thing measured, not a wait for a condition
    idle = world.do.requests()
    writes = [r for r in idle if r.method in ("POST", "PUT", "DELETE", "PATCH")]
    service_writes = (
        kube.core.read_namespaced_service("traefik", namespace).metadata.resource_version != version
    )
    p95 = (
        statistics.quantiles(converge, n=20, method="inclusive")[-1]
        if len(converge) >= 2
        else converge[0]
    )
    per_hour = 3600 / 60
    print(
        f"\nsystem soak: {ROUNDS} rounds, seed {SEED}\n"
        f"  moves {moves}, wrong placements {wrong}, flaps {flaps}\n"
        f"  time to converge after change+fault: median {statistics.median(converge):.2f} s,"
        f" p95 {p95:.2f} s, max {max(converge):.2f} s\n"
        f"  idle minute (resync every 30 s): {len(idle)} DigitalOcean calls"
        f" ({len(idle) * per_hour:.0f} per hour), {len(writes)} DigitalOcean writes,"
        f" Service written: {service_writes}\n"
        "  faults (rounds; slowest convergence):\n"
        + "\n".join(
            f"    {name}: {len(times)}; {max(times):.2f} s"
            for name, times in sorted(by_fault.items())
        )
    )
    assert wrong == 0 and flaps == 0
    assert writes == [] and not service_writes
