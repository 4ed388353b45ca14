"""The data-path bed: the real function and DigitalOcean imitation, real kube-proxy on every
node, and packets from a client through the provider's edge to the pods.

Where the machine cannot make namespaces or lacks nft/iptables/conntrack, these tests skip and
say why; under ``CI=true`` that reason fails them instead, so the data path is never silently
left out of a CI run.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from testbed.controlplane import ControlPlane
from testbed.dataplane import kube_proxy, namespaces
from testbed.dataplane.bed import DataPathBed
from testbed.do_imitation.server import DoImitation
from testbed.doks import DoksWorld, function_token
from testbed.function_harness import FunctionRunner
from testbed.kube import KubeBed

RUN_THROUGH_SUDO = "not root: test_under_sudo.py runs the data-path tests through sudo"
"""How a data-path test skips where it is run again as root (tests/ci_skips.py allows it)."""


def skip_or_fail(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"the data path cannot run here, and CI must not skip it: {reason}")
    pytest.skip(f"the data path cannot run here: {reason}")


@pytest.fixture(scope="session")
def kube_proxy_binary() -> Path:
    reason = namespaces.unavailable()
    if reason is not None and os.geteuid() != 0 and namespaces.can_sudo():
        # Not a gap, even in CI: test_under_sudo.py runs every one of them as root.
        pytest.skip(f"{RUN_THROUGH_SUDO} ({reason})")
    if reason is not None:
        skip_or_fail(reason)
    return kube_proxy.binary()


@pytest.fixture(params=kube_proxy.MODES)
def proxy_mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def world(control_plane: ControlPlane, kube: KubeBed, do_api: DoImitation) -> Iterator[DoksWorld]:
    doks = DoksWorld(control_plane, kube, do_api)
    try:
        yield doks
    finally:
        doks.remove_nodes()


@pytest.fixture
def runner(
    control_plane: ControlPlane,
    world: DoksWorld,
    kube: KubeBed,
    namespace: str,
    monkeypatch: pytest.MonkeyPatch,
) -> FunctionRunner:
    env = world.function_env(NAMESPACES=namespace)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", env["REQUESTS_CA_BUNDLE"])
    return FunctionRunner(world, env, function_token(control_plane, kube))


@pytest.fixture
def bed(
    world: DoksWorld, proxy_mode: str, kube_proxy_binary: Path, tmp_path: Path
) -> Iterator[DataPathBed]:
    """Nodes a, b and c, each a namespace with its kube-proxy in ``proxy_mode``."""
    made = DataPathBed(world, proxy_mode, tmp_path, kube_proxy_binary)
    try:
        for short in ("a", "b", "c"):
            made.add_node(short)
        yield made
    finally:
        made.close()
