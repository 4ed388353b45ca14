"""The coalescer, driven by a hand-held clock: the leading edge, bursts, ceilings, flights,
failures, rate and the resync that covers everything."""

from __future__ import annotations

import pytest

from floating_ip_forwarder.forwarding.coalescer import Coalescer, Taken

RESYNC = "*"


def make(
    quiet: float = 0.5,
    ceiling: float = 2.0,
    rate: float = 100.0,
    burst: int = 100,
    collapse_at: int = 1000,
) -> Coalescer[str]:
    return Coalescer(
        quiet=quiet,
        ceiling=ceiling,
        rate=rate,
        burst=burst,
        resync_key=RESYNC,
        collapse_at=collapse_at,
        now=0.0,
    )


def drain(c: Coalescer[str], now: float) -> list[str]:
    """Everything takeable at ``now``, marked delivered at once."""
    keys = []
    while (taken := c.take(now)) is not None:
        keys.append(taken.key)
        c.succeeded(taken)
    return keys


def test_a_quiet_services_first_change_is_sent_at_once() -> None:
    c = make()
    c.touch("ns/web", 10.0)
    assert c.wake_in(10.0) == 0.0
    taken = c.take(10.0)
    assert taken is not None and taken.key == "ns/web" and taken.waited == 0.0


def test_a_burst_costs_the_leading_event_and_one_after_the_quiet_window() -> None:
    c = make()
    c.touch("ns/web", 0.0)
    leading = c.take(0.0)
    assert leading is not None
    for i in range(1, 200):  # 200 changes within one second; the first flight lasts 0.2 s
        c.touch("ns/web", i * 0.005)
        if i * 0.005 >= 0.2 and c.in_flight():
            c.succeeded(leading)
    last = 199 * 0.005
    assert c.take(last + 0.49) is None
    assert c.wake_in(last + 0.49) == pytest.approx(0.01)
    assert drain(c, last + 0.5) == ["ns/web"]
    assert c.wake_in(last + 0.5) is None
    assert c.depth() == 0


def test_a_change_soon_after_a_send_waits_for_the_quiet_window() -> None:
    c = make()
    c.touch("ns/web", 0.0)
    assert drain(c, 0.0) == ["ns/web"]
    c.touch("ns/web", 0.3)  # not quiet: the last change was 0.3 s ago
    assert c.take(0.3) is None
    assert c.wake_in(0.3) == pytest.approx(0.5)
    assert drain(c, 0.8) == ["ns/web"]
    c.touch("ns/web", 5.0)  # quiet again
    assert drain(c, 5.0) == ["ns/web"]


def test_an_endless_burst_still_leaves_at_the_ceiling() -> None:
    c = make(quiet=0.5, ceiling=2.0)
    t = 0.0
    sent: list[float] = []
    while t < 5.0:
        c.touch("ns/web", t)
        if drain(c, t):
            sent.append(t)
        t = round(t + 0.1, 3)
    assert sent == [0.0, 2.1, 4.2]  # at once, then 2 s after the first change each carries


def simulate(changes: list[float], flight: float, horizon: float = 10.0) -> list[float]:
    """Send times of one key, each flight lasting ``flight`` seconds (1 ms steps)."""
    c = make()
    sent: list[float] = []
    flying: tuple[Taken[str], float] | None = None
    pending = sorted(round(t * 1000) for t in changes)
    for ms in range(round(horizon * 1000)):
        now = ms / 1000
        while pending and pending[0] == ms:
            c.touch("ns/web", now)
            pending.pop(0)
        if flying is not None and now >= flying[1]:
            c.succeeded(flying[0])
            flying = None
        if flying is None and (taken := c.take(now)) is not None:
            sent.append(now)
            flying = (taken, now + flight)
    return sent


@pytest.mark.parametrize(
    ("changes", "flight", "sent"),
    [
        pytest.param([0.0], 0.2, [0.0], id="one change: at once"),
        pytest.param([0.0, 0.1], 0.2, [0.0, 0.6], id="a change during the flight coalesces"),
        pytest.param([0.0, 0.4], 0.2, [0.0, 0.9], id="a change soon after the flight coalesces"),
        pytest.param([0.0, 3.0], 0.2, [0.0, 3.0], id="quiet again: at once again"),
        pytest.param(
            [i * 0.005 for i in range(200)], 0.2, [0.0, 1.495], id="200 flips in 1 s: two sends"
        ),
        pytest.param(
            [i * 0.1 for i in range(50)], 0.2, [0.0, 2.1, 4.2, 5.4], id="5 s of changes: ceilings"
        ),
        pytest.param([0.0, 0.05], 1.0, [0.0, 1.0], id="a slow flight: the next goes when it ends"),
    ],
)
def test_leading_edge_table(changes: list[float], flight: float, sent: list[float]) -> None:
    assert simulate(changes, flight) == pytest.approx(sent, abs=0.0015)


def test_the_memory_of_recent_changes_stays_bounded() -> None:
    c = make()
    for i in range(5000):
        c.touch(f"ns/s{i}", float(i))
        drain(c, float(i))
    assert len(c._last_change) < 2000
    c.touch("ns/s0", 6000.0)  # long quiet: still leading after being forgotten
    assert drain(c, 6000.0) == ["ns/s0"]


def test_one_request_in_flight_per_key_and_a_change_during_it_is_sent_after() -> None:
    c = make()
    c.touch("ns/web", 0.0)
    first = c.take(0.5)
    assert first is not None
    c.touch("ns/web", 0.6)
    assert c.take(5.0) is None, "still in flight"
    assert c.wake_in(5.0) is None
    c.succeeded(first)
    again = c.take(5.0)
    assert again is not None and again.key == "ns/web" and again.attempt == 0
    c.succeeded(again)
    assert c.depth() == 0


def test_other_keys_go_while_one_is_in_flight() -> None:
    c = make()
    c.touch("ns/a", 0.0)
    c.touch("ns/b", 0.1)
    a = c.take(1.0)
    b = c.take(1.0)
    assert (a.key if a else None, b.key if b else None) == ("ns/a", "ns/b")
    assert c.in_flight() == 2


def test_a_failure_waits_for_its_delay_and_counts_attempts() -> None:
    c = make()
    c.touch("ns/web", 0.0)
    taken = c.take(0.5)
    assert taken is not None
    c.failed(taken, now=1.0, delay=4.0)
    assert c.take(4.9) is None
    assert c.wake_in(1.0) == pytest.approx(4.0)
    c.touch("ns/web", 2.0)  # a new change does not cut the backoff short
    assert c.take(4.9) is None
    retry = c.take(5.0)
    assert retry is not None and retry.attempt == 1
    assert retry.waited == pytest.approx(5.0), "counts from the first change it carries"
    c.failed(retry, now=5.0, delay=8.0)
    third = c.take(13.0)
    assert third is not None and third.attempt == 2
    c.succeeded(third)
    assert c.depth() == 0


def test_a_change_during_a_failed_flight_is_not_lost() -> None:
    c = make()
    c.touch("ns/web", 0.0)
    taken = c.take(0.5)
    assert taken is not None
    c.touch("ns/web", 0.7)
    c.failed(taken, now=1.0, delay=1.0)
    retry = c.take(2.0)
    assert retry is not None and retry.attempt == 1
    c.succeeded(retry)
    assert c.depth() == 0


def test_the_global_rate_spaces_events_out() -> None:
    c = make(rate=2.0, burst=3)
    for i in range(10):
        c.touch(f"ns/s{i}", 0.0)
    assert len(drain(c, 0.5)) == 3, "the burst"
    assert c.take(0.5) is None
    assert c.wake_in(0.5) == pytest.approx(0.5)
    assert len(drain(c, 1.0)) == 1
    assert len(drain(c, 2.0)) == 2, "one second at two per second"
    assert len(drain(c, 100.0)) == 3, "idle time refills the burst, no more"
    assert len(drain(c, 100.5)) == 1


def test_a_resync_covers_every_change_seen_before_it() -> None:
    c = make()
    c.touch("ns/a", 0.0)
    c.touch("ns/b", 0.0)
    flying = c.take(0.5)
    assert flying is not None
    c.touch(flying.key, 0.6)  # would be sent again after its flight...
    c.touch(RESYNC, 0.6)
    resync = c.take(1.1)
    assert resync is not None and resync.key == RESYNC
    c.succeeded(flying)
    c.succeeded(resync)
    assert c.take(100.0) is None, "...but the resync covered it"
    c.touch("ns/a", 101.0)
    assert drain(c, 102.0) == ["ns/a"], "changes after the resync still count"


def test_many_services_due_at_once_become_one_resync() -> None:
    c = make(collapse_at=5)
    for i in range(4):
        c.touch(f"ns/s{i}", 0.0)
    assert len(drain(c, 0.5)) == 4, "below the threshold: one each"
    for i in range(20):
        c.touch(f"ns/s{i}", 1.0)
    assert drain(c, 1.5) == [RESYNC]


def test_collapse_never_cuts_a_resync_backoff_short() -> None:
    c = make(collapse_at=2)
    c.touch(RESYNC, 0.0)
    resync = c.take(0.5)
    assert resync is not None
    c.failed(resync, now=0.5, delay=60.0)
    c.touch("ns/a", 1.0)
    c.touch("ns/b", 1.0)
    assert sorted(drain(c, 1.5)) == ["ns/a", "ns/b"]
    assert drain(c, 61.0) == [RESYNC]


def test_clear_forgets_everything_and_ignores_late_outcomes() -> None:
    c = make()
    c.touch("ns/a", 0.0)
    old = c.take(0.5)
    assert old is not None
    c.clear()
    c.touch("ns/a", 1.0)
    new = c.take(1.5)
    assert new is not None
    c.failed(old, now=1.6, delay=100.0)  # a stale outcome from the previous leadership
    assert c.in_flight() == 1
    c.succeeded(new)
    assert c.depth() == 0


def test_stale_ticket_is_ignored() -> None:
    c = make()
    c.touch("ns/a", 0.0)
    taken = c.take(0.5)
    assert taken is not None
    c.succeeded(taken)
    c.succeeded(Taken("ns/a", 0.0, 0, taken.ticket))  # twice: harmless
    assert c.depth() == 0


@pytest.mark.parametrize(
    ("quiet", "ceiling", "rate", "burst", "collapse_at"),
    [(1.0, 0.5, 1.0, 1, 1), (-1.0, 1.0, 1.0, 1, 1), (0.5, 1.0, 0.0, 1, 1), (0.5, 1.0, 1.0, 0, 1)],
)
def test_nonsense_settings_are_refused(
    quiet: float, ceiling: float, rate: float, burst: int, collapse_at: int
) -> None:
    with pytest.raises(ValueError):
        make(quiet, ceiling, rate, burst, collapse_at)
