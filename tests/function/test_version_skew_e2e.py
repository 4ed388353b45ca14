"""Version skew: the forwarder and the function can be upgraded in either order.

Events carry a schema version (``contract.EVENT_SCHEMA_ATTRIBUTE``; absent means 1, every
release before it). The function accepts the current version and the previous one and
answers 422, naming the versions, to anything else; the forwarder logs that cause and keeps
the change for a much later retry (``delivery.py``)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

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

PREVIOUS_RELEASE = "29f1c5d029b03a9bf8c287b20da28d7947bac272"
"""The last commit whose forwarder sends no schema version (release 0.1.0's event format)."""
WHEN = datetime(2026, 12, 6, 12, 0, 0, tzinfo=UTC)


def previous_forwarders_event(key: str, cluster_id: str) -> tuple[dict[str, str], bytes]:
    """What the previous release's forwarder sends, byte for byte (its cloudevent.build)."""
    headers = {
        "ce-specversion": "1.0",
        "ce-id": "previous-1",
        "ce-source": contract.EVENT_SOURCE,
        "ce-time": "2026-12-06T12:00:00Z",
        "ce-clusterid": cluster_id,
        "content-type": "application/json",
        contract.AUTH_HEADER: WEB_SECRET,  # the sender adds it, as it does for every event
    }
    if key == cloudevent.RESYNC_KEY:
        return {**headers, "ce-type": contract.EVENT_RESYNC}, b"{}"
    headers |= {"ce-type": contract.EVENT_SERVICE_CHANGED, "ce-subject": key}
    return headers, b'{"service":"%s"}' % key.encode()


def current_forwarders_event(
    key: str, cluster_id: str, schema: str | None = None
) -> tuple[dict[str, str], bytes]:
    event = cloudevent.build(key, cluster_id=cluster_id, event_id="current-1", time=WHEN)
    headers = {**event.headers, contract.AUTH_HEADER: WEB_SECRET}
    if schema is not None:
        headers[f"ce-{contract.EVENT_SCHEMA_ATTRIBUTE}"] = schema
    return headers, event.body


@pytest.mark.parametrize("key", [cloudevent.RESYNC_KEY, "apps/web"])
def test_the_new_function_serves_the_previous_and_the_current_forwarder(
    runner: FunctionRunner, world: DoksWorld, key: str
) -> None:
    for event in (
        previous_forwarders_event(key, world.cluster_id),
        current_forwarders_event(key, world.cluster_id),
    ):
        response = runner.run(event)
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
    # The forwarder keeps the change for a much later retry, and logs (and counts, by
    # status) why: the metric failures{reason="422"}.
    assert classify(response.status) is DeliveryOutcome.REJECTED
    assert "more than one release apart" in rejection_cause(response.status)


def previous_module(tmp_path: Path, path: str) -> ModuleType:
    """A module of the previous release, from the repository's history."""
    try:
        source = subprocess.run(
            ["git", "show", f"{PREVIOUS_RELEASE}:{path}"],
            capture_output=True,
            check=True,
            cwd=Path(__file__).parent,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("the previous release is not in this clone's history (a shallow clone?)")
    name = "previous_" + Path(path).stem
    file = tmp_path / f"{name}.py"
    file.write_bytes(source)
    spec = importlib.util.spec_from_file_location(name, file)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[name]
    return module


@pytest.mark.parametrize("key", [cloudevent.RESYNC_KEY, "apps/web"])
def test_the_previous_forwarders_event_above_is_what_it_sent(tmp_path: Path, key: str) -> None:
    previous = previous_module(
        tmp_path, "in-cluster/floating_ip_forwarder/forwarding/cloudevent.py"
    )
    when = datetime(2026, 12, 6, 12, 0, 0, tzinfo=UTC)
    sent = previous.build(key, cluster_id="c0ffee", event_id="previous-1", time=when)
    headers, body = previous_forwarders_event(key, "c0ffee")
    del headers[contract.AUTH_HEADER]
    assert (sent.headers, sent.body) == (headers, body)


@pytest.mark.parametrize("key", [cloudevent.RESYNC_KEY, "apps/web"])
def test_the_previous_function_reads_the_new_forwarders_events(tmp_path: Path, key: str) -> None:
    """The reverse order: the forwarder upgraded first. The previous function ignores the
    extension attribute it does not know, and reads the event as it always did."""
    previous = previous_module(tmp_path, "lib/floating_ip/trigger.py")
    headers, body = current_forwarders_event(key, "c0ffee")
    trigger = previous.parse_trigger(headers, body)
    assert trigger.type == headers["ce-type"]
    assert trigger.service == (None if key == cloudevent.RESYNC_KEY else key)
