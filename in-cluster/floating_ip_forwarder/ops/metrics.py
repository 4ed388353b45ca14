"""The forwarder's Prometheus metrics, rendered in the text exposition format (0.0.4).

A handful of counters, gauges and one histogram do not justify a dependency; this module is
the whole of it. Every update takes one lock, so metrics may be touched from any thread.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence

PREFIX = "floating_ip_forwarder_"
_lock = threading.Lock()

Labels = tuple[tuple[str, str], ...]


def _labels(pairs: Labels, extra: Labels = ()) -> str:
    merged = pairs + extra
    if not merged:
        return ""
    escaped = (
        (k, v.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')) for k, v in merged
    )
    return "{" + ",".join(f'{k}="{v}"' for k, v in escaped) + "}"


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value)) if value != int(value) else str(int(value))


class _Metric:
    kind = "untyped"

    def __init__(self, name: str, help_text: str) -> None:
        self.name = PREFIX + name
        self.help = help_text

    def header(self) -> list[str]:
        return [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} {self.kind}"]

    def samples(self) -> list[str]:
        raise NotImplementedError


class Counter(_Metric):
    kind = "counter"

    def __init__(self, name: str, help_text: str, *, initial: Sequence[Labels] = ()) -> None:
        super().__init__(name, help_text)
        # Pre-declared label sets show as 0 before their first event (rate() needs that).
        self._values: dict[Labels, float] = dict.fromkeys(initial, 0.0)

    def header(self) -> list[str]:
        # The text format wants the family named as its samples: ``<name>_total``.
        return [f"# HELP {self.name}_total {self.help}", f"# TYPE {self.name}_total counter"]

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        key = tuple(sorted(labels.items()))
        with _lock:
            self._values[key] = self._values.get(key, 0.0) + amount

    def value(self, **labels: str) -> float:
        with _lock:
            return self._values.get(tuple(sorted(labels.items())), 0.0)

    def samples(self) -> list[str]:
        with _lock:
            items = sorted(self._values.items())
        if not items:
            return [f"{self.name}_total 0"]
        return [f"{self.name}_total{_labels(k)} {_number(v)}" for k, v in items]


class Gauge(_Metric):
    kind = "gauge"

    def __init__(self, name: str, help_text: str) -> None:
        super().__init__(name, help_text)
        self._value = 0.0

    def set(self, value: float) -> None:
        with _lock:
            self._value = value

    def value(self) -> float:
        with _lock:
            return self._value

    def samples(self) -> list[str]:
        return [f"{self.name} {_number(self.value())}"]


class Histogram(_Metric):
    kind = "histogram"

    def __init__(self, name: str, help_text: str, buckets: Sequence[float]) -> None:
        super().__init__(name, help_text)
        self._bounds = (*sorted(buckets), math.inf)
        self._counts = [0] * len(self._bounds)
        self._sum = 0.0

    def observe(self, value: float) -> None:
        with _lock:
            self._sum += value
            for i, bound in enumerate(self._bounds):
                if value <= bound:
                    self._counts[i] += 1
                    break

    def samples(self) -> list[str]:
        with _lock:
            counts, total_sum = list(self._counts), self._sum
        lines, running = [], 0
        for bound, count in zip(self._bounds, counts, strict=True):
            running += count
            lines.append(f"{self.name}_bucket{_labels((('le', _number(bound)),))} {running}")
        lines += [f"{self.name}_sum {_number(total_sum)}", f"{self.name}_count {running}"]
        return lines


class ForwarderMetrics:
    """Every metric the forwarder exports."""

    def __init__(self) -> None:
        kinds = [(("kind", k),) for k in ("service", "endpointslice", "node", "pod")]
        self.watch_events = Counter(
            "watch_events", "Watch events received, by kind.", initial=kinds
        )
        self.changes = Counter(
            "changes",
            "Changes to placement inputs seen (events that affected an opted-in Service).",
            initial=kinds,
        )
        self.relists = Counter(
            "relists", "Full lists after the start (410 Gone, lost watch), by kind."
        )
        self.watch_errors = Counter("watch_errors", "Failed lists or watches, by kind.")
        self.events_sent = Counter(
            "events_sent",
            "CloudEvents the function accepted (2xx), by type.",
            initial=[(("type", "service"),), (("type", "resync"),)],
        )
        self.failures = Counter("send_failures", "POSTs that did not get a 2xx answer, by reason.")
        self.retries = Counter("retries", "POSTs that were retries of an earlier failure.")
        self.token_mints = Counter(
            "function_token_mints", "Short-lived tokens minted for the function (TokenRequest)."
        )
        self.queue_depth = Gauge("queue_depth", "Keys (Services, resync) waiting or in flight.")
        self.in_flight = Gauge("in_flight", "POSTs in flight.")
        self.last_success = Gauge(
            "last_success_timestamp_seconds", "Unix time of the last accepted event."
        )
        self.leader = Gauge("leader", "1 while this replica holds the Lease and sends.")
        self.delay = Histogram(
            "event_delay_seconds",
            "From the first change an event carries to its POST leaving.",
            (0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300),
        )
        self.index_objects = Gauge("index_objects", "Objects held in the forwarder's index.")
        self.probe_rounds = Counter("probe_rounds", "Rounds of probes and Lease checks.")
        self.probes = Counter("probes", "Endpoint probes made by the leader (TCP connects).")
        self.probe_failures = Counter(
            "probe_failures", "Endpoint probes refused or not answered in time."
        )
        self.suspected = Gauge("suspected_nodes", "Nodes the leader suspects to be dead.")
        self.unconfirmed = Gauge(
            "unconfirmed_suspicions",
            "Nodes whose probes fail from this replica but that no second vantage point "
            "confirms (or that this replica waits to judge alone): not suspected.",
        )
        self.node_events = Counter(
            "node_events",
            "Warning Events about unconfirmed nodes, by result (created, failed: not created "
            "or dropped).",
            initial=[(("result", "created"),), (("result", "failed"),)],
        )
        self.observation_writes = Counter(
            "observation_writes",
            "Writes of this replica's observation for the others (on change, and a heartbeat "
            "during an incident).",
        )

    def render(self) -> str:
        lines: list[str] = []
        for metric in vars(self).values():
            if isinstance(metric, _Metric):
                lines += metric.header() + metric.samples()
        return "\n".join(lines) + "\n"
