"""pytest fixtures: one control plane per test session, a fresh namespace per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from testbed.controlplane import ControlPlane, binaries
from testbed.kube import KubeBed


@pytest.fixture(scope="session")
def control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    plane = ControlPlane(tmp_path_factory.mktemp("controlplane"), binaries())
    plane.start()
    try:
        yield plane
    finally:
        plane.stop()


@pytest.fixture(scope="session")
def kube(control_plane: ControlPlane) -> KubeBed:
    return KubeBed(control_plane.admin_client())


@pytest.fixture
def namespace(kube: KubeBed) -> Iterator[str]:
    """A fresh namespace (a bare apiserver never finishes deleting one, so none is reused).

    Its Services are deleted afterwards: a bare apiserver would keep them for the rest of the
    session, and later tests' forwarders and functions would see them (many Services naming
    the same test IP turn one change into a whole-cluster resync).
    """
    name = kube.create_namespace()
    yield name
    kube.delete_services(name)
