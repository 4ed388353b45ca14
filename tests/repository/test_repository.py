"""What a clone carries besides code: a license, one version, a CI workflow that runs
`make test` with its caches keyed as the build keys them."""

from __future__ import annotations

import re
import tomllib

import yaml

from testbed.layout import REPO

VERSION = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]


def test_the_license_is_apache_2() -> None:
    text = (REPO / "LICENSE").read_text()
    assert "Apache License\n                           Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text


def test_the_version_is_pyprojects_everywhere_it_is_written() -> None:
    """Image tags and the docs' build commands carry the one version of pyproject.toml."""
    assert re.fullmatch(r"\d+\.\d+\.\d+", VERSION)
    found: dict[str, set[str]] = {}
    tagged = re.compile(r"(?:newTag: |(?:forwarder|annotator):)(\d+\.\d+\.\d+)")
    for pattern in ("**/*.yaml", "**/*Dockerfile", "**/*.md"):
        for path in REPO.glob(pattern):
            if {"node_modules", ".venv"} & set(path.parts) or path.name == "CHANGELOG.md":
                continue
            for match in tagged.finditer(path.read_text()):
                found.setdefault(match.group(1), set()).add(str(path.relative_to(REPO)))
    assert set(found) == {VERSION}, found
    assert len(found[VERSION]) >= 5  # the shipped manifests, the Dockerfiles, docs/


def test_the_changelog_names_the_version_as_its_latest_release() -> None:
    releases = re.findall(r"^## \[(\d+\.\d+\.\d+)\]", (REPO / "CHANGELOG.md").read_text(), re.M)
    assert releases and releases[0] == VERSION


def test_ci_runs_make_test_on_pushes_and_pull_requests_with_the_build_caches() -> None:
    workflow = yaml.safe_load((REPO / ".github/workflows/ci.yml").read_text())
    triggers = workflow[True]  # YAML 1.1 reads the key `on` as true
    assert {"push", "pull_request"} <= set(triggers)
    steps = [step for job in workflow["jobs"].values() for step in job["steps"]]
    assert any(step.get("run", "").startswith("make test") for step in steps)
    [go] = [s for s in steps if s.get("uses", "").startswith("actions/setup-go")]
    go_sums = go["with"]["cache-dependency-path"].split()
    assert go_sums == [f"testbed/{tool}/go.sum" for tool in ("controlplane", "helm", "dataplane")]
    caches = {
        s["with"]["path"]: s["with"]["key"]
        for s in steps
        if s.get("uses", "").startswith("actions/cache")
    }
    # Each key covers every file its build.sh hashes into its own cache folder's name.
    for tool in ("controlplane", "helm", "dataplane"):
        key = caches[f"~/.cache/doks-floating-ip/{tool}"]
        build = (REPO / f"testbed/{tool}/build.sh").read_text()
        hashed = re.search(r'key="\$\(cat (.*?) \| sha256sum', build)
        assert hashed is not None
        for name in hashed.group(1).split():
            assert name.replace('"$here"/', "").replace("$here/", "").strip('"') in key.replace(
                f"testbed/{tool}/", ""
            ), name
