"""The data-path part's table: what a client saw per move, per proxy mode, action and case."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

Row = tuple[str, ...]

HEADERS: Row = (
    "proxy",
    "action",
    "case",
    "moves",
    "TCP outage p50 / p95",
    "UDP outage p50 / p95",
    "lost TCP / UDP p50 (p95)",
    "open TCP connection",
)


def _seconds(stats: Mapping[str, Any]) -> str:
    return f"{stats['p50']:.2f} / {stats['p95']:.2f} s"


def rows(part: Mapping[str, Any]) -> list[Row]:
    out: list[Row] = []
    for run in part["runs"]:
        for case, seen in run["cases"].items():
            tcp, udp = seen["TCP"], seen["UDP"]
            lost = (
                f"{tcp['lost']['p50']:g} / {udp['lost']['p50']:g} "
                f"({tcp['lost']['p95']:g} / {udp['lost']['p95']:g})"
            )
            held = ", ".join(f"{kind} {n}" for kind, n in sorted(seen["established_tcp"].items()))
            out.append(
                (
                    run["mode"],
                    f"{run['action_latency_s']:g} s",
                    case,
                    str(seen["moves"]),
                    _seconds(tcp["outage_s"]),
                    _seconds(udp["outage_s"]),
                    lost,
                    held,
                )
            )
    return out
