"""Retry decisions after a POST: what is transient, what is a configuration error, how long
to wait."""

from __future__ import annotations

import email.utils
import threading
import time
from typing import cast

import pytest

from floating_ip_common.kube_client import ApiError, KubeClient
from floating_ip_common.retry_after import MAX_RETRY_AFTER
from floating_ip_forwarder.forwarding.delivery import (
    DeliveryOutcome,
    RetryPolicy,
    classify,
    rejection_cause,
)
from floating_ip_forwarder.forwarding.watched_kinds import NODES
from floating_ip_forwarder.forwarding.watcher import WATCH_MAX_RETRY_AFTER, Sink, Watcher
from floating_ip_forwarder.ops.metrics import ForwarderMetrics


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (200, DeliveryOutcome.DELIVERED),
        (202, DeliveryOutcome.DELIVERED),
        (204, DeliveryOutcome.DELIVERED),
        (None, DeliveryOutcome.TRANSIENT),
        (429, DeliveryOutcome.TRANSIENT),
        (500, DeliveryOutcome.TRANSIENT),
        (502, DeliveryOutcome.TRANSIENT),
        (503, DeliveryOutcome.TRANSIENT),
        (400, DeliveryOutcome.REJECTED),
        (401, DeliveryOutcome.REJECTED),
        (403, DeliveryOutcome.REJECTED),
        (404, DeliveryOutcome.REJECTED),
        (301, DeliveryOutcome.REJECTED),
    ],
)
def test_classify(status: int | None, outcome: DeliveryOutcome) -> None:
    assert classify(status) is outcome


def test_rejections_name_their_cause() -> None:
    assert "WEB_SECRET" in rejection_cause(401)
    assert "FUNCTION_URL" in rejection_cause(404)
    assert "malformed" in rejection_cause(400)
    assert "418" in rejection_cause(418)


def test_exponential_backoff_with_jitter_within_bounds() -> None:
    policy = RetryPolicy(base=1.0, factor=2.0, cap=60.0)
    for attempt, ceiling in [(0, 1.0), (1, 2.0), (2, 4.0), (5, 32.0), (6, 60.0), (40, 60.0)]:
        low = policy.delay(DeliveryOutcome.TRANSIENT, attempt, None, 0.0)
        high = policy.delay(DeliveryOutcome.TRANSIENT, attempt, None, 0.999999)
        assert low == pytest.approx(ceiling / 2)
        assert high == pytest.approx(ceiling, rel=1e-5)


def test_retry_after_is_honoured_with_a_little_jitter_and_no_backoff() -> None:
    policy = RetryPolicy()
    assert policy.delay(DeliveryOutcome.TRANSIENT, 9, 3.0, 0.0) == pytest.approx(3.0)
    assert policy.delay(DeliveryOutcome.TRANSIENT, 0, 3.0, 0.99) == pytest.approx(3.297)


def test_the_dispatchers_cap_for_retry_after_is_the_shared_one() -> None:
    # parse_retry_after(..., cap=policy.max_retry_after) in the dispatcher does the capping.
    assert RetryPolicy().max_retry_after == MAX_RETRY_AFTER == 600.0


def test_rejected_retries_after_a_long_delay() -> None:
    policy = RetryPolicy(rejected_delay=300.0)
    assert 270.0 <= policy.delay(DeliveryOutcome.REJECTED, 0, None, 0.0) <= 330.0
    assert 270.0 <= policy.delay(DeliveryOutcome.REJECTED, 3, 1.0, 0.99) <= 330.0


@pytest.mark.parametrize(
    ("header", "delay"),
    [
        ("3", 3.0),
        ("3600", WATCH_MAX_RETRY_AFTER),
        (email.utils.formatdate(time.time() + 3600, usegmt=True), WATCH_MAX_RETRY_AFTER),
        (None, 0.125),  # no hint: the watch's own backoff (first failure, lowest jitter)
        ("soon", 0.125),
    ],
)
def test_a_watch_reads_the_apiservers_retry_after_with_the_shared_parser(
    header: str | None, delay: float
) -> None:
    watcher = Watcher(
        cast(KubeClient, None),
        NODES,
        namespace=None,
        sink=cast(Sink, None),
        metrics=ForwarderMetrics(),
        stopping=threading.Event(),
        rand=lambda: 0.0,
    )
    error = ApiError(429, "too many requests", header)
    assert watcher._backoff(0, error) == pytest.approx(delay)
