from __future__ import annotations

from collections.abc import Iterator

import pytest

from testbed.controlplane import ControlPlane
from testbed.do_imitation.server import DoImitation
from testbed.doks import DoksWorld, function_token
from testbed.function_harness import FunctionRunner
from testbed.kube import KubeBed


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
def runner(
    control_plane: ControlPlane,
    world: DoksWorld,
    kube: KubeBed,
    namespace: str,
    monkeypatch: pytest.MonkeyPatch,
) -> FunctionRunner:
    # Namespaces of earlier tests stay (a bare apiserver never finishes deleting them):
    # the function is told to manage this test's namespace only, as a user could.
    env = world.function_env(NAMESPACES=namespace)
    # pydo (through requests) trusts the imitation's CA the way any client would.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", env["REQUESTS_CA_BUNDLE"])
    return FunctionRunner(world, env, function_token(control_plane, kube))
