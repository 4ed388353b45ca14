"""The README a newcomer reads and the documentation site it leads to: short, linked,
generated where the code or the measurements are the source, and built strictly."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from bench import publish, report
from floating_ip.core.model import Reason
from floating_ip_annotator import cli as annotator_cli
from floating_ip_annotator import metadata as annotator_metadata
from floating_ip_annotator import retry as annotator_retry
from floating_ip_common import contract
from floating_ip_common.kube_access import ACCESS_VARIABLES
from floating_ip_forwarder.app import settings as forwarder_config
from floating_ip_forwarder.dead_nodes import node_events
from testbed.layout import REPO
from tools import docs_site, docs_tables

README = (REPO / "README.md").read_text()
DOCS = REPO / "docs"


def test_the_readme_is_read_in_five_minutes_and_keeps_its_two_commands() -> None:
    assert len(README.splitlines()) <= 200
    assert "make demo" in README
    assert "make test" in README
    assert "kubectl apply -k deploy/example" in README
    assert "helm install floating-ip charts/doks-floating-ip" in README


def test_every_link_of_the_readme_into_docs_names_a_page() -> None:
    targets = re.findall(r"\]\((docs/[^)#]*)", README)
    assert targets
    for target in targets:
        assert (REPO / target).is_file(), target


def test_the_home_page_is_the_readme_with_links_between_pages() -> None:
    text = "[Settings](docs/settings.md#the-function), [x](https://a.example), [L](LICENSE)"
    assert docs_site.readme_as_home_page(text) == (
        "[Settings](settings.md#the-function), [x](https://a.example), `L`"
    )
    assert docs_site.readme_as_home_page("[`tools`](tools/)") == "`tools`"


def test_a_page_left_out_of_nav_is_listed_after_it() -> None:
    nav = [{"Home": "index.md"}, {"Using it": [{"Settings": "settings.md"}]}]
    pages = ["index.md", "settings.md", "proven.md", "a.md"]
    assert docs_site.pages_left_out(nav, pages) == ["a.md", "proven.md"]


def test_a_marker_without_a_block_fails_the_build() -> None:
    assert docs_site.fill_in("a\n<!-- generated: x -->\nb", {"x": "X\n"}, "p.md") == "a\nX\nb"
    with pytest.raises(ValueError, match=r"p\.md: no generated block named 'y'"):
        docs_site.fill_in("<!-- generated: y -->", {}, "p.md")


def test_every_marker_has_a_block_and_every_block_a_page() -> None:
    blocks = docs_tables.generated()
    used = {
        name for page in DOCS.glob("*.md") for name in docs_site.MARKER.findall(page.read_text())
    }
    assert used == set(blocks)


def test_every_annotation_and_event_reason_is_documented() -> None:
    page = (DOCS / "annotations.md").read_text()
    for key in contract.INPUT_ANNOTATIONS:
        assert f"### `{key}`" in page, key
    for reason in Reason:
        assert f"| `{reason.value}` |" in page, reason


def test_the_forwarders_event_on_a_node_is_documented_with_how_to_find_it() -> None:
    assert f"| `{node_events.REASON}` |" in (DOCS / "annotations.md").read_text()
    page = (DOCS / "dead-nodes.md").read_text()
    assert f"-n {node_events.NAMESPACE} --field-selector" in page
    assert f"reason={node_events.REASON}" in page


def test_the_settings_docs_name_every_variable_the_forwarder_reads() -> None:
    """The generated table plus the page's prose name every variable ``from_env`` reads."""
    read = {name for name, _ in docs_tables._calls(forwarder_config, forwarder_config.from_env)}
    read |= set(ACCESS_VARIABLES)  # read through floating_ip_common's locate
    documented = {s.variable for s in docs_tables.forwarder_settings()}
    page = (DOCS / "settings.md").read_text()
    for name in (
        read - documented - {"HOSTNAME", "KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT"}
    ):
        assert f"`{name}`" in page, name


@pytest.mark.parametrize(
    ("seconds", "text"), [(300.0, "5m"), (0.5, "500ms"), (2.0, "2s"), (3600.0, "1h"), (0, "0s")]
)
def test_durations_are_shown_as_the_parser_reads_them(seconds: float, text: str) -> None:
    assert docs_tables.duration(seconds) == text
    assert forwarder_config.parse_duration(text) == seconds


def test_the_settings_table_shows_the_code_defaults() -> None:
    rows = {s.variable: s for s in docs_tables.forwarder_settings()}
    assert rows["RESYNC_PERIOD"].default == "`5m`"
    assert rows["RESYNC_PERIOD"].valid == "a duration, 10s to 7 days"
    assert rows["RATE_LIMIT"].valid == "1 to 300"
    assert rows["NODE_PROBES"].default == "`on`"
    assert rows["FUNCTION_URL"].default == "required"


def test_every_performance_table_is_a_bench_parts_with_its_run() -> None:
    """``python -m bench.publish`` writes the tables: each is a part's (a hand-made table has
    no part), with that part's columns and, for each run, what measured it."""
    data = json.loads(publish.DATA.read_text())
    assert set(data) == {"tables"}
    for table in data["tables"]:
        part = publish.part_of(table["id"])
        assert part is not None, f"{table['id']}: no bench part writes this table"
        assert table["columns"] == list(report.part_headers(part)), table["id"]
        assert table["runs"], table["id"]
        for run in table["runs"]:
            assert set(run) == {"command", "date", "commit", "machine", "rows"}, table["id"]
            assert run["command"].startswith("make bench"), table["id"]
            assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", run["date"]), table["id"]
            assert run["machine"] and run["rows"], table["id"]
            assert all(len(row) == len(table["columns"]) for row in run["rows"]), table["id"]


def test_a_table_of_several_runs_numbers_them() -> None:
    runs: list[dict[str, Any]] = [
        {"command": "make bench", "date": "2026-01-02", "commit": "abc1234", "machine": "m1"},
        {"command": "make bench", "date": "2026-01-03", "commit": None, "machine": "m2"},
    ]
    one = {"id": "zip", "columns": ["figure", "value"], "runs": [{**runs[0], "rows": [["a", "1"]]}]}
    two = {**one, "runs": [{**runs[0], "rows": [["a", "1"]]}, {**runs[1], "rows": [["b", "2"]]}]}
    single = docs_tables.performance_tables({"tables": [one]})["zip"]
    assert single.splitlines()[2] == "| a | 1 |"
    assert single.endswith("Measured by `make bench`, 2026-01-02 at commit abc1234, on m1.\n")
    several = docs_tables.performance_tables({"tables": [two]})["zip"]
    assert several.splitlines()[:4] == [
        "| run | figure | value |",
        "|---|---|---|",
        "| 1 | a | 1 |",
        "| 2 | b | 2 |",
    ]
    assert "- run 2: `make bench`, 2026-01-03, on m2" in several


@pytest.mark.slow
def test_the_site_builds_strictly(tmp_path: Path) -> None:
    """What ``make docs`` runs: a broken link, anchor or generated block fails it."""
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
        cwd=REPO,
        env={"PATH": "/usr/bin:/bin", "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "index.html").is_file()
    assert "RESYNC_PERIOD" in (tmp_path / "settings.html").read_text()


def test_the_annotators_documented_defaults_are_its_parsers() -> None:
    """The annotator's page keeps its table by hand (flags and variables mixed); each default
    it shows is checked against the code that defines it."""
    rows = {}
    for line in (DOCS / "annotator.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if line.startswith("| `--") and len(cells) == 3:
            rows[cells[0].split("`")[1]] = cells[1].strip("`")
    defaults = {a.dest: a.default for a in annotator_cli.parser()._actions}
    for flag in ("--timeout", "--request-timeout", "--attempts", "--token-file", "--ca-file"):
        default = defaults[flag.removeprefix("--").replace("-", "_")]
        shown = f"{default:g}" if isinstance(default, float) else str(default)
        assert rows[flag] == shown, flag
    assert rows["--metadata-url"] == annotator_metadata.DEFAULT_URL


def test_the_annotators_documented_backoff_is_its_retry_policy() -> None:
    page = (DOCS / "annotator.md").read_text()
    [(first, cap)] = re.findall(r"backoff ([0-9.]+) s, doubling up to ([0-9.]+) s", page)
    policy = annotator_retry.RetryPolicy()
    assert (float(first), float(cap)) == (policy.first_delay, policy.max_delay)


def test_the_mutation_page_names_every_target_with_its_goal() -> None:
    """The targets are written once, in pyproject.toml; the page that lists them is checked."""
    targets = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["mutation"]["targets"]
    page = " ".join((DOCS / "reliability-mutation.md").read_text().split())
    for path, goal in targets.items():
        shown = path.removeprefix("in-cluster/floating_ip_forwarder/")
        assert f"`{shown}" in page, path
        assert f"goal {goal} %" in page, path
