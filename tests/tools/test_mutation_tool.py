"""The parts of tools/mutation.py that decide what `make mutation` reports."""

from __future__ import annotations

from pathlib import Path

import pytest

from tools import mutation

DIFF = """\
--- floating_ip/core/holders.py
+++ floating_ip/core/holders.py
@@ -3,6 +3,6 @@
     for service in claim.services:
-        if  len(recorded) == 1:
+        if len(recorded) >= 1:
             return recorded[0]"""


def test_a_mutants_change_is_quoted_on_one_line() -> None:
    assert mutation.changed_lines(DIFF) == "- if len(recorded) == 1: => + if len(recorded) >= 1:"


@pytest.mark.parametrize(
    ("repo_path", "staged"),
    [
        ("lib/floating_ip/core", "floating_ip/core"),
        (
            "in-cluster/floating_ip_forwarder/forwarding/index.py",
            "floating_ip_forwarder/forwarding/index.py",
        ),
    ],
)
def test_a_target_is_staged_under_its_package(repo_path: str, staged: str) -> None:
    assert mutation.staged_path(repo_path, ("lib", "in-cluster")) == staged


def test_a_target_outside_the_source_roots_is_refused() -> None:
    with pytest.raises(SystemExit, match=r"tools/x\.py is under none of the import roots"):
        mutation.staged_path("tools/x.py", ("lib", "in-cluster"))


def test_the_equivalent_file_reads_name_change_and_reason(tmp_path: Path) -> None:
    listed = tmp_path / "equivalent.txt"
    listed.write_text(
        "# a comment\n\na.b.x_f__mutmut_1 :: - x == 1 => + x >= 1 :: x is 0 or 1 here\n"
    )
    [entry] = mutation.read_equivalent(listed).values()
    assert (entry.name, entry.change, entry.reason, entry.line) == (
        "a.b.x_f__mutmut_1",
        "- x == 1 => + x >= 1",
        "x is 0 or 1 here",
        3,
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("a.b.x_f__mutmut_1 :: - x => + y\n", "expected 'NAME :: ", id="no-reason"),
        pytest.param(
            "a :: - x => + y :: why\na :: - x => + y :: why\n", "a is listed twice", id="twice"
        ),
    ],
)
def test_a_malformed_equivalent_file_is_refused(tmp_path: Path, text: str, message: str) -> None:
    listed = tmp_path / "equivalent.txt"
    listed.write_text(text)
    with pytest.raises(SystemExit, match=message):
        mutation.read_equivalent(listed)


def test_the_committed_equivalent_file_reads_and_gives_a_reason_for_each() -> None:
    entries = mutation.read_equivalent()
    assert entries, "no entry: then the file and this test can go"
    assert all(len(entry.reason) >= 20 for entry in entries.values())


def test_the_configured_targets_exist() -> None:
    settings = mutation.read_settings(["lib", "in-cluster", "."])
    for target in settings.targets:
        assert (mutation.ROOT / target.path).exists(), target.path
    for tests in settings.tests:
        assert (mutation.ROOT / tests).exists(), tests


@pytest.mark.parametrize(
    ("only", "partial"),
    [
        ([], False),
        (["lib/floating_ip/core"], False),
        (["lib/floating_ip/core/plan.py"], True),
    ],
)
def test_a_run_of_some_modules_of_a_target_is_marked_partial(
    only: list[str], partial: bool
) -> None:
    settings = mutation.read_settings(["lib", "in-cluster", "."])
    core = next(
        p for p in mutation.chosen(settings, only) if p.target.path == "lib/floating_ip/core"
    )
    assert core.partial is partial


def test_a_partial_target_is_shown_as_a_part_and_not_judged_by_its_goal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(mutation, "STAGE", tmp_path)  # no run: no mutant, a score of 100 %
    settings = mutation.read_settings(["lib", "in-cluster", "."])
    picked = mutation.chosen(settings, ["lib/floating_ip/core/plan.py"])
    lines, _ = mutation.judge(picked, {})
    assert lines[-1].startswith("| lib/floating_ip/core (part) |")
    assert lines[-1].endswith("| not judged |")
    assert not any("**lib/floating_ip/core**" in line for line in lines)
