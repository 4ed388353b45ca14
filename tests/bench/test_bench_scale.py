"""The forwarder benchmark's size: one scale multiplies every count (Nodes up to 1,000), and
the command line refuses a scale that is not a whole number of at least 1. Fast: no server."""

from __future__ import annotations

import pytest

from bench import forwarder_bench
from bench.__main__ import parse
from bench.forwarder_bench import Size


def test_the_default_is_todays_bench() -> None:
    assert parse([]).forwarder_scale == 1
    size = Size()
    assert (size.nodes, size.services, size.opted_in, size.pods) == (200, 1000, 100, 5000)


def test_ten_times_is_the_big_cluster_of_issue_14() -> None:
    assert parse(["--forwarder-scale", "10"]).forwarder_scale == 10
    size = Size(10)
    assert (size.nodes, size.services, size.opted_in, size.pods) == (1000, 10000, 1000, 50000)


def test_one_service_in_ten_opts_in_at_any_scale() -> None:
    for scale in (1, 10):
        count = Size(scale).services
        assert sum(forwarder_bench.opted_in(i) for i in range(count)) == Size(scale).opted_in


@pytest.mark.parametrize("text", ["0", "-3", "ten", "1.5"])
def test_a_scale_that_is_not_a_whole_number_of_at_least_one_is_refused(
    text: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        parse(["--forwarder-scale", text])
    assert f"{text!r}" in capsys.readouterr().err


def test_a_size_refuses_a_scale_below_one() -> None:
    with pytest.raises(ValueError, match="scale 0"):
        Size(0)
