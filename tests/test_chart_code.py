"""The code the manifests and the chart ship as ConfigMaps: the same as the sources, and
importable on an official Python image (standard library and the shared modules only)."""

from __future__ import annotations

import re
import sys
import tomllib

from testbed import chart_code
from testbed.controlplane import REPO
from testbed.python_imports import absolute_imports


def test_the_shipped_copy_is_the_source() -> None:
    assert chart_code.stale() == [], "run `make chart-code`"


def test_the_shipped_code_needs_only_the_standard_library_and_the_shared_modules() -> None:
    packages = {package for _, package in chart_code.SOURCES.values()}
    allowed = set(sys.stdlib_module_names) | packages
    for path in chart_code.CODE.rglob("*.py"):
        for name in absolute_imports(path):
            assert name.split(".")[0] in allowed, f"{path.name} imports {name}"
            if name.startswith("floating_ip."):
                assert name[len("floating_ip.") :] + ".py" in chart_code.SHARED_FILES, (
                    f"{path.name} imports {name}"
                )


def test_one_python_image_by_one_digest_everywhere() -> None:
    """The manifests, the chart and both Dockerfiles run the same pinned python:3.11-slim."""
    pinned = re.compile(r"python:3\.11-slim@sha256:[0-9a-f]{64}")
    places = [
        REPO / "deploy" / "base" / "event-forwarder.yaml",
        REPO / "deploy" / "base" / "node-annotator.yaml",
        REPO / "charts" / "doks-floating-ip" / "values.yaml",
        REPO / "event-forwarder" / "Dockerfile",
        REPO / "annotator" / "Dockerfile",
    ]
    found = {path.name: set(pinned.findall(path.read_text())) for path in places}
    assert all(len(digests) == 1 for digests in found.values()), found
    assert len(set().union(*found.values())) == 1, found


def test_the_chart_carries_the_one_version() -> None:
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    chart = (REPO / "charts" / "doks-floating-ip" / "Chart.yaml").read_text()
    assert f"\nversion: {version}\n" in chart
    assert f'\nappVersion: "{version}"\n' in chart
