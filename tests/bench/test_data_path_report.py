"""The data-path part's table, from a result shaped as the bench writes it."""

from __future__ import annotations

from typing import Any

from bench import data_path_report, report


def stats(p50: float, p95: float) -> dict[str, float]:
    return {"n": 10, "p50": p50, "p95": p95, "min": p50, "max": p95, "mean": p50}


def case(outage: float, lost: float, held: dict[str, int]) -> dict[str, Any]:
    protocol = {"outage_s": stats(outage, outage + 0.1), "lost": stats(lost, lost + 2)}
    return {"moves": 10, "TCP": protocol, "UDP": protocol, "established_tcp": held}


PART = {
    "moves_per_case": 10,
    "interval_s": 0.01,
    "runs": [
        {
            "mode": "nftables",
            "action_latency_s": 2.0,
            "cases": {"drained": case(0.01, 0, {"reset": 9, "timeout": 1})},
        }
    ],
}


def test_one_row_per_mode_action_and_case() -> None:
    assert data_path_report.rows(PART) == [
        (
            "nftables",
            "2 s",
            "drained",
            "10",
            "0.01 / 0.11 s",
            "0.01 / 0.11 s",
            "0 / 0 (2 / 2)",
            "reset 9, timeout 1",
        )
    ]


def test_the_printed_and_markdown_tables_carry_it() -> None:
    parts = {"data-path": PART}
    assert "What a client sees during a move" in report.text_tables(parts)
    assert "| nftables | 2 s | drained |" in report.markdown_tables(parts)
