"""The schedule of reads while a reserved IP's assign action runs: how long past the action's
end the move is seen, against how much of the token's rate limit it costs."""

from __future__ import annotations

import itertools

import pytest

from floating_ip.apply import action_poll_delays

RATE_LIMIT_PER_MINUTE = 250
"""DigitalOcean's per-token limit, for every call of the function."""


def reads_until(action_seconds: float) -> tuple[int, float]:
    """Reads made until an action of that length is seen completed, and the overshoot."""
    waited = 0.0
    for reads, delay in enumerate(action_poll_delays(), start=1):
        waited += delay
        if waited >= action_seconds:
            return reads, waited - action_seconds
    raise AssertionError("unreachable")


@pytest.mark.parametrize(
    ("action_seconds", "max_overshoot", "max_reads"),
    [
        (0.1, 0.15, 1),
        (1.0, 0.15, 7),
        (2.0, 0.15, 14),
        (2.95, 0.15, 20),
        (11.0, 1.0, 32),  # the API description's example action
        (60.0, 1.0, 81),
    ],
)
def test_short_actions_are_seen_within_150_ms_and_long_ones_cost_few_reads(
    action_seconds: float, max_overshoot: float, max_reads: int
) -> None:
    reads, overshoot = reads_until(action_seconds)
    assert overshoot <= max_overshoot + 1e-9
    assert reads <= max_reads


def test_no_minute_of_polling_takes_more_than_a_third_of_the_rate_limit() -> None:
    delays = list(itertools.islice(action_poll_delays(), 1000))
    for start in range(len(delays)):
        window, reads = 0.0, 0
        for delay in delays[start:]:
            window += delay
            if window > 60:
                break
            reads += 1
        assert reads <= RATE_LIMIT_PER_MINUTE / 3
    assert max(delays) == 1.0
