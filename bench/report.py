"""The results document and its tables (pure: dictionaries in, text out).

``document`` shapes ``results.json``; ``part_table`` picks the figures worth a table from a
part that ran (``main_rows`` puts them together); ``render`` and ``markdown`` lay rows out;
``peers_rows`` and ``node_death_peers_rows`` put the figures beside what the peers document.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from bench import data_path_report, figures
from bench.figures import PHASE_LABELS, PHASES

SCHEMA = 1
PARTS = (
    "failover",
    "node-death",
    "function",
    "forwarder",
    "probe-cost",
    "zip",
    "bigcluster",
    "data-path",
)
"""Every part ``make bench`` runs, in the order it runs them."""

Row = tuple[str, ...]

PEERS: tuple[Row, ...] = (
    # As the README's comparison: its source is event-driven, the minute's reconcile a fallback.
    (
        "flipop (DigitalOcean)",
        "no published figure",
        "event-driven (pod and node informers), then its own cool-off between assignments",
    ),
    ("hcloud-fip-controller", "30 s", "polls every 30 s"),
    ("MetalLB layer 2", "a few seconds", "memberlist; > ~10 s is treated as a bug"),
    ("kube-vip", "5-15 s", "Service leader lease (15/10/2 s)"),
    ("waiting for Kubernetes to evict", "300 s", "default not-ready toleration"),
)
"""Documented failover floors of the systems users compare this one with."""

NODE_DEATH_PEERS: tuple[Row, ...] = (
    ("controllers that wait for NotReady", "40-50 s", "node-monitor-grace-period"),
    ("MetalLB layer 2", "~3 s", "memberlist; > ~5-10 s is treated as a bug"),
    ("kube-vip", "~3 s tuned, 5-15 s default", "Service leader lease"),
    (
        "DigitalOcean Load Balancer",
        "~6 s at the tightest",
        "health checks every ≥ 3 s, unhealthy after ≥ 2 failures",
    ),
)
"""How soon other systems document that traffic leaves a node that lost power."""


def document(
    machine: Mapping[str, Any],
    took: Mapping[str, float],
    parts: Mapping[str, Any],
    failed: Mapping[str, str] | None = None,
    *,
    command: str | None = None,
) -> dict[str, Any]:
    """The content of ``results.json``: the figures of each part that ran (in ``PARTS``
    order), why the others failed, how long each took, on what machine and by what command
    (``python -m bench.publish`` writes it beside the figures it publishes)."""
    failed = failed or {}
    unknown = (set(parts) | set(failed)) - set(PARTS)
    if unknown:
        raise ValueError(f"unknown parts: {', '.join(sorted(unknown))}")
    return {
        "schema": SCHEMA,
        "machine": dict(machine),
        "command": command,
        "seconds": {k: round(v, 1) for k, v in took.items()},
        "parts": {name: parts[name] for name in PARTS if name in parts},
        "failed": {name: failed[name] for name in PARTS if name in failed},
    }


# --- laying rows out --------------------------------------------------------------------------


def render(headers: Row, rows: Sequence[Row]) -> str:
    """A plain-text table: columns padded to their widest cell, a rule under the headers; a
    column of numbers (every cell starts with a digit) is aligned right."""
    for row in rows:
        if len(row) != len(headers):
            raise ValueError(f"row {row!r} has {len(row)} cells, not {len(headers)}")
    columns = list(zip(headers, *rows, strict=True))
    widths = [max(len(cell) for cell in column) for column in columns]
    numeric = [bool(rows) and all(cell[:1].isdigit() for cell in column[1:]) for column in columns]

    def line(cells: Row) -> str:
        padded = [
            cell.rjust(width) if right else cell.ljust(width)
            for cell, width, right in zip(cells, widths, numeric, strict=True)
        ]
        return "  ".join(padded).rstrip()

    rule = "  ".join("-" * width for width in widths)
    return "\n".join([line(headers), rule, *(line(row) for row in rows)])


def markdown(headers: Row, rows: Sequence[Row]) -> str:
    def line(cells: Row) -> str:
        return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"

    return "\n".join([line(headers), line(tuple("---" for _ in headers)), *map(line, rows)])


# --- which figures go in the tables -----------------------------------------------------------


def seconds(value: float) -> str:
    return f"{value:.2f} s" if value < 10 else f"{value:.1f} s"


def p50_p95(stats: Mapping[str, Any]) -> str:
    return f"{seconds(stats['p50'])} / {seconds(stats['p95'])}"


def failover_rows(failover: Mapping[str, Any]) -> list[Row]:
    """One row per phase and latency setting (all kinds together), then the finished move
    per kind of change."""
    rows: list[Row] = []
    for setting in failover["settings"]:
        latency = f"{setting['action_latency']:g} s"
        count = setting["summary"][PHASES[-1]]["n"]
        for phase in PHASES:
            label = f"change → {PHASE_LABELS[phase]}"
            rows.append((latency, "all", str(count), label, p50_p95(setting["summary"][phase])))
        for kind, summary in setting["by_kind"].items():
            done = summary[PHASES[-1]]
            label = f"change → {PHASE_LABELS[PHASES[-1]]}"
            rows.append((latency, kind, str(done["n"]), label, p50_p95(done)))
    return rows


FAILOVER_HEADERS: Row = ("action latency", "change", "moves", "milestone", "p50 / p95")


def part_headers(name: str) -> Row:
    """The columns of one part's table."""
    if name not in PARTS:
        raise ValueError(f"unknown part: {name}")
    return data_path_report.HEADERS if name == "data-path" else FIGURE_HEADERS


def part_table(name: str, figures: Mapping[str, Any]) -> tuple[Row, list[Row]]:
    """The headers and rows of one part's table: what ``make bench`` prints of it, and what
    ``python -m bench.publish`` writes into the documentation's performance data."""
    if name == "data-path":
        return part_headers(name), data_path_report.rows(figures)
    return part_headers(name), _MAIN[name][1](figures)


def main_rows(parts: Mapping[str, Any]) -> list[Row]:
    """``(part, figure, value)`` for the figures a reader compares, from the parts that ran
    (the data path has a table of its own)."""
    return [
        (label, *row)
        for name, (label, rows) in _MAIN.items()
        if name in parts
        for row in rows(parts[name])
    ]


MAIN_HEADERS: Row = ("part", "figure", "value")
FIGURE_HEADERS: Row = MAIN_HEADERS[1:]


def _failover_main(failover: Mapping[str, Any]) -> list[Row]:
    rows: list[Row] = []
    for setting in failover["settings"]:
        done = setting["summary"][PHASES[-1]]
        calls = setting["digitalocean_calls_per_move"]
        action = f"action {setting['action_latency']:g} s"
        rows += [
            (f"failover done, p50 / p95 ({done['n']} moves, {action})", p50_p95(done)),
            (
                f"change → assign request sent, p50 / p95 ({action})",
                p50_p95(setting["summary"]["assign_sent"]),
            ),
            (
                f"DO calls per move, live ({action})",
                f"{calls['all']:.1f} ({calls['writes']:.1f} writes)",
            ),
            (
                f"function invocations per move ({action})",
                f"{setting['invocations_per_move']:.2f}",
            ),
        ]
    ours = failover.get("cluster_access", "callback")
    other = failover.get("other_access") or {}
    rows += _beside(
        failover.get("load_balancer_class"),
        failover.get("class_ratio"),
        "LoadBalancer-class mode",
        "class mode / externalIPs mode",
    )
    theirs = other.get("cluster_access")
    rows += _beside(
        other or None, failover.get("access_ratio"), f"{theirs} mode", f"{theirs} / {ours}"
    )
    burst = failover.get("burst")
    if burst:
        rows.append(
            (
                f"invocations for {burst['changes']} readiness flips in {burst['seconds']:.2f} s",
                f"{burst['invocations']} ({burst['digitalocean_writes']} DO writes)",
            )
        )
    return rows


def _beside(
    run: Mapping[str, Any] | None,
    ratios: Sequence[Mapping[str, Any]] | None,
    name: str,
    ratio_name: str,
) -> list[Row]:
    """Rows of a run made beside the main one (its finished failovers), and their ratios."""
    rows: list[Row] = []
    for setting in run["settings"] if run else ():
        done = setting["summary"][PHASES[-1]]
        action = f"action {setting['action_latency']:g} s"
        rows.append(
            (
                f"{name}: failover done, p50 / p95 ({done['n']} moves, {action})",
                p50_p95(done),
            )
        )
    for ratio in ratios or ():
        rows.append(
            (
                f"{ratio_name}, p50 / p95 (action {ratio['action_latency']:g} s)",
                f"{ratio['p50']:.2f} / {ratio['p95']:.2f}",
            )
        )
    return rows


def _node_death_main(deaths: Mapping[str, Any]) -> list[Row]:
    alone = deaths.get("forwarder", {}).get("CONFIRM_WAIT")
    one_replica = f", one replica, CONFIRM_WAIT={alone}" if alone is not None else ""
    rows: list[Row] = []
    for kind, what in (("tcp", f"TCP Service{one_replica}"), ("udp", "UDP-only Service")):
        if kind in deaths:
            series = deaths[kind]
            rows.append(
                (
                    f"node loses power → assign request sent, {what} (p50 / p95 of {series['n']})",
                    p50_p95(series) + (_by_power(series) if kind == "tcp" else ""),
                )
            )
    loss = deaths.get("loss")
    if loss:
        rows.append(
            (
                f"false moves in {loss['minutes']:g} min at {loss['loss']:.0%} probe packet loss",
                f"{loss['false_moves']} ({len(loss['nodes_ever_suspected'])} nodes ever suspected)",
            )
        )
    return rows + _vantage_rows(deaths.get("vantage"))


def _by_power(series: Mapping[str, Any]) -> str:
    """The medians of the deaths whose listeners refused and of the silent ones: the series
    alternates them, refusing first (``bench/node_death_bench.py``)."""
    samples = series.get("samples") or []
    if len(samples) < 2:
        return ""
    refused, silent = samples[0::2], samples[1::2]
    return (
        f" (medians: refused {seconds(figures.percentile(refused, 50))},"
        f" silent {seconds(figures.percentile(silent, 50))})"
    )


def _vantage_rows(vantage: Mapping[str, Any] | None) -> list[Row]:
    """The second vantage point beside the single one (the ``tcp`` row above)."""
    if not vantage:
        return []
    rows: list[Row] = []
    for key, what in (
        ("confirmed", "confirmed by the standby"),
        (
            "standby_dead_too",
            f"standby dead too: the leader alone after CONFIRM_WAIT={vantage['confirm_wait']}",
        ),
    ):
        done = vantage[key]
        if done.get("n"):
            rows.append(
                (
                    f"two replicas, {what}, TCP (p50 / p95 of {done['n']})",
                    p50_p95(done),
                )
            )
    if "ratio_p95" in vantage:
        rows.append(
            (
                "two replicas confirmed / one judging alone (p50, p95)",
                f"{vantage['ratio_p50']:.2f} x, {vantage['ratio_p95']:.2f} x",
            )
        )
    moves = vantage["false_moves"]
    rows.append(
        (
            f"false moves, {vantage['partitions']} partitions: leader's node from the holder's",
            f"{moves['single_vantage']} one vantage point, {moves['two_replicas']} two replicas",
        )
    )
    lossy = vantage.get("one_node_loss")
    if lossy:
        rows.append(
            (
                f"false moves, two replicas, {lossy['minutes']:g} min at {lossy['loss']:.0%} "
                "loss on the holder's links",
                str(lossy["false_moves"]),
            )
        )
    cpu = vantage["cpu_seconds_per_minute"]
    rows.append(
        (
            "confirmation: writes per death; CPU s/min leader, standby (one replica)",
            f"{vantage['observation_writes_per_death']}; {cpu['leader']}, {cpu['standby']} "
            f"({vantage.get('single_cpu_per_minute', '?')})",
        )
    )
    return rows


def _calls(figures: Mapping[str, Any]) -> str:
    return (
        f"DO {figures['digitalocean']} ({figures['digitalocean_writes']} writes), "
        f"Kubernetes {figures['kubernetes']} ({figures['kubernetes_writes']} writes)"
    )


def _function_main(function: Mapping[str, Any]) -> list[Row]:
    decision = function["decision"]
    cold = function["cold_start"]
    return [
        ("calls per move (one invocation)", _calls(function["failover_calls"])),
        ("calls per idle resync", _calls(function["idle_resync_calls"])),
        ("calls for a first placement", _calls(function["first_placement_calls"])),
        (
            f"decision time, {decision['services']} Services on {decision['nodes']} nodes",
            f"{decision['median_ms']:.1f} ms (p95 {decision['p95_ms']:.1f} ms)",
        ),
        (
            "cold start from source: import / first reconcile",
            f"{seconds(cold['import_s'])} / {seconds(cold['first_reconcile_s'])}",
        ),
    ]


def _forwarder_main(forwarder: Mapping[str, Any]) -> list[Row]:
    objects = forwarder["objects"]
    burst = forwarder["burst_1000_pod_changes"]
    paced = forwarder["paced_1000_pod_changes"]
    latency = forwarder["change_to_post_seconds"]
    heartbeats = forwarder.get("node_heartbeats")
    used = forwarder.get("cpu_seconds_start_and_sync")
    cpu = f" ({seconds(used)} of CPU)" if used is not None else ""
    scale = f"{objects['pods']} pods, {objects['services']} Services, {objects['nodes']} nodes"
    return [
        (
            f"memory after sync / peak ({scale})",
            f"{forwarder['rss_mib_after_sync']:.0f} MiB / {forwarder['peak_rss_mib']:.0f} MiB",
        ),
        (
            "start to first sync / loading the cluster",
            f"{seconds(forwarder['sync_seconds'])}{cpu} / {seconds(forwarder['load_seconds'])}",
        ),
        ("POSTs per 1,000 pod changes in a burst", str(burst["posts"])),
        (
            f"POSTs per 1,000 pod changes at {paced['changes_per_second']:g}/s",
            str(paced["posts"]),
        ),
        *(
            [(f"POSTs for {heartbeats['nodes']} node heartbeats", str(heartbeats["posts"]))]
            if heartbeats
            else []
        ),
        (
            "change → POST, median / p90",
            f"{latency['median']:.3f} s / {latency['p90']:.3f} s",  # milliseconds matter here
        ),
        ("idle CPU", f"{forwarder['idle_cpu_percent']:.2f} %"),
    ]


def _probe_cost_main(cost: Mapping[str, Any]) -> list[Row]:
    """Probing on beside probing off, the same cluster in the same run."""
    on, off, ratios = cost["on"], cost["off"], cost["ratios_on_to_off"]
    targets = cost["objects"]["probe_targets"]
    return [
        (
            f"forwarder CPU, probing on / off ({targets} endpoint ports probed)",
            f"{on['cpu_percent']:.1f} % / {off['cpu_percent']:.1f} %"
            f" ({on['probes_per_second']:.0f} probes/s)",
        ),
        (
            "forwarder memory synced / peak, probing on / off",
            f"{on['rss_mib_synced']:.0f} / {on['peak_rss_mib']:.0f} MiB —"
            f" {off['rss_mib_synced']:.0f} / {off['peak_rss_mib']:.0f} MiB"
            f" ({ratios['peak_rss_mib']:.2f} x)",
        ),
    ]


def _zip_main(zipped: Mapping[str, Any]) -> list[Row]:
    rows: list[Row] = []
    for label, side in _sides(zipped):
        cold = side["cold_start"]
        rows += [
            (f"function zip size{label}", f"{side['zip_bytes'] / 1e6:.1f} MB"),
            (
                f"cold start of the zip, median of {cold['runs']}{label}",
                f"{seconds(cold['median_s'])} (unzip {seconds(cold['unzip_s'])},"
                f" import {seconds(cold['import_s'])},"
                f" first main {seconds(cold['first_main_s'])})",
            ),
            (f"warm invocation (idle resync){label}", seconds(side["warm_main_s"])),
        ]
    if "ratios" in zipped:
        ratios = zipped["ratios"]
        rows.append(
            (
                "new / old: zip size, cold start",
                f"{ratios['zip_bytes']:.2f} x, {ratios['cold_start']:.2f} x",
            )
        )
    return rows


def _sides(part: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    """A part measured old and new side by side, or (older results) once."""
    if "new" in part:
        return [(", new", part["new"])] + ([(", old", part["old"])] if "old" in part else [])
    return [("", part)]


def _big_cluster_main(big: Mapping[str, Any]) -> list[Row]:
    cluster = big["cluster"]
    scale = (
        f"{cluster['services']} Services ({cluster['opted_in']} opted in),"
        f" {cluster['nodes']} nodes, {cluster['pods']} pods"
    )
    rows: list[Row] = []
    for label, side in _sides(big):
        rows += [
            (
                f"idle resync, warm median / p95{label} ({scale})",
                f"{seconds(side['warm_median_s'])} / {seconds(side['warm_p95_s'])}",
            ),
            _big_cluster_bytes(label, side),
            *_big_cluster_by_resource(label, side),
            (
                f"peak RSS of the function process{label}",
                f"{side['peak_rss_mb']:.0f} MB",
            ),
        ]
    rows.append(
        (
            "memory limit (project.yml) / peak RSS, new",
            f"{big['memory_limit_mb']} MB / {big['new']['peak_rss_mb']:.0f} MB"
            f" = {big['margin']:.1f} x",
        )
    )
    return rows


def _big_cluster_bytes(label: str, side: Mapping[str, Any]) -> Row:
    """Bytes on the wire (the apiserver's count), and decoded when measured apart (compressed
    responses; older results had only the one figure)."""
    wire = f"{side['kube_bytes_per_invocation'] / 1e6:.2f} MB"
    decoded = side.get("kube_decoded_bytes_per_invocation")
    if decoded is None:
        return (f"Kubernetes bytes read per invocation{label}", wire)
    return (
        f"Kubernetes bytes per invocation, on the wire / decoded{label}",
        f"{wire} / {decoded / 1e6:.2f} MB",
    )


def _big_cluster_by_resource(label: str, side: Mapping[str, Any]) -> list[Row]:
    """The bytes on the wire per kind of object read, where they were counted apart."""
    by_resource = side.get("kube_bytes_by_resource")
    if not by_resource:
        return []
    each = ", ".join(f"{kind} {sent / 1e6:.2f}" for kind, sent in by_resource.items())
    return [(f"Kubernetes bytes on the wire by resource{label}", f"{each} MB")]


_MAIN: dict[str, tuple[str, Callable[[Mapping[str, Any]], list[Row]]]] = {
    "failover": ("failover", _failover_main),
    "node-death": ("node death", _node_death_main),
    "function": ("function", _function_main),
    "forwarder": ("forwarder", _forwarder_main),
    "probe-cost": ("probe-cost", _probe_cost_main),
    "zip": ("zip", _zip_main),
    "bigcluster": ("big cluster", _big_cluster_main),
}
"""Each part of the main table (every part but the data path's), its label there and its rows,
in ``PARTS`` order."""


def peers_rows(failover: Mapping[str, Any]) -> list[Row]:
    """This project's finished failovers beside the peers' documented floors."""
    rows: list[Row] = []
    for setting in failover["settings"]:
        done = setting["summary"][PHASES[-1]]
        rows.append(
            (
                f"this project, assign action {setting['action_latency']:g} s",
                p50_p95(done),
                f"measured here, p50 / p95 of {done['n']} moves (pod moved, node NotReady)",
            )
        )
    return rows + list(PEERS)


PEERS_HEADERS: Row = ("system", "failover", "why")


def node_death_peers_rows(deaths: Mapping[str, Any]) -> list[Row]:
    """This project's TCP node deaths beside the peers' documented figures."""
    tcp = deaths.get("tcp")
    ours: list[Row] = (
        [("this project, TCP Service", p50_p95(tcp), f"measured here, p50 / p95 of {tcp['n']}")]
        if tcp
        else []
    )
    return ours + list(NODE_DEATH_PEERS)


NODE_DEATH_PEERS_HEADERS: Row = ("system", "node loses power → IP leaves it", "source")


# --- the whole print-out ----------------------------------------------------------------------


def text_tables(parts: Mapping[str, Any]) -> str:
    """What ``make bench`` prints: the failover milestones, the main figures, the peers."""
    blocks: list[str] = []
    if "failover" in parts:
        failover = parts["failover"]
        blocks += [
            "Failover on the whole system: seconds from the cluster change",
            render(FAILOVER_HEADERS, failover_rows(failover)),
            "",
        ]
    rows = main_rows(parts)
    if rows:
        blocks += ["Main figures", render(MAIN_HEADERS, rows), ""]
    if "data-path" in parts:
        title = "What a client sees during a move (request every 10 ms; outage 0.01 s = none)"
        blocks += [
            title,
            render(data_path_report.HEADERS, data_path_report.rows(parts["data-path"])),
            "",
        ]
    if "failover" in parts:
        blocks += [
            "Beside the peers' documented failover floors",
            render(PEERS_HEADERS, peers_rows(parts["failover"])),
            "",
        ]
    if "node-death" in parts:
        blocks += [
            "Beside the peers' documented node-death figures",
            render(NODE_DEATH_PEERS_HEADERS, node_death_peers_rows(parts["node-death"])),
        ]
    return "\n".join(blocks).rstrip()


def markdown_tables(parts: Mapping[str, Any]) -> str:
    """The same tables in Markdown, peers first: what the README shows."""
    blocks: list[str] = []
    if "failover" in parts:
        blocks.append(markdown(PEERS_HEADERS, peers_rows(parts["failover"])))
        blocks.append(markdown(FAILOVER_HEADERS, failover_rows(parts["failover"])))
    if "node-death" in parts:
        deaths = parts["node-death"]
        blocks.append(markdown(NODE_DEATH_PEERS_HEADERS, node_death_peers_rows(deaths)))
    rows = main_rows(parts)
    if rows:
        blocks.append(markdown(MAIN_HEADERS, rows))
    if "data-path" in parts:
        blocks.append(markdown(data_path_report.HEADERS, data_path_report.rows(parts["data-path"])))
    return "\n\n".join(blocks) + "\n"
