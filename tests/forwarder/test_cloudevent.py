"""The CloudEvents on the wire, as the function's contract describes them."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from floating_ip_common import contract
from floating_ip_forwarder.forwarding import cloudevent

WHEN = datetime(2025, 3, 1, 12, 0, 0, 123000, tzinfo=UTC)


def test_service_changed_event() -> None:
    event = cloudevent.build("apps/web", cluster_id="c-1", event_id="id-1", time=WHEN)
    assert event.headers == {
        "ce-specversion": "1.0",
        "ce-id": "id-1",
        "ce-source": contract.EVENT_SOURCE,
        "ce-type": contract.EVENT_SERVICE_CHANGED,
        "ce-subject": "apps/web",
        "ce-time": "2025-03-01T12:00:00.123000Z",
        "ce-clusterid": "c-1",
        "ce-schemaversion": str(contract.EVENT_SCHEMA_VERSION),
        "content-type": "application/json",
    }
    assert json.loads(event.body) == {"service": "apps/web"}


def test_resync_event_has_no_subject() -> None:
    event = cloudevent.build(cloudevent.RESYNC_KEY, cluster_id="c-1", event_id="id-2", time=WHEN)
    assert event.headers["ce-type"] == contract.EVENT_RESYNC
    assert "ce-subject" not in event.headers
    assert json.loads(event.body) == {}


def test_the_secret_is_not_part_of_the_event() -> None:
    event = cloudevent.build("apps/web", cluster_id="c", event_id="i", time=WHEN)
    assert contract.AUTH_HEADER.lower() not in {h.lower() for h in event.headers}
