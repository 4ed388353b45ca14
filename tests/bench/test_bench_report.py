"""The benchmarks' pure parts: percentiles, failover milestones, the replayed rate limit, the
results document and its tables. Fast: no server, no clock."""

from __future__ import annotations

import json
import random
from typing import Any

import numpy
import pytest

from bench import data_path_report, figures, report
from bench.figures import Move, PhaseMissing, Recorded

# --- percentiles ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("samples", "p", "expected"),
    [
        ([3.0], 50, 3.0),
        ([1.0, 2.0, 3.0, 4.0], 50, 2.5),  # even count: between the middle two
        ([4.0, 1.0, 3.0, 2.0], 0, 1.0),  # order does not matter
        ([4.0, 1.0, 3.0, 2.0], 100, 4.0),
        ([float(n) for n in range(1, 21)], 95, 19.05),
    ],
)
def test_percentile(samples: list[float], p: float, expected: float) -> None:
    assert figures.percentile(samples, p) == pytest.approx(expected)


def test_percentile_agrees_with_numpy_on_random_samples() -> None:
    rng = random.Random(5)
    for size in (2, 7, 30, 31):
        samples = [rng.uniform(0, 12) for _ in range(size)]
        for p in (50, 90, 95, 99):
            assert figures.percentile(samples, p) == pytest.approx(numpy.percentile(samples, p))


@pytest.mark.parametrize(
    ("samples", "p", "message"),
    [
        ([], 50, "^no samples$"),
        ([1.0], -1, "^percentile -1 is outside 0-100$"),
        ([1.0], 101, "^percentile 101 is outside 0-100$"),
    ],
)
def test_percentile_refuses_no_samples_and_impossible_ranks(
    samples: list[float], p: int, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        figures.percentile(samples, p)


def test_distribution_rounds_and_counts() -> None:
    assert figures.distribution([1.0, 2.0, 3.0, 4.00049]) == {
        "n": 4,
        "p50": 2.5,
        "p95": 3.85,
        "min": 1.0,
        "max": 4.0,
        "mean": 2.5,
    }


# --- one failover's milestones ----------------------------------------------------------------

OLD, NEW = "10.17.0.5", "10.17.0.6"
TARGET, SOURCE = 510000002, 510000001


def timeline() -> Recorded:
    """A move at t=100: make-before-break, as the function does it, with older history."""
    return Recorded(
        external_ips=[(90.0, (OLD,)), (100.7, (OLD, NEW)), (101.0, (NEW,))],
        assigns=[(80.0, TARGET), (100.72, 510000003), (100.75, TARGET)],
        holders=[(80.1, TARGET), (85.0, SOURCE), (102.76, TARGET)],
    )


def test_phases_are_seconds_from_the_change_to_each_first_sighting() -> None:
    found = figures.phases(Move(100.0, TARGET, NEW, OLD), timeline())
    assert found == pytest.approx(
        {
            "externalips_added": 0.7,
            "assign_sent": 0.75,  # the request for another droplet does not count
            "action_completed": 2.76,  # the IP was on the target long before: not this move
            "externalips_final": 1.0,
        }
    )
    assert list(found) == list(figures.PHASES)


def test_the_old_anchor_still_listed_is_not_done() -> None:
    seen = timeline()
    stuck = Recorded([(90.0, (OLD,)), (100.7, (OLD, NEW))], seen.assigns, seen.holders)
    with pytest.raises(PhaseMissing, match="reduced to"):
        figures.phases(Move(100.0, TARGET, NEW, OLD), stuck)


def test_a_move_without_an_assign_request_is_missing_a_phase() -> None:
    seen = timeline()
    with pytest.raises(PhaseMissing, match="assign request"):
        figures.phases(Move(100.0, TARGET, NEW, OLD), Recorded(seen.external_ips, [], seen.holders))


# --- the figures of one action latency --------------------------------------------------------


def move(kind: str, done: float, calls: int = 4, invocations: int = 1) -> dict[str, Any]:
    return {
        "kind": kind,
        "from": "node-a",
        "to": "node-b",
        "phases": {
            "externalips_added": done - 0.3,
            "assign_sent": done - 0.29,
            "action_completed": done - 0.28,
            "externalips_final": done,
        },
        "digitalocean_calls": calls,
        "digitalocean_writes": 1,
        "invocations": invocations,
    }


KINDS = ("pod moved", "node NotReady")


def setting(latency: float = 0.0) -> dict[str, Any]:
    # 21 moves: the 50th and 95th percentiles fall on samples (ranks 10 and 19).
    moves = [move(KINDS[n % 2], 1.0 + n / 10 + latency, calls=4 + n % 2) for n in range(21)]
    return figures.setting_summary(latency, moves, KINDS)


def test_a_setting_summarises_all_moves_and_each_kind() -> None:
    summary = setting()
    assert summary["action_latency"] == 0.0
    done = summary["summary"]["externalips_final"]
    assert (done["n"], done["p50"], done["p95"]) == (21, 2.0, 2.9)
    assert summary["summary"]["externalips_added"]["p50"] == pytest.approx(1.7)
    pod_moved = summary["by_kind"]["pod moved"]["externalips_final"]
    assert (pod_moved["n"], pod_moved["max"]) == (11, 3.0)
    not_ready = summary["by_kind"]["node NotReady"]["externalips_final"]
    assert (not_ready["n"], not_ready["min"]) == (10, 1.1)
    assert summary["digitalocean_calls_per_move"] == {"all": 4.48, "writes": 1.0}
    assert summary["invocations_per_move"] == 1.0
    assert len(summary["moves"]) == 21


def test_a_kind_without_moves_is_left_out() -> None:
    summary = figures.setting_summary(2.0, [move("pod moved", 3.0)], KINDS)
    assert list(summary["by_kind"]) == ["pod moved"]


# --- the forwarder's token bucket, replayed ---------------------------------------------------


def test_the_bucket_starts_empty_and_refills_up_to_its_burst() -> None:
    assert figures.tokens_left([], 0.0, per_second=1, burst=10, since=0.0) == 0
    assert figures.tokens_left([], 4.0, per_second=1, burst=10, since=0.0) == 4
    assert figures.tokens_left([], 60.0, per_second=1, burst=10, since=0.0) == 10


def test_each_send_takes_a_token_and_older_sends_do_not_count() -> None:
    sends = [-5.0, 20.0, 20.1, 20.2, 25.0]  # the first is before the bench looked
    left = figures.tokens_left(sends, 26.0, per_second=1, burst=10, since=0.0)
    # 10 by 20.0, less three sends: 7.2 at 20.2; full again by 25.0, less one; full at 26.0.
    assert left == pytest.approx(10.0)
    assert figures.tokens_left(sends, 25.5, per_second=1, burst=10, since=0.0) == pytest.approx(9.5)


def test_a_drained_bucket_says_how_long_to_wait() -> None:
    sends = [n / 10 for n in range(100)]  # ten a second, more than it can pay for: empty
    assert figures.tokens_left(sends, 9.9, per_second=1, burst=10, since=0.0) == 0
    wait = figures.seconds_until_tokens(sends, 10.0, 3, per_second=1, burst=10, since=0.0)
    assert wait == pytest.approx(2.9)
    assert figures.seconds_until_tokens([], 30.0, 3, per_second=1, burst=10, since=0.0) == 0


def test_more_tokens_than_the_burst_are_never_there() -> None:
    with pytest.raises(ValueError, match=r"^11 tokens never fit a bucket of 10$"):
        figures.seconds_until_tokens([], 0.0, 11, per_second=1, burst=10, since=0.0)


def test_a_full_minute_waits_until_enough_of_its_oldest_requests_age_out() -> None:
    counted = [float(n) for n in range(10)]  # ten requests at 0..9 s
    room = figures.seconds_until_window_room
    assert room(counted, 10.0, 2, limit=12, window=60.0) == 0  # 10 + 2 fit
    assert room(counted, 10.0, 4, limit=12, window=60.0) == pytest.approx(51.0)  # 0 and 1 go
    assert room(counted, 65.0, 4, limit=12, window=60.0) == 0  # 0..4 already gone
    assert room([], 0.0, 12, limit=12, window=60.0) == 0


def test_more_requests_than_the_window_holds_never_fit() -> None:
    with pytest.raises(ValueError, match=r"^13 requests never fit a window of 12$"):
        figures.seconds_until_window_room([], 0.0, 13, limit=12, window=60.0)


# --- tables -----------------------------------------------------------------------------------


def test_render_pads_columns_and_aligns_numbers_right() -> None:
    text = report.render(
        ("system", "moves", "note"),
        [("ours", "30", "12 ms"), ("a peer with a long name", "7", "a few seconds")],
    )
    assert text.splitlines() == [
        "system                   moves  note",
        "-----------------------  -----  -------------",
        "ours                        30  12 ms",
        "a peer with a long name      7  a few seconds",
    ]


def test_render_refuses_a_row_of_the_wrong_width() -> None:
    with pytest.raises(ValueError, match="2 cells"):
        report.render(("a", "b", "c"), [("1", "2")])


def test_markdown_escapes_pipes() -> None:
    assert report.markdown(("a", "b"), [("x|y", "1")]).splitlines() == [
        "| a | b |",
        "| --- | --- |",
        "| x\\|y | 1 |",
    ]


# --- the results document ---------------------------------------------------------------------


def parts() -> dict[str, Any]:
    """Each part's figures, shaped as its benchmark returns them (only what the tables read,
    plus a little)."""
    calls = {"digitalocean": 4, "digitalocean_writes": 1, "kubernetes": 7, "kubernetes_writes": 3}
    return {
        "failover": {
            "moves_per_setting": 21,
            "settings": [setting(0.0), setting(2.0)],
            "burst": {
                "changes": 20,
                "pods": 2,
                "seconds": 0.8,
                "invocations": 1,
                "digitalocean_calls": 2,
                "digitalocean_writes": 0,
                "ip_stayed": True,
            },
        },
        "function": {
            "decision": {"services": 300, "nodes": 100, "median_ms": 40.5, "p95_ms": 51.2},
            "first_placement_calls": calls,
            "idle_resync_calls": {**calls, "digitalocean_writes": 0, "kubernetes_writes": 0},
            "failover_calls": calls,
            "cold_start": {
                "process_to_answer_s": 1.9,
                "import_s": 0.8,
                "first_reconcile_s": 0.6,
            },
        },
        "forwarder": {
            "objects": {"nodes": 200, "services": 1000, "pods": 5000},
            "rss_mib_after_sync": 37.5,
            "peak_rss_mib": 39.2,
            "sync_seconds": 2.41,
            "load_seconds": 95.3,
            "burst_1000_pod_changes": {"posts": 16},
            "paced_1000_pod_changes": {"posts": 52, "changes_per_second": 20.0},
            "change_to_post_seconds": {"median": 0.53, "p90": 0.54},
            "idle_cpu_percent": 0.2,
        },
        "zip": {
            "zip_bytes": 36_814_279,
            "cold_start": {
                "runs": 3,
                "median_s": 3.1,
                "unzip_s": 2.0,
                "import_s": 0.5,
                "first_main_s": 0.6,
            },
            "warm_main_s": 0.03,
        },
    }


MACHINE = {"cores": 2, "python": "3.11.7", "date": "2026-11-26T12:00:00+00:00"}


def test_the_document_keeps_the_parts_in_order_with_machine_and_durations() -> None:
    figures_by_part = parts()
    shuffled = {name: figures_by_part[name] for name in ("zip", "forwarder", "failover")}
    doc = report.document(
        MACHINE, {"failover": 250.04, "total": 600.0}, shuffled, {"function": "boom"}
    )
    assert doc["schema"] == report.SCHEMA
    assert doc["machine"] == MACHINE
    assert doc["seconds"] == {"failover": 250.0, "total": 600.0}
    assert list(doc["parts"]) == ["failover", "forwarder", "zip"]
    assert doc["failed"] == {"function": "boom"}
    assert json.loads(json.dumps(doc)) == doc  # plain JSON, nothing lost


def test_the_document_refuses_an_unknown_part() -> None:
    with pytest.raises(ValueError, match="nonsense"):
        report.document(MACHINE, {}, {"nonsense": {}})


def test_the_failover_table_has_every_milestone_per_latency_then_each_kind() -> None:
    rows = report.failover_rows(parts()["failover"])
    assert len(rows) == 2 * (len(figures.PHASES) + 2)
    first = rows[0]
    assert first == ("0 s", "all", "21", "change → new anchor in externalIPs", "1.70 s / 2.60 s")
    done_2s = [r for r in rows if r[0] == "2 s" and r[1] == "all"][-1]
    assert done_2s[3] == "change → old anchor dropped (done)"
    assert done_2s[4] == "4.00 s / 4.90 s"
    assert {r[1] for r in rows} == {"all", "pod moved", "node NotReady"}


def test_the_main_table_covers_each_part_that_ran() -> None:
    every = report.main_rows(parts())
    assert {r[0] for r in every} == {"failover", "function", "forwarder", "zip"}
    values = {r[1]: r[2] for r in every}
    assert values["failover done, p50 / p95 (21 moves, action 0 s)"] == "2.00 s / 2.90 s"
    assert values["invocations for 20 readiness flips in 0.80 s"] == "1 (0 DO writes)"
    assert values["calls per idle resync"] == "DO 4 (0 writes), Kubernetes 7 (0 writes)"
    assert values["function zip size"] == "36.8 MB"
    assert values["POSTs per 1,000 pod changes in a burst"] == "16"
    assert values["start to first sync / loading the cluster"] == "2.41 s / 95.3 s"
    only_zip = report.main_rows({"zip": parts()["zip"]})
    assert {r[0] for r in only_zip} == {"zip"}


def test_the_peers_table_puts_the_measured_failover_first() -> None:
    rows = report.peers_rows(parts()["failover"])
    assert rows[0][:2] == ("this project, assign action 0 s", "2.00 s / 2.90 s")
    assert rows[1][0] == "this project, assign action 2 s"
    assert [r[1] for r in rows[2:]] == [
        "no published figure",
        "30 s",
        "a few seconds",
        "5-15 s",
        "300 s",
    ]


def test_the_printed_and_markdown_tables_hold_the_same_figures() -> None:
    text = report.text_tables(parts())
    md = report.markdown_tables(parts())
    for figure in ("2.00 s / 2.90 s", "36.8 MB", "flipop (DigitalOcean)", "300 s"):
        assert figure in text
        assert figure in md
    assert report.text_tables({}) == ""


def side(zip_bytes: int, median_s: float) -> dict[str, Any]:
    return {
        "zip_bytes": zip_bytes,
        "cold_start": {
            "runs": 5,
            "median_s": median_s,
            "unzip_s": median_s / 2,
            "import_s": 0.5,
            "first_main_s": 0.4,
        },
        "warm_main_s": 0.03,
    }


def big_side(p95: float, rss: float, read: int) -> dict[str, Any]:
    return {
        "first_s": 0.9,
        "warm_median_s": p95 - 0.05,
        "warm_p95_s": p95,
        "peak_rss_mb": rss,
        "kube_bytes_per_invocation": read,
    }


def test_old_and_new_are_tabled_side_by_side_with_their_ratios() -> None:
    zipped = {
        "new": side(19_100_000, 1.8),
        "old": side(36_800_000, 3.6),
        "ratios": {"zip_bytes": 0.52, "cold_start": 0.5},
    }
    big = {
        "cluster": {"services": 1000, "opted_in": 30, "nodes": 200, "pods": 5000},
        "new": big_side(0.4, 70.0, 1_500_000),
        "old": big_side(1.1, 90.0, 2_400_000),
        "memory_limit_mb": 256,
        "margin": 3.66,
    }
    values = {r[1]: r[2] for r in report.main_rows({"zip": zipped, "bigcluster": big})}
    assert values["function zip size, new"] == "19.1 MB"
    assert values["function zip size, old"] == "36.8 MB"
    assert values["new / old: zip size, cold start"] == "0.52 x, 0.50 x"
    scale = "1000 Services (30 opted in), 200 nodes, 5000 pods"
    assert values[f"idle resync, warm median / p95, new ({scale})"] == "0.35 s / 0.40 s"
    assert values["Kubernetes bytes read per invocation, old"] == "2.40 MB"
    assert values["peak RSS of the function process, new"] == "70 MB"
    assert values["memory limit (project.yml) / peak RSS, new"] == "256 MB / 70 MB = 3.7 x"


def test_big_cluster_bytes_on_the_wire_are_tabled_beside_the_decoded_ones() -> None:
    new = {**big_side(0.4, 70.0, 900_000), "kube_decoded_bytes_per_invocation": 3_200_000}
    old = {**big_side(1.1, 90.0, 3_200_000), "kube_decoded_bytes_per_invocation": 3_200_000}
    big = {
        "cluster": {"services": 1000, "opted_in": 30, "nodes": 200, "pods": 5000},
        "new": new,
        "old": old,
        "memory_limit_mb": 256,
        "margin": 3.66,
    }
    values = {r[1]: r[2] for r in report.main_rows({"bigcluster": big})}
    label = "Kubernetes bytes per invocation, on the wire / decoded"
    assert values[f"{label}, new"] == "0.90 MB / 3.20 MB"
    assert values[f"{label}, old"] == "3.20 MB / 3.20 MB"


def test_class_mode_is_compared_with_external_ips_mode_per_latency() -> None:
    external = parts()["failover"]
    elsewhere = {"settings": [setting(0.5)]}
    assert figures.mode_ratio(external, elsewhere) == [], "only latencies both modes measured"
    in_class = {"settings": [setting(0.0), setting(2.0)]}
    in_class["settings"][1] = setting(2.0 + 0.4)
    in_class["settings"][1]["action_latency"] = 2.0
    ratios = figures.mode_ratio(external, in_class)
    assert [r["action_latency"] for r in ratios] == [0.0, 2.0]
    assert (ratios[0]["p50"], ratios[0]["p95"]) == (1.0, 1.0)
    assert ratios[1]["p50"] == pytest.approx(4.4 / 4.0, abs=1e-3)
    both = {**external, "load_balancer_class": in_class, "class_ratio": ratios}
    values = {r[1]: r[2] for r in report.main_rows({"failover": both})}
    assert values["class mode / externalIPs mode, p50 / p95 (action 2 s)"] == "1.10 / 1.08"
    assert "LoadBalancer-class mode: failover done, p50 / p95 (21 moves, action 0 s)" in values


def test_relay_is_compared_with_callback_per_latency() -> None:
    callback = parts()["failover"]
    relay = {"settings": [setting(0.0), setting(2.0 + 0.5)]}
    relay["settings"][1]["action_latency"] = 2.0
    both = {
        **callback,
        "cluster_access": "callback",
        "other_access": {**relay, "cluster_access": "relay"},
        "access_ratio": figures.mode_ratio(callback, relay),
    }
    values = {r[1]: r[2] for r in report.main_rows({"failover": both})}
    assert values["relay / callback, p50 / p95 (action 2 s)"] == "1.12 / 1.10"
    assert "relay mode: failover done, p50 / p95 (21 moves, action 0 s)" in values


def test_the_probe_cost_rows_put_probing_on_beside_off() -> None:
    side = {
        "cpu_percent": 0.4,
        "rss_mib_synced": 40.2,
        "peak_rss_mib": 43.0,
        "probes_per_second": 0,
    }
    cost = {
        "objects": {"probe_targets": 1000},
        "off": side,
        "on": {**side, "cpu_percent": 12.5, "peak_rss_mib": 47.3, "probes_per_second": 998.0},
        "ratios_on_to_off": {"peak_rss_mib": 1.1},
    }
    values = {r[1]: r[2] for r in report.main_rows({"probe-cost": cost})}
    cpu = values["forwarder CPU, probing on / off (1000 endpoint ports probed)"]
    assert cpu == "12.5 % / 0.4 % (998 probes/s)"
    memory = values["forwarder memory synced / peak, probing on / off"]
    assert memory == "40 / 47 MiB — 40 / 43 MiB (1.10 x)"


def deaths() -> dict[str, Any]:
    """A node-death result: the TCP series alternates refused and silent deaths."""
    samples = [2.0, 2.5, 2.1, 2.6]
    return {
        "tcp": {"n": 4, "p50": 2.3, "p95": 2.59, "max": 2.6, "samples": samples},
        "udp": {"n": 2, "p50": 19.0, "p95": 20.0, "max": 20.0, "samples": [19.0, 20.0]},
        "loss": None,
        "forwarder": {"NODE_PROBES": "on", "CONFIRM_WAIT": "0s"},
        "vantage": {
            "confirmed": {"n": 2, "p50": 2.5, "p95": 2.6},
            "standby_dead_too": {"n": 0},
            "confirm_wait": "3s",
            "observation_writes_per_death": 3.9,
            "cpu_seconds_per_minute": {"leader": 0.32, "standby": 0.11},
            "single_cpu_per_minute": 0.28,
            "one_node_loss": None,
            "partitions": 4,
            "false_moves": {"two_replicas": 0, "single_vantage": 4},
        },
    }


def test_the_node_death_rows_say_how_the_replica_judged_and_split_the_tcp_deaths() -> None:
    headers, rows = report.part_table("node-death", deaths())
    assert headers == ("figure", "value")
    values = {row[0]: row[1] for row in rows}
    tcp = "node loses power → assign request sent, TCP Service, one replica, CONFIRM_WAIT=0s"
    assert values[f"{tcp} (p50 / p95 of 4)"] == (
        "2.30 s / 2.59 s (medians: refused 2.05 s, silent 2.55 s)"
    )
    assert values["node loses power → assign request sent, UDP-only Service (p50 / p95 of 2)"] == (
        "19.0 s / 20.0 s"
    )
    assert values["two replicas, confirmed by the standby, TCP (p50 / p95 of 2)"] == (
        "2.50 s / 2.60 s"
    )
    assert not any("standby dead too" in figure for figure in values), "no such death: no row"
    assert values["false moves, 4 partitions: leader's node from the holder's"] == (
        "4 one vantage point, 0 two replicas"
    )
    peers = report.node_death_peers_rows(deaths())
    assert peers[0][:2] == ("this project, TCP Service", "2.30 s / 2.59 s")
    assert peers[1:] == list(report.NODE_DEATH_PEERS)
    assert "Beside the peers' documented node-death figures" in report.text_tables(
        {"node-death": deaths()}
    )


def test_the_forwarders_rows_carry_its_cpu_to_sync_and_its_node_heartbeats() -> None:
    forwarder = {
        **parts()["forwarder"],
        "cpu_seconds_start_and_sync": 1.25,
        "node_heartbeats": {"posts": 0, "nodes": 200},
        "change_to_post_seconds": {"median": 0.012, "p90": 0.013},
    }
    values = {r[0]: r[1] for r in report.part_table("forwarder", forwarder)[1]}
    assert values["start to first sync / loading the cluster"] == "2.41 s (1.25 s of CPU) / 95.3 s"
    assert values["POSTs for 200 node heartbeats"] == "0"
    assert values["change → POST, median / p90"] == "0.012 s / 0.013 s"


def test_the_big_clusters_bytes_are_broken_down_by_resource() -> None:
    side = {**big_side(0.4, 70.0, 620_000), "kube_bytes_by_resource": {"nodes": 350_000}}
    big = {
        "cluster": {"services": 1000, "opted_in": 30, "nodes": 200, "pods": 5000},
        "new": side,
        "memory_limit_mb": 256,
        "margin": 3.66,
    }
    values = {r[0]: r[1] for r in report.part_table("bigcluster", big)[1]}
    assert values["Kubernetes bytes on the wire by resource, new"] == "nodes 0.35 MB"


def test_each_part_has_one_table_and_an_unknown_part_none() -> None:
    assert report.part_headers("data-path") == data_path_report.HEADERS
    assert {report.part_headers(p) for p in report.PARTS if p != "data-path"} == {
        report.FIGURE_HEADERS
    }
    with pytest.raises(ValueError, match="unknown part: nonsense"):
        report.part_headers("nonsense")
