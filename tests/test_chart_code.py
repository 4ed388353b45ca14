"""The code the manifests and the chart ship as ConfigMaps: the same as the sources, and
importable on an official Python image (standard library and the shared contract only)."""

from __future__ import annotations

import ast
import sys

from testbed import chart_code


def test_the_shipped_copy_is_the_source() -> None:
    assert chart_code.stale() == [], "run `make chart-code`"


def test_the_shipped_code_needs_only_the_standard_library_and_the_contract() -> None:
    packages = {package for _, package in chart_code.SOURCES.values()}
    allowed = set(sys.stdlib_module_names) | packages
    for path in chart_code.CODE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom) and node.level == 0
                else []
            )
            for name in names:
                assert name.split(".")[0] in allowed, f"{path.name} imports {name}"
                if name.startswith("floating_ip."):
                    assert name == "floating_ip.contract", f"{path.name} imports {name}"
