"""What the dispatcher makes of the function's refusal: the log line naming the cause, the
metric by status, and a retry minutes later (the sender and the function's side are real:
HTTPS to a local receiver answering as the function would)."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from floating_ip_common import contract
from floating_ip_forwarder.forwarding import cloudevent
from floating_ip_forwarder.forwarding.coalescer import Coalescer
from floating_ip_forwarder.forwarding.dispatcher import Dispatcher
from floating_ip_forwarder.forwarding.sender import Sender, function_context
from floating_ip_forwarder.ops.metrics import ForwarderMetrics
from testbed.processes import wait_until
from testbed.receiver import Receiver
from testbed.tls import TestCA

SECRET = "dispatcher-test-secret-0123"


@pytest.fixture
def function(tmp_path: Path) -> Iterator[tuple[Receiver, TestCA]]:
    ca = TestCA(tmp_path)
    receiver = Receiver(ca.issue("function", "127.0.0.1"), SECRET).start()
    try:
        yield receiver, ca
    finally:
        receiver.stop()


def test_an_unsupported_schema_is_logged_naming_the_cause_and_counted_as_422(
    function: tuple[Receiver, TestCA], caplog: pytest.LogCaptureFixture
) -> None:
    receiver, ca = function
    receiver.answer(contract.UNSUPPORTED_SCHEMA_STATUS)
    caplog.set_level(logging.INFO, logger="floating_ip_forwarder")
    metrics = ForwarderMetrics()
    sender = Sender(receiver.url(), SECRET, function_context(str(ca.ca_file)), timeout=10)
    coalescer = Coalescer(
        quiet=0.0,
        ceiling=0.0,
        rate=1.0,
        burst=1,
        resync_key=cloudevent.RESYNC_KEY,
        collapse_at=10,
        now=time.monotonic(),
    )
    dispatcher = Dispatcher(
        coalescer, [sender], cluster_id="c0ffee", resync_period=3600, metrics=metrics
    )
    dispatcher.start()
    try:
        dispatcher.set_leading(True)  # a resync at once
        wait_until(
            lambda: metrics.failures.value(reason="422") >= 1,
            timeout=20,
            what="the refused resync counted",
        )
    finally:
        dispatcher.stop(timeout=10)

    [refusal] = [r for r in caplog.records if r.levelno == logging.ERROR]
    message = refusal.getMessage()
    assert "does not accept this forwarder's event schema version 2 (422)" in message
    assert "more than one release apart; upgrade the older one" in message
    assert (vars(refusal)["status"], vars(refusal)["event"]) == (422, "resync")
    # Kept for a retry minutes later, not sent again in a loop, and not counted as sent.
    assert 270 <= vars(refusal)["retry_in"] <= 330
    assert [r.status for r in receiver.received()] == [422]
    assert metrics.events_sent.value(type="resync") == 0
    assert 'floating_ip_forwarder_send_failures_total{reason="422"} 1' in metrics.render()
