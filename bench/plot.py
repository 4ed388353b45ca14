"""The failover latency distribution as a PNG: per action latency, the cumulative share of
moves that reached each milestone by a given time after the cluster change."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: no display, no GUI toolkit

import matplotlib.pyplot as plt

from bench.figures import PHASE_LABELS, PHASES


def failover_png(failover: Mapping[str, Any], path: Path) -> Path:
    settings = failover["settings"]
    figure, axes = plt.subplots(
        1, len(settings), figsize=(6 * len(settings), 4.5), sharey=True, squeeze=False
    )
    for axis, setting in zip(axes[0], settings, strict=True):
        moves = setting["moves"]
        for phase in PHASES:
            times = sorted(m["phases"][phase] for m in moves)
            shares = [(i + 1) / len(times) for i in range(len(times))]
            axis.step([0.0, *times], [0.0, *shares], where="post", label=PHASE_LABELS[phase])
        axis.set_title(f"assign action takes {setting['action_latency']:g} s ({len(moves)} moves)")
        axis.set_xlabel("seconds since the cluster change")
        axis.set_xlim(left=0)
        axis.set_ylim(0, 1.02)
        axis.grid(alpha=0.3)
    axes[0][0].set_ylabel("share of moves that reached the milestone")
    axes[0][0].legend(loc="upper left", fontsize="small")
    figure.suptitle("Failover on the whole system: pod moved and node NotReady, alternating")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path
