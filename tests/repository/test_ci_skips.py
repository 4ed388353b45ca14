"""No silent skip: a CI run with a test forced to skip fails, naming the test and its reason.

Each case runs a tiny suite in-process (pytest's ``pytester``) with the plugin of
``tests/ci_skips.py``, under ``CI=true`` or not, and reads its exit status and report.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import ci_skips

SUITE = """
import pytest

def test_runs():
    assert True

def test_{kind}():
    {body}
"""
BODIES = {
    "skipped": 'pytest.skip("unshare -rn failed: Operation not permitted")',
    "skipped_by_mark": "pass",
    "passes": "assert True",
    "fails": "assert False",
}


def run(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, kind: str, ci: str | None
) -> pytest.RunResult:
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    body = BODIES[kind]
    source = SUITE.format(kind=kind, body=body)
    if kind == "skipped_by_mark":
        source = source.replace(
            f"def test_{kind}", f'@pytest.mark.skipif(True, reason="no kernel")\ndef test_{kind}'
        )
    pytester.makepyfile(test_suite=source)
    return pytester.runpytest("-p", "tests.ci_skips", "-p", "no:cacheprovider")


@pytest.mark.parametrize(
    ("kind", "ci", "status"),
    [
        pytest.param("skipped", "true", pytest.ExitCode.TESTS_FAILED, id="ci-skip-fails"),
        pytest.param("skipped_by_mark", "true", pytest.ExitCode.TESTS_FAILED, id="ci-skipif-fails"),
        pytest.param("skipped", None, pytest.ExitCode.OK, id="local-skip-is-only-listed"),
        pytest.param("skipped", "false", pytest.ExitCode.OK, id="ci-false-is-local"),
        pytest.param("passes", "true", pytest.ExitCode.OK, id="ci-without-skip-passes"),
        pytest.param("fails", "true", pytest.ExitCode.TESTS_FAILED, id="ci-failure-stays-failed"),
    ],
)
def test_a_skip_fails_a_ci_run_and_nothing_else_changes(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    kind: str,
    ci: str | None,
    status: pytest.ExitCode,
) -> None:
    result = run(pytester, monkeypatch, kind, ci)
    assert result.ret == status
    if kind.startswith("skipped") and ci == "true":
        reason = "unshare -rn failed" if kind == "skipped" else "no kernel"
        result.stdout.fnmatch_lines(
            [
                "*skipped under CI=true*",
                f"test_suite.py::test_{kind}: {reason}* (NOT ALLOWED: this fails the run)",
            ]
        )


def test_a_skip_on_the_allow_list_passes_with_its_reason(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        ci_skips, "ALLOWED", {"test_suite.py::test_skipped": ("", "a soak, run by make soak")}
    )
    result = run(pytester, monkeypatch, "skipped", "true")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(
        ["test_suite.py::test_skipped: unshare -rn failed* (allowed: a soak, run by make soak)"]
    )


def test_an_allowed_test_skipped_for_another_reason_fails_the_run(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An entry allows its one reason: the same test skipped for another still fails CI."""
    monkeypatch.setattr(
        ci_skips, "ALLOWED", {"test_suite.py::test_skipped": ("root:", "ran directly as root")}
    )
    result = run(pytester, monkeypatch, "skipped", "true")
    assert result.ret == pytest.ExitCode.TESTS_FAILED


def test_the_job_summary_lists_each_skip_and_its_reason(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    summary = tmp_path / "summary.md"
    pytester.makepyfile(test_suite=SUITE.format(kind="skipped", body=BODIES["skipped"]))
    monkeypatch.setenv("CI", "true")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    result = pytester.runpytest("-p", "tests.ci_skips", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert (
        "| `test_suite.py::test_skipped` | unshare -rn failed: Operation not permitted "
        "| **not allowed: the run fails** |"
    ) in summary.read_text()


def test_the_allow_list_is_short_and_says_why() -> None:
    assert 0 < len(ci_skips.ALLOWED) <= 3
    assert all(len(why) > 20 for _reason, why in ci_skips.ALLOWED.values())
    for test in ci_skips.ALLOWED:
        assert Path(test.partition("::")[0]).is_file(), f"{test}: no such test file"


def test_the_data_path_skip_where_sudo_runs_it_again_is_allowed_and_no_other() -> None:
    from tests.dataplane.conftest import RUN_THROUGH_SUDO

    test = "tests/dataplane/test_data_path.py::test_after_a_move[nftables-externalIPs]"
    rerun = ci_skips.Skip(test, f"{RUN_THROUGH_SUDO} (named network namespaces need root)")
    assert rerun.allowed_because is not None and "as root" in rerun.allowed_because
    missing_tool = ci_skips.Skip(test, "the data path cannot run here: no nft on PATH")
    assert missing_tool.allowed_because is None
