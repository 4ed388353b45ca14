"""What a client saw of a move, from canned samples (no namespace, no process)."""

from __future__ import annotations

import pytest

from testbed.dataplane.client import Outcome
from testbed.dataplane.echo import Answer
from testbed.dataplane.traffic import ESTABLISHED, Sample, seen_around


def answered(sent: float, pod: str, protocol: str = "TCP") -> Sample:
    return Sample(sent, protocol, Outcome(answer=Answer(pod, "198.18.0.10")))


def failed(sent: float, failure: str, protocol: str = "TCP") -> Sample:
    return Sample(sent, protocol, Outcome(failure=failure))


def both(*samples: Sample) -> list[Sample]:
    """The same samples over TCP and over UDP."""
    return [*samples, *(Sample(s.sent, "UDP", s.outcome) for s in samples)]


def test_a_line_reads_back_as_the_sample_it_was() -> None:
    for sample in (answered(12.5, "web-1"), failed(12.51, "refused", "UDP")):
        assert Sample.parse(sample.line()) == sample


def test_the_outage_runs_from_the_old_pods_last_answer_to_the_new_pods_first() -> None:
    samples = both(
        answered(1.00, "web-1"),
        answered(1.01, "web-1"),
        failed(1.02, "refused"),
        failed(1.03, "timeout"),
        answered(1.04, "web-2"),
        answered(1.05, "web-2"),
    )
    seen = seen_around(samples, "web-1", "web-2")
    assert seen.outage["TCP"] == pytest.approx(0.03)
    assert seen.lost == {"TCP": 2, "UDP": 2}
    assert seen.failures["TCP"] == {"refused": 1, "timeout": 1}
    assert seen.established == "kept"


def test_a_move_without_a_miss_is_one_interval_and_no_loss() -> None:
    seen = seen_around(both(answered(1.00, "web-1"), answered(1.01, "web-2")), "web-1", "web-2")
    assert seen.outage["UDP"] == pytest.approx(0.01)
    assert seen.lost["UDP"] == 0


def test_the_open_connection_reports_its_first_failure() -> None:
    held = [answered(1.0, "web-1", ESTABLISHED), failed(1.1, "reset", ESTABLISHED)]
    samples = both(answered(1.0, "web-1"), answered(1.2, "web-2")) + held
    assert seen_around(samples, "web-1", "web-2").established == "reset"


def test_a_client_of_one_protocol_is_judged_on_that_protocol_alone() -> None:
    samples = [answered(1.0, "gitea-1"), failed(1.1, "timeout"), answered(1.2, "gitea-2")]
    seen = seen_around(samples, "gitea-1", "gitea-2", ("TCP",))
    assert seen.lost == {"TCP": 1}
    assert "UDP" not in seen.outage
    with pytest.raises(ValueError, match="UDP: no answer"):
        seen_around(samples, "gitea-1", "gitea-2")


def test_a_move_the_client_never_saw_end_is_an_error() -> None:
    with pytest.raises(ValueError, match="no answer from web-2"):
        seen_around(both(answered(1.0, "web-1")), "web-1", "web-2")
