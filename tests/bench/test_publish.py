"""Publishing a bench run into the documentation's performance data: the parts that ran get
the rows ``make bench`` printed and the run's provenance; every other table stays as it was.
From a small committed results file; no bench runs."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from bench import publish, report
from bench.__main__ import command, parse

SAMPLE = Path(__file__).with_name("results-sample.json")


def sample() -> dict[str, Any]:
    results: dict[str, Any] = json.loads(SAMPLE.read_text())
    return results


def committed() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(publish.DATA.read_text())
    return data


def by_id(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {table["id"]: table for table in data["tables"]}


RUN = {
    "command": 'make bench BENCH_ARGS="--only forwarder,zip,data-path --forwarder-scale 10"',
    "date": "2026-12-07",
    "commit": "abc1234",
    "machine": "2 cores (Example CPU @ 2.0GHz), 7.8 GiB, load average 1.5 at the start",
}


def test_the_parts_that_ran_get_the_printed_rows_and_the_runs_provenance() -> None:
    before = committed()
    after = by_id(publish.publish(copy.deepcopy(before), sample()))
    zipped = after["zip"]
    assert zipped["columns"] == ["figure", "value"]
    [run] = zipped["runs"]
    assert {k: v for k, v in run.items() if k != "rows"} == RUN
    assert run["rows"][0] == ["function zip size, new", "19.1 MB"]
    assert ["new / old: zip size, cold start", "0.52 x, 0.53 x"] in run["rows"]
    # The same rows as make bench's main table, without its part column.
    printed = [list(row[1:]) for row in report.main_rows(sample()["parts"]) if row[0] == "zip"]
    assert run["rows"] == printed
    [path_run] = after["data-path"]["runs"]
    assert after["data-path"]["columns"] == list(report.part_headers("data-path"))
    assert path_run["rows"] == [
        [
            "nftables",
            "2 s",
            "drained",
            "10",
            "0.01 / 0.05 s",
            "0.01 / 0.05 s",
            "0 / 0 (1 / 1)",
            "reset 9, timeout 1",
        ]
    ]


def test_every_other_table_is_left_as_it_was() -> None:
    before = committed()
    after = publish.publish(copy.deepcopy(before), sample())
    replaced = {"zip", "data-path", "forwarder-scale-10"}
    assert [t["id"] for t in after["tables"]] == [t["id"] for t in before["tables"]]
    for old, new in zip(before["tables"], after["tables"], strict=True):
        if old["id"] not in replaced:
            assert new == old, old["id"]
    assert by_id(after)["forwarder"] == by_id(before)["forwarder"], "scale 1 is another table"


def test_the_forwarder_at_another_scale_and_a_relay_run_are_tables_of_their_own() -> None:
    forwarder = sample()["parts"]["forwarder"]
    assert publish.table_id("forwarder", forwarder) == "forwarder-scale-10"
    assert publish.table_id("forwarder", {**forwarder, "scale": 1}) == "forwarder"
    assert publish.table_id("node-death", {"cluster_access": "relay"}) == "node-death-relay"
    assert publish.table_id("node-death", {"cluster_access": "callback"}) == "node-death"
    assert publish.part_of("forwarder-scale-10") == "forwarder"
    assert publish.part_of("failover-relay") == "failover"
    assert publish.part_of("zip-scale-10") is None
    assert publish.part_of("node-death-peers") is None


def test_a_part_without_a_table_yet_is_added_at_the_end() -> None:
    data = {"tables": [t for t in committed()["tables"] if t["id"] != "zip"]}
    after = publish.publish(data, sample())
    assert after["tables"][-1]["id"] == "zip"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"command": None}, "names no command"),
        ({"schema": 99}, "schema 99"),
        ({"parts": {}}, "no part"),
    ],
)
def test_results_that_cannot_say_what_measured_them_are_refused(
    change: dict[str, Any], message: str
) -> None:
    with pytest.raises(publish.NotPublishable, match=message):
        publish.publish(committed(), {**sample(), **change})


def test_the_command_line_rewrites_the_data_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "performance-data.json"
    data.write_text(publish.DATA.read_text())
    assert publish.main(["--results", str(SAMPLE), "--data", str(data)]) == 0
    written = by_id(json.loads(data.read_text()))
    assert written["zip"]["runs"][0]["date"] == "2026-12-07"
    assert "zip" in capsys.readouterr().out
    missing = tmp_path / "old-results.json"
    missing.write_text(json.dumps({**sample(), "command": None}))
    assert publish.main(["--results", str(missing), "--data", str(data)]) == 2
    assert "names no command" in capsys.readouterr().err
    assert publish.main(["--results", str(tmp_path / "none.json"), "--data", str(data)]) == 2
    assert "no results (make bench writes them)" in capsys.readouterr().err


def test_the_recorded_command_names_what_changes_the_figures_only() -> None:
    assert command(parse([])) == "make bench"
    out = ["--out", "results-elsewhere", "--keep"]
    assert command(parse(["--only", "zip,failover", "--moves", "16", *out])) == (
        'make bench BENCH_ARGS="--only failover,zip --moves 16"'
    )
    assert command(parse(["--forwarder-scale", "10", "--latency", "0,2.5"])) == (
        'make bench BENCH_ARGS="--latency 0,2.5 --forwarder-scale 10"'
    )
