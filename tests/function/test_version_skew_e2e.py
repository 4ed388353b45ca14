"""Version skew: the event's schema version, as the function reads it.

Events carry a schema version (``contract.EVENT_SCHEMA_ATTRIBUTE``; absent means 1, every
release before it). The function accepts the current version and the previous one and
answers 422, naming the versions, to anything else; the forwarder logs that cause and keeps
the change for a much later retry (``delivery.py``). The previous release's own forwarder and
function, run against this one's, are in ``tests/forwarder/test_previous_release_e2e.py``."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from floating_ip_common import contract
from floating_ip_forwarder.forwarding import cloudevent
from floating_ip_forwarder.forwarding.delivery import (
    DeliveryOutcome,
    classify,
    rejection_cause,
)
from testbed.doks import WEB_SECRET, DoksWorld
from testbed.function_harness import FunctionRunner

WHEN = datetime(2026, 12, 6, 12, 0, 0, tzinfo=UTC)
SCHEMA_HEADER = f"ce-{contract.EVENT_SCHEMA_ATTRIBUTE}"


def current_forwarders_event(
    key: str, cluster_id: str, schema: str | None = None
) -> tuple[dict[str, str], bytes]:
    """This forwarder's event (``FunctionRunner`` adds the token, as its sender does), with
    ``schema`` in place of its own version when given."""
    event = cloudevent.build(key, cluster_id=cluster_id, event_id="current-1", time=WHEN)
    headers = {**event.headers, contract.AUTH_HEADER: WEB_SECRET}
    if schema is not None:
        headers[SCHEMA_HEADER] = schema
    return headers, event.body


@pytest.mark.parametrize("key", [cloudevent.RESYNC_KEY, "apps/web"])
@pytest.mark.parametrize("schema", [None, "1", "2"], ids=["absent", "one", "two"])
def test_the_function_accepts_the_previous_and_the_current_schema(
    runner: FunctionRunner, world: DoksWorld, key: str, schema: str | None
) -> None:
    headers, body = current_forwarders_event(key, world.cluster_id)
    if schema is None:
        del headers[SCHEMA_HEADER]  # version 1, as every earlier release sent
    else:
        headers[SCHEMA_HEADER] = schema
    response = runner.run((headers, body))
    assert response.status == 200, response.body


@pytest.mark.parametrize("schema", ["3", "0", "two"])
def test_an_event_of_another_schema_is_answered_422_and_the_forwarder_says_why(
    runner: FunctionRunner, world: DoksWorld, schema: str
) -> None:
    response = runner.run(current_forwarders_event("apps/web", world.cluster_id, schema))
    assert response.status == contract.UNSUPPORTED_SCHEMA_STATUS
    error = str(response.body["error"])
    assert f"event schema version {schema!r} is not accepted" in error
    assert "accepts 1, 2" in error
    # The forwarder keeps the change for a much later retry, logs why and counts it in
    # send_failures_total{reason="422"} (tests/forwarder/test_dispatcher.py).
    assert classify(response.status) is DeliveryOutcome.REJECTED
    assert "more than one release apart" in rejection_cause(response.status)
