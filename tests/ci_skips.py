"""No silent skip in CI: under ``CI=true`` a skipped test fails the run, unless it is listed
in ``ALLOWED`` with the reason it may be skipped there.

A skip is reported as a pass by pytest's exit status, so a suite that quietly stops running
(a missing tool, a kernel that refuses namespaces) would look green. This plugin (loaded by
``tests/conftest.py``) names every skipped test and its reason at the end of the run, in the
GitHub job summary too when ``GITHUB_STEP_SUMMARY`` is set, and turns an unlisted skip into
a failed run. Outside CI, skips are only listed (pytest's ``-ra`` does that already).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

ALLOWED: dict[str, tuple[str, str]] = {
    "tests/forwarder/test_system_soak.py": (
        "",
        "the system soak runs for minutes under `make soak` (SYSTEM_SOAK_ROUNDS), not in CI",
    ),
    "tests/dataplane/test_data_path.py": (
        "not root: test_under_sudo.py",
        "where the runner is not root, test_under_sudo.py runs every data-path test as root "
        "and fails the run if one of them skips or fails there",
    ),
    "tests/dataplane/test_under_sudo.py": (
        "root:",
        "run as root, the data-path tests ran directly; it re-runs them through sudo only "
        "where the runner is not root",
    ),
}
"""Test id (or the start of one: a file) → (the start its skip reason must have, why CI may
skip it). Keep it short."""


@dataclass(frozen=True, slots=True)
class Skip:
    nodeid: str
    reason: str

    @property
    def allowed_because(self) -> str | None:
        return next(
            (
                why
                for prefix, (reason, why) in ALLOWED.items()
                if self.nodeid.startswith(prefix) and self.reason.startswith(reason)
            ),
            None,
        )


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


class SkipWatch:
    """Collects the skips of one run; fails it at the end if one is not allowed."""

    def __init__(self) -> None:
        self.skips: list[Skip] = []

    @property
    def unexpected(self) -> list[Skip]:
        return [skip for skip in self.skips if skip.allowed_because is None]

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if not report.skipped:
            return
        if hasattr(report, "wasxfail"):
            reason = f"xfail: {report.wasxfail}"
        elif isinstance(report.longrepr, tuple):
            reason = str(report.longrepr[2]).removeprefix("Skipped: ")
        else:
            reason = str(report.longrepr)
        self.skips.append(Skip(report.nodeid, reason))

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if not self.skips:
            return
        summary = os.environ.get("GITHUB_STEP_SUMMARY")
        if summary:
            with Path(summary).open("a") as out:
                out.write(markdown(self.skips))
        passing = (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED)
        if self.unexpected and session.exitstatus in passing:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if not self.skips:
            return
        terminalreporter.section("skipped under CI=true")
        for skip in self.skips:
            why = skip.allowed_because
            verdict = f"allowed: {why}" if why else "NOT ALLOWED: this fails the run"
            terminalreporter.line(f"{skip.nodeid}: {skip.reason} ({verdict})")
        if self.unexpected:
            terminalreporter.line(
                "Make these tests run in CI, or list them in ALLOWED of tests/ci_skips.py "
                "with the reason they may not.",
                red=True,
            )


def pytest_configure(config: pytest.Config) -> None:
    if in_ci():
        config.pluginmanager.register(SkipWatch(), "ci-skip-watch")


def markdown(skips: list[Skip]) -> str:
    rows = [
        f"| `{s.nodeid}` | {s.reason} | {s.allowed_because or '**not allowed: the run fails**'} |"
        for s in skips
    ]
    head = "### Skipped tests\n\n| test | reason | allowed because |\n| --- | --- | --- |\n"
    return head + "\n".join(rows) + "\n\n"
