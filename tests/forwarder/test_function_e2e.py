"""The forwarder and the REAL function together: the forwarder with a token of its shipped
ServiceAccount, the function with none of its own (the forwarder mints one of the shipped
function identity and sends it with each event). The function runs in functions-framework
(served over HTTPS by gunicorn, as the framework itself serves) against the DigitalOcean
imitation and the real control plane.
A pod moving nodes must end with the reserved IP on the new node and externalIPs updated."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from floating_ip.config import SETTINGS
from floating_ip_common import contract
from testbed.doks import DoksWorld
from testbed.forwarder_harness import Shipped
from testbed.kube import KubeBed, Port
from testbed.layout import FUNCTION_PYTHONPATH, REPO
from testbed.processes import free_port, start, stop, wait_until
from testbed.tls import CertFiles, TestCA
from tests.forwarder.conftest import StartForwarder

IP = "192.0.2.10"
PORTS = [Port(80), Port(443), Port(443, "UDP", name="http3")]


@pytest.fixture
def function_log(tmp_path: Path) -> Path:
    """Where ``function_url``'s function logs (``serve_function`` writes it)."""
    return tmp_path / "function.log"


@pytest.fixture
def function_url(
    world: DoksWorld,
    kube: KubeBed,
    shipped: Shipped,
    namespace: str,
    receiver_tls: tuple[TestCA, CertFiles],
    web_secret: str,
    tmp_path: Path,
    cluster_access: str,
    relay_rbac: None,
) -> Iterator[str]:
    """The function behind HTTPS on a loopback port, as the shipped identity (relay mode:
    with no Kubernetes URL, CA or token at all)."""
    with serve_function(
        world, kube, namespace, receiver_tls, web_secret, tmp_path, cluster_access
    ) as (url, log):
        yield url
        # The function reports refusals as "kubernetes <call>: 403 <reason>".
        refused = re.search(r": 403 ", log.read_text())
        assert refused is None, "the function needed more than its shipped RBAC"


@contextlib.contextmanager
def serve_function(
    world: DoksWorld,
    kube: KubeBed,
    namespace: str,
    receiver_tls: tuple[TestCA, CertFiles],
    web_secret: str,
    tmp_path: Path,
    cluster_access: str = "callback",
    *,
    code: Path = REPO,
    pythonpath: str = FUNCTION_PYTHONPATH,
    **overrides: str,
) -> Iterator[tuple[str, Path]]:
    """functions-framework under gunicorn over HTTPS; its URL and its log file. ``code`` and
    ``pythonpath``: where the function's code is (another release's); ``overrides``: further
    settings."""
    # No cluster token: the forwarder mints one of the shipped function identity per call.
    settings = world.function_env(NAMESPACES=namespace, WEB_SECRET=web_secret, **overrides)
    if cluster_access == "relay":
        settings = {k: v for k, v in settings.items() if not k.startswith("KUBE_")}
        settings["CLUSTER_ACCESS"] = "relay"
    inherited = {k: v for k, v in os.environ.items() if k not in SETTINGS}
    env = {**inherited, **settings, "PYTHONPATH": pythonpath}
    cert = receiver_tls[0].issue("function", "127.0.0.1")
    port = free_port()
    app = (
        "functions_framework:create_app("
        "target='reconcile', source='lib/floating_ip/entry_functions_framework.py')"
    )
    argv = [
        str(Path(sys.executable).parent / "gunicorn"),
        f"--bind=127.0.0.1:{port}",
        f"--certfile={cert.cert}",
        f"--keyfile={cert.key}",
        "--workers=1",
        "--threads=4",
        "--timeout=120",
        app,
    ]
    log = tmp_path / "function.log"
    process = start(argv, log, env=env, cwd=code)
    try:
        wait_until(
            lambda: _listening(port),
            timeout=30,
            what="the function listening",
            process=process,
            log=log,
        )
        yield f"https://127.0.0.1:{port}/", log
    finally:
        stop(process)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # gunicorn's workers, too


def _listening(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=1):
        return True


def placed(world: DoksWorld, kube: KubeBed, namespace: str, short: str) -> bool:
    service = kube.core.read_namespaced_service("traefik", namespace)
    notes = service.metadata.annotations or {}
    return (
        world.holder_of(IP) == short
        and service.spec.external_ips == [world.droplets[short].anchor_ip]
        and notes.get(contract.HOLDER_NODE) == world.node(short)
    )


JWT = re.compile(r"eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}")
"""A ServiceAccount token (a JWT: its header is base64 of '{"...')."""


def assert_no_token_in(*texts: str) -> None:
    for text in texts:
        assert JWT.search(text) is None, "a token was logged"


@pytest.mark.parametrize("cluster_access", ["callback", "relay"])
def test_a_pod_moving_nodes_moves_the_ip_and_the_external_ips(
    cluster_access: str,
    start_forwarder: StartForwarder,
    function_url: str,
    function_log: Path,
    world: DoksWorld,
    kube: KubeBed,
    namespace: str,
) -> None:
    world.do.add_reserved_ip(IP, region=world.region)
    kube.create_service(
        namespace,
        "traefik",
        PORTS,
        annotations={contract.ADDRESS: IP},
    )
    kube.create_pod(namespace, "traefik-1", world.node("a"), {"app": "traefik"})
    kube.sync_endpoint_slices(namespace, "traefik")
    forwarder = start_forwarder(
        namespace,
        FUNCTION_URL=function_url,
        CLUSTER_ID=world.cluster_id,
        CLUSTER_ACCESS=cluster_access,
    )
    wait_until(lambda: placed(world, kube, namespace, "a"), timeout=60, what="the IP on node a")

    moved = time.monotonic()
    kube.delete_pod(namespace, "traefik-1")
    kube.create_pod(namespace, "traefik-2", world.node("b"), {"app": "traefik"})
    kube.sync_endpoint_slices(namespace, "traefik")
    wait_until(
        lambda: placed(world, kube, namespace, "b"),
        timeout=60,
        what="the IP and externalIPs following the pod to node b",
    )
    took = time.monotonic() - moved

    # The function writes before it answers, so the delivery that moved the IP is counted
    # a moment after the move is visible; and its own writes reach the watch after that.
    wait_until(
        lambda: forwarder.metric("events_sent", type="service") >= 1,
        timeout=30,
        what="the Service's event counted as delivered",
    )
    wait_until(
        lambda: forwarder.metric("watch_events", kind="service") >= 2,
        timeout=30,
        what="the function's own writes to the Service seen by the watch",
    )
    metrics = forwarder.metrics()
    failures = sum(v for k, v in metrics.items() if "send_failures_total" in k)
    assert failures == 0
    # The function's own writes to the Service (status annotations, externalIPs) were judged
    # no change.
    assert forwarder.metric("changes", kind="service") == 0
    # One short-lived token served every call (cached; none in relay mode), and no log line
    # holds a token.
    assert forwarder.metric("function_token_mints") == (cluster_access == "callback")
    assert_no_token_in(forwarder.log.read_text(), function_log.read_text())
    print(f"pod moved: IP and externalIPs followed in {took:.1f}s")
