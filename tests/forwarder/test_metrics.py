"""The metrics page in Prometheus' text format."""

from __future__ import annotations

from floating_ip_forwarder.ops.metrics import ForwarderMetrics


def samples(text: str) -> dict[str, float]:
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


def test_render_counters_gauges_and_histogram() -> None:
    m = ForwarderMetrics()
    m.watch_events.inc(kind="node")
    m.watch_events.inc(kind="node")
    m.events_sent.inc(type="resync")
    m.failures.inc(reason="503")
    m.queue_depth.set(3)
    m.delay.observe(0.3)
    m.delay.observe(7)
    text = m.render()
    got = samples(text)
    assert got['floating_ip_forwarder_watch_events_total{kind="node"}'] == 2
    assert got['floating_ip_forwarder_watch_events_total{kind="pod"}'] == 0, "pre-declared"
    assert got['floating_ip_forwarder_events_sent_total{type="resync"}'] == 1
    assert got['floating_ip_forwarder_events_sent_total{type="service"}'] == 0
    assert got['floating_ip_forwarder_send_failures_total{reason="503"}'] == 1
    assert got["floating_ip_forwarder_retries_total"] == 0
    assert got["floating_ip_forwarder_queue_depth"] == 3
    assert got['floating_ip_forwarder_event_delay_seconds_bucket{le="0.25"}'] == 0
    assert got['floating_ip_forwarder_event_delay_seconds_bucket{le="0.5"}'] == 1
    assert got['floating_ip_forwarder_event_delay_seconds_bucket{le="10"}'] == 2
    assert got['floating_ip_forwarder_event_delay_seconds_bucket{le="+Inf"}'] == 2
    assert got["floating_ip_forwarder_event_delay_seconds_count"] == 2
    assert got["floating_ip_forwarder_event_delay_seconds_sum"] == 7.3
    assert "# TYPE floating_ip_forwarder_watch_events_total counter" in text
    assert "# TYPE floating_ip_forwarder_event_delay_seconds histogram" in text


def test_label_values_are_escaped() -> None:
    m = ForwarderMetrics()
    m.failures.inc(reason='say "no"\n')
    assert 'reason="say \\"no\\"\\n"' in m.render()
