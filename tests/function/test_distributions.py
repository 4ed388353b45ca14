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
    site = tmp_path / "zip" / "virtualenv" / "lib" / "python3.11" / "site-packages"
    install(site, "PyYAML", "6.0", ["yaml/__init__.py", "yaml/error.py"])
    install(site, "aiohttp", "3.0", ["aiohttp/__init__.py"])
    install(site, "requests_oauthlib", "2.0", ["requests_oauthlib/__init__.py"])
    install(site, "certifi", "2026.1", ["certifi/__init__.py"])
    (site / "loose.py").write_text("")
    stdlib = tmp_path / "python" / "lib" / "python3.11"
    trace = {
        "yaml.error": str(site / "yaml" / "error.py"),
        "requests_oauthlib": str(site / "requests_oauthlib" / "__init__.py"),
        "loose": str(site / "loose.py"),
        "floating_ip.handler": str(tmp_path / "zip" / "floating_ip" / "handler.py"),  # its own
        "json": str(stdlib / "json" / "__init__.py"),  # the standard library is not counted
        # Imported from the interpreter's own site-packages before the function ran: the zip
        # ships it, so it counts as imported; what the zip does not ship is lacking.
        "certifi": str(stdlib / "site-packages" / "certifi" / "__init__.py"),
        "six": str(stdlib / "site-packages" / "six.py"),
    }
    used = distributions.usage(site, trace, stdlib)
    assert used.imported == {"pyyaml", "requests-oauthlib", "certifi"}
    assert used.unused == {"aiohttp"}
    assert used.stray == {"loose.py"}
    assert used.lacking == {"six": str(stdlib / "site-packages" / "six.py")}


def test_missing_names_only_what_this_environment_could_have_shipped() -> None:
    found = distributions.missing(
        ["kubernetes.client", "json", "surely_no_such_module_anywhere", "yaml"],
        shipped_names=["PyYAML"],
    )
    assert found == {"kubernetes.client": "kubernetes"}
