"""Fixtures for the forwarder's integration tests: the shipped base applied once, an HTTPS
receiver per test, and forwarder processes that must stop cleanly on SIGTERM."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from kubernetes.client.exceptions import ApiException

from testbed.controlplane import ControlPlane
from testbed.do_imitation.server import DoImitation
from testbed.doks import DoksWorld
from testbed.forwarder_harness import (
    DEPLOY,
    FORWARDER_ACCOUNT,
    NAMESPACE,
    ForwarderProcess,
    Shipped,
    applied_deployment,
    image_layout,
    kubectl,
    write_overlay,
)
from testbed.kube import KubeBed
from testbed.processes import free_port
from testbed.receiver import Receiver
from testbed.tls import CertFiles, TestCA

StartForwarder = Callable[..., ForwarderProcess]
RELAY_RBAC = DEPLOY / "components" / "relay" / "rbac.yaml"


@pytest.fixture(scope="session")
def web_secret() -> str:
    return secrets.token_urlsafe(24)


@pytest.fixture(scope="session")
def receiver_tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[TestCA, CertFiles]:
    ca = TestCA(tmp_path_factory.mktemp("receiver-ca"))
    return ca, ca.issue("receiver", "127.0.0.1")


@pytest.fixture(scope="session")
def image_app(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return image_layout(tmp_path_factory.mktemp("image"))


@pytest.fixture(scope="session")
def shipped(
    control_plane: ControlPlane, tmp_path_factory: pytest.TempPathFactory, web_secret: str
) -> Shipped:
    """The kustomize base, applied as a user would (through an overlay with their values)."""
    overlay = write_overlay(
        tmp_path_factory.mktemp("overlay"),
        secret=web_secret,
        function_url="https://function.invalid/api/v1/web/fn/floating-ip/reconcile",
    )
    kubectl(control_plane, "apply", "-k", str(overlay))
    return applied_deployment(control_plane, NAMESPACE, tmp_path_factory.mktemp("pod-root"))


@pytest.fixture
def receiver(receiver_tls: tuple[TestCA, CertFiles], web_secret: str) -> Iterator[Receiver]:
    sink = Receiver(receiver_tls[1], web_secret).start()
    try:
        yield sink
    finally:
        sink.stop()


@pytest.fixture
def lease_name() -> str:
    return f"fwd-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def start_forwarder(
    shipped: Shipped,
    control_plane: ControlPlane,
    kube: KubeBed,
    receiver: Receiver,
    receiver_tls: tuple[TestCA, CertFiles],
    lease_name: str,
    tmp_path: Path,
) -> Iterator[StartForwarder]:
    """Start a forwarder replica configured by the shipped Deployment, run out of cluster
    with a token of the shipped ServiceAccount, as if scheduled on ``node`` (``within``
    wraps its command, to run it in a namespace of its own; ``code`` is another release's
    code, run instead of the shipped ConfigMaps); ``overrides`` are further variables."""
    started: list[ForwarderProcess] = []

    def start(
        namespaces: str = "",
        *,
        name: str = "replica-0",
        node: str = "",
        within: Callable[[list[str]], list[str]] | None = None,
        wait: bool = True,
        account: str = FORWARDER_ACCOUNT,
        code: Path | None = None,
        **overrides: str,
    ) -> ForwarderProcess:
        token = tmp_path / f"{name}.token"
        token.write_text(kube.mint_token(NAMESPACE, account))
        env = shipped.container_env(name, node) | {
            "KUBE_API_URL": control_plane.url,
            "KUBE_TOKEN_FILE": str(token),
            "KUBE_CA_FILE": str(control_plane.ca.ca_file),
            "FUNCTION_URL": receiver.url(),
            "FUNCTION_CA_FILE": str(receiver_tls[0].ca_file),
            "METRICS_PORT": str(free_port()),
            "NAMESPACES": namespaces,
            "LEASE_NAME": lease_name,
            "LOG_LEVEL": "debug",
            # The bed's pod IPs (10.244.x.y) exist only inside the node-death tests' own
            # network namespace: elsewhere nothing may be sent to them.
            "NODE_PROBES": "off",
        }
        if code is not None:
            env["PYTHONPATH"] = str(code)
        env.update(overrides)
        # The working directory is the pod's root: nothing is found through it by accident.
        argv = within(shipped.argv) if within is not None else shipped.argv
        root = shipped.root if code is None else code
        process = ForwarderProcess(root, env, tmp_path / f"{name}.log", argv=argv).start()
        started.append(process)
        if wait:
            process.wait_ready()
        return process

    try:
        yield start
    finally:
        codes = {p.log.name: (p.terminate(), p.expected_exit) for p in started if not p.crashed}
        for process in started:
            process.kill()
        unclean = {log: code for log, (code, expected) in codes.items() if code != expected}
        assert not unclean, f"forwarders did not exit cleanly on SIGTERM: {unclean}"


@pytest.fixture
def nodes(kube: KubeBed, namespace: str) -> Iterator[Callable[..., str]]:
    """``add(short, **kwargs)``: a Node named after the test's namespace, deleted at the end."""
    added: list[str] = []

    def add(short: str, droplet_id: int = 0, **kwargs: object) -> str:
        name = f"{short}-{namespace}"
        kube.add_node(name, droplet_id or 1000 + len(added), **kwargs)
        added.append(name)
        return name

    try:
        yield add
    finally:
        for name in added:
            try:
                kube.delete_node(name)
            except ApiException as error:
                if error.status != 404:
                    raise


@pytest.fixture
def world(control_plane: ControlPlane, kube: KubeBed, do_api: DoImitation) -> Iterator[DoksWorld]:
    """Two droplets and their Nodes (a and b) for the function the forwarder calls."""
    doks = DoksWorld(control_plane, kube, do_api)
    for name in ("a", "b"):
        doks.add_node(name)
    try:
        yield doks
    finally:
        doks.remove_nodes()


@pytest.fixture
def cluster_access() -> str:
    """``callback``; a test parametrises it to run in relay mode too."""
    return "callback"


@pytest.fixture
def relay_rbac(
    control_plane: ControlPlane, shipped: Shipped, cluster_access: str
) -> Iterator[None]:
    """In relay mode, the forwarder's writes as ``deploy/components/relay`` grants them."""
    if cluster_access != "relay":
        yield
        return
    kubectl(control_plane, "apply", "-f", str(RELAY_RBAC))
    try:
        yield
    finally:
        kubectl(control_plane, "delete", "-f", str(RELAY_RBAC))
