"""The import trace's bookkeeping (testbed/deployable/distributions.py) on a hand-made
site-packages: what counts as imported, unused, stray and missing."""

from __future__ import annotations

from pathlib import Path

from testbed.deployable import distributions


def install(site: Path, name: str, version: str, files: list[str]) -> None:
    info = site / f"{name}-{version}.dist-info"
    info.mkdir(parents=True)
    for file in files:
        (site / file).parent.mkdir(parents=True, exist_ok=True)
        (site / file).write_text("")
    (info / "RECORD").write_text("".join(f"{f},sha256=x,0\n" for f in files))


def test_usage_sorts_shipped_distributions_by_what_the_trace_imported(tmp_path: Path) -> None:
    site = tmp_path / "site-packages"
    install(site, "PyYAML", "6.0", ["yaml/__init__.py", "yaml/error.py"])
    install(site, "aiohttp", "3.0", ["aiohttp/__init__.py"])
    install(site, "requests_oauthlib", "2.0", ["requests_oauthlib/__init__.py"])
    (site / "loose.py").write_text("")
    trace = [
        str(site / "yaml" / "error.py"),
        str(site / "requests_oauthlib" / "__init__.py"),
        str(site / "loose.py"),
        "/usr/lib/python3.11/json/__init__.py",  # the standard library is not counted
    ]
    used = distributions.usage(site, trace)
    assert used.imported == {"pyyaml", "requests-oauthlib"}
    assert used.unused == {"aiohttp"}
    assert used.stray == {"loose.py"}


def test_missing_names_only_what_this_environment_could_have_shipped() -> None:
    found = distributions.missing(
        ["kubernetes.client", "json", "surely_no_such_module_anywhere", "yaml"],
        shipped_names=["PyYAML"],
    )
    assert found == {"kubernetes.client": "kubernetes"}
