from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from testbed.controlplane import ControlPlane
from testbed.do_imitation.server import DoImitation
from testbed.doks import DoksWorld, function_token
from testbed.function_harness import FunctionRunner
from testbed.kube import KubeBed
from testbed.relay_courier import RelayCourier


@pytest.fixture
def world(control_plane: ControlPlane, kube: KubeBed, do_api: DoImitation) -> Iterator[DoksWorld]:
    doks = DoksWorld(control_plane, kube, do_api)
    for name in ("a", "b", "c"):
        doks.add_node(name)
    try:
        yield doks
    finally:
        doks.remove_nodes()


@pytest.fixture
def cluster_access() -> str:
    """``callback``; a module parametrises it to run its tests in relay mode too."""
    return "callback"


@pytest.fixture
def runner(
    control_plane: ControlPlane,
    world: DoksWorld,
    kube: KubeBed,
    namespace: str,
    monkeypatch: pytest.MonkeyPatch,
    cluster_access: str,
    tmp_path: Path,
) -> FunctionRunner:
    # Namespaces of earlier tests stay (a bare apiserver never finishes deleting them):
    # the function is told to manage this test's namespace only, as a user could.
    env = world.function_env(NAMESPACES=namespace)
    # pydo (through requests) trusts the imitation's CA the way any client would.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", env["REQUESTS_CA_BUNDLE"])
    token = function_token(control_plane, kube)
    if cluster_access == "relay":
        # The function cannot reach the apiserver: it is given no URL, CA or token for it.
        env = {k: v for k, v in env.items() if not k.startswith("KUBE_")}
        env["CLUSTER_ACCESS"] = "relay"
        token_file = tmp_path / "relay.token"
        token_file.write_text(token)
        courier = RelayCourier(control_plane, token_file, namespace)
        return FunctionRunner(world, env, token, courier)
    return FunctionRunner(world, env, token)
