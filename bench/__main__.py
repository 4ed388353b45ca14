"""``python -m bench``: every benchmark, one after the other; then ``results.json``, the failover
plot and the tables. Each part stops what it started, whatever happens; Ctrl-C or SIGTERM
stops the part under way cleanly.

Exit status: 0 every part ran; 1 a part failed (the others still ran, and the results say
why); 130 interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import shutil
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

from bench import (
    big_cluster_bench,
    data_path_bench,
    failover_bench,
    figures,
    forwarder_bench,
    function_bench,
    node_death_bench,
    probe_cost_bench,
    report,
    zip_bench,
)
from bench.failover_bench import FailoverOptions
from bench.machine import REPO, machine_info
from bench.plot import failover_png

RESULTS = REPO / "bench" / "results"
ORDER = report.PARTS  # the failover first: the figure that matters most, on an idle machine
OK, FAILED, INTERRUPTED = 0, 1, 130


def parse(argv: Sequence[str]) -> argparse.Namespace:
    cli = argparse.ArgumentParser(
        prog="python -m bench",
        description="Runs the benchmarks and writes results.json, failover.png and tables.",
    )
    cli.add_argument(
        "--only",
        type=_parts,
        default=ORDER,
        metavar="PART[,PART]",
        help=f"the parts to run, among {', '.join(ORDER)} (default: all)",
    )
    cli.add_argument(
        "--moves",
        type=int,
        default=failover_bench.DEFAULT_MOVES,
        help=f"failover moves per action latency (default {failover_bench.DEFAULT_MOVES})",
    )
    cli.add_argument(
        "--latency",
        type=_latencies,
        default=failover_bench.DEFAULT_LATENCIES,
        metavar="SECONDS[,SECONDS]",
        help="the assign action latencies to measure failover at (default 0,2)",
    )
    cli.add_argument(
        "--cluster-access",
        choices=("callback", "relay"),
        default="callback",
        help="how the function reaches the cluster in the failover and node-death parts "
        "(default callback; the failover part also runs the other, side by side)",
    )
    cli.add_argument(
        "--forwarder-scale",
        type=_scale,
        default=1,
        metavar="N",
        help="the forwarder part's cluster times N: 5,000 Pods, 1,000 Services and 200 Nodes "
        "at 1 (default), 50,000 Pods, 10,000 Services and 1,000 Nodes at 10; loading takes "
        "roughly N times as long",
    )
    cli.add_argument(
        "--out", type=Path, default=RESULTS, help="where the results go (default bench/results)"
    )
    cli.add_argument("--keep", action="store_true", help="keep the working files (logs)")
    return cli.parse_args(argv)


def command(args: argparse.Namespace) -> str:
    """The ``make`` command that measures what ``args`` measure: the options that change the
    figures, not where they are written."""
    default = parse([])
    given: list[str] = []
    if args.only != default.only:
        given += ["--only", ",".join(args.only)]
    if args.moves != default.moves:
        given += ["--moves", str(args.moves)]
    if args.latency != default.latency:
        given += ["--latency", ",".join(f"{v:g}" for v in args.latency)]
    if args.cluster_access != default.cluster_access:
        given += ["--cluster-access", args.cluster_access]
    if args.forwarder_scale != default.forwarder_scale:
        given += ["--forwarder-scale", str(args.forwarder_scale)]
    return "make bench" + (f' BENCH_ARGS="{" ".join(given)}"' if given else "")


def _parts(text: str) -> tuple[str, ...]:
    wanted = [p.strip() for p in text.split(",") if p.strip()]
    unknown = [p for p in wanted if p not in ORDER]
    if unknown or not wanted:
        raise argparse.ArgumentTypeError(f"parts are {', '.join(ORDER)}; not {text!r}")
    return tuple(p for p in ORDER if p in wanted)


def _scale(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: at least 1")
    return value


def _latencies(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: comma-separated seconds") from None
    if not values or any(v < 0 for v in values):
        raise argparse.ArgumentTypeError(f"{text!r}: seconds, none negative")
    return values


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    workdir = Path(tempfile.mkdtemp(prefix="floating-ip-bench-"))
    _interrupt_on_signals()
    machine = machine_info()
    print(f"benchmarks: {', '.join(args.only)} — {machine['cores']} cores, {machine['cpu']}")
    print(f"working files: {workdir}")
    runners: dict[str, Callable[[Path], Any]] = {
        "failover": lambda log: _failover(
            FailoverOptions(
                moves=args.moves, latencies=args.latency, cluster_access=args.cluster_access
            ),
            workdir / "failover",
            log,
        ),
        "node-death": lambda log: _in_namespace(
            lambda work, out: node_death_bench.run(work, out, cluster_access=args.cluster_access),
            workdir / "node-death",
            log,
        ),
        "function": lambda log: _quietly(function_bench.main, log),
        "forwarder": lambda log: _quietly(lambda: forwarder_bench.main(args.forwarder_scale), log),
        "probe-cost": lambda log: _in_namespace(probe_cost_bench.run, workdir / "probe-cost", log),
        "zip": lambda _log: zip_bench.run(workdir / "zip"),
        "bigcluster": lambda log: _quietly(
            lambda: big_cluster_bench.run(workdir / "bigcluster"), log
        ),
        "data-path": lambda log: _in_namespace(data_path_bench.run, workdir / "data-path", log),
    }
    parts: dict[str, Any] = {}
    failed: dict[str, str] = {}
    took: dict[str, float] = {}
    began = time.monotonic()
    code = OK
    try:
        for name in args.only:
            print(f"[{time.monotonic() - began:6.0f} s] {name} …", flush=True)
            started = time.monotonic()
            try:
                parts[name] = _isolated(lambda n=name: runners[n](workdir / f"{n}.log"))
            except Exception as error:  # one part failing must not lose the others' figures
                failed[name] = f"{type(error).__name__}: {error}"
                (workdir / f"{name}.error").write_text(traceback.format_exc())
                print(f"  {name} failed: {failed[name][:500]}", flush=True)
                code = FAILED
            took[name] = time.monotonic() - started
    except KeyboardInterrupt:
        print("interrupted: everything the bench started is stopped", flush=True)
        code = INTERRUPTED
    took["total"] = time.monotonic() - began
    if parts or failed:
        _write(args.out, report.document(machine, took, parts, failed, command=command(args)))
    if args.keep or code != OK:
        print(f"logs and working files kept in {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    return code


def _failover(options: FailoverOptions, workdir: Path, log: Path) -> Any:
    """externalIPs mode (with the burst), then the same moves in LoadBalancer-class mode, then
    in the other cluster access (relay beside callback), each on a fresh system, side by side
    in one result with their ratios."""
    other_access = "relay" if options.cluster_access == "callback" else "callback"
    with log.open("w") as out:
        external = failover_bench.run(options, workdir / "externalips", out)
        by_class = dataclasses.replace(options, burst=False, mode=failover_bench.CLASS_MODE)
        in_class = failover_bench.run(by_class, workdir / "class", out)
        by_access = dataclasses.replace(options, burst=False, cluster_access=other_access)
        other = failover_bench.run(by_access, workdir / other_access, out)
    return {
        **external,
        "cluster_access": options.cluster_access,
        "load_balancer_class": in_class,
        "class_ratio": figures.mode_ratio(external, in_class),
        "other_access": {**other, "cluster_access": other_access},
        "access_ratio": figures.mode_ratio(external, other),
    }


def _in_namespace(run: Callable[[Path, TextIO], Any], workdir: Path, log: Path) -> Any:
    """A part that re-runs itself in a private network namespace, its output into its log."""
    with log.open("w") as out:
        return run(workdir, out)


def _quietly(run: Callable[[], Any], log: Path) -> Any:
    """A part that prints its figures as JSON: into its log, not onto the table."""
    with log.open("w") as out, contextlib.redirect_stdout(out):
        return run()


def _isolated(run: Callable[[], Any]) -> Any:
    """Runs a part with the environment restored after it (one part sets a CA bundle)."""
    saved = dict(os.environ)
    try:
        return run()
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _write(out: Path, results: dict[str, Any]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    written = [out / "results.json"]
    parts = results["parts"]
    if "failover" in parts:
        written.append(failover_png(parts["failover"], out / "failover.png"))
    text = report.text_tables(parts)
    (out / "tables.md").write_text(report.markdown_tables(parts))
    written.append(out / "tables.md")
    if text:
        print(f"\n{text}\n")
    for name, seconds in results["seconds"].items():
        print(f"{name}: {seconds:.0f} s", end="; " if name != "total" else "\n")
    for name, why in results["failed"].items():
        print(f"FAILED {name}: {why[:300]}")
    print("wrote " + ", ".join(str(p) for p in written))


def _interrupt_on_signals() -> None:
    """SIGTERM ends the bench as Ctrl-C does: the part under way stops what it started."""

    def interrupt(_signum: int, _frame: FrameType | None) -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)


if __name__ == "__main__":
    sys.exit(main())
