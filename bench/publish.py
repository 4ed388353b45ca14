"""``python -m bench.publish``: a bench run's tables into the documentation's performance data.

``make bench`` writes ``bench/results/results.json``. This reads it and, for each part that
ran, replaces that part's table in ``docs/performance-data.json`` with the rows ``make bench``
printed for it (``bench.report.part_table``, the same code) and the run's provenance: its
date, commit, command and machine. The tables of the parts that did not run stay as they
are. ``tools/docs_tables.py`` renders the tables where a page marks them.

Exit status: 0 published; 2 the results cannot be published (the message says why).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bench import report
from bench.machine import REPO, describe
from floating_ip.config import CALLBACK

RESULTS = REPO / "bench" / "results" / "results.json"
DATA = REPO / "docs" / "performance-data.json"

_TABLE_ID = re.compile(
    "^(?P<part>" + "|".join(map(re.escape, report.PARTS)) + r")"
    r"(?:-(?P<access>relay))?(?:-scale-(?P<scale>[1-9][0-9]*))?$"
)


class NotPublishable(Exception):
    """The results lack what a published table must say."""


def table_id(part: str, figures: Mapping[str, Any]) -> str:
    """The table a part's figures replace: the part's own, or, for a run the default install
    would not make (relay as the cluster access, the forwarder at another scale), a table of
    its own beside it."""
    name = part
    access = figures.get("cluster_access", CALLBACK)
    if access != CALLBACK:
        name += f"-{access}"
    scale = figures.get("scale", 1) if part == "forwarder" else 1
    if scale != 1:
        name += f"-scale-{scale}"
    return name


def part_of(table: str) -> str | None:
    """The part whose run a table holds, or None for a table no run writes."""
    found = _TABLE_ID.match(table)
    if found is None or (found["scale"] and found["part"] != "forwarder"):
        return None
    return found["part"]


def provenance(results: Mapping[str, Any]) -> dict[str, Any]:
    """What run measured the figures, as the documentation states it under a table."""
    command = results.get("command")
    if not command:
        raise NotPublishable(
            "results.json names no command (a bench from before it recorded one): run it again"
        )
    machine = results["machine"]
    return {
        "command": command,
        "date": machine["date"][:10],
        "commit": machine.get("commit"),
        "machine": describe(machine),
    }


def tables(results: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A table per part that ran, its rows as ``make bench`` printed them."""
    if results.get("schema") != report.SCHEMA:
        schema = results.get("schema")
        raise NotPublishable(f"results.json has schema {schema!r}, not {report.SCHEMA}")
    if not results["parts"]:
        raise NotPublishable("no part of that run has figures (see its failed parts)")
    run = provenance(results)
    out = []
    for part, figures in results["parts"].items():
        headers, rows = report.part_table(part, figures)
        out.append(
            {
                "id": table_id(part, figures),
                "columns": list(headers),
                "runs": [{**run, "rows": [list(row) for row in rows]}],
            }
        )
    return out


def publish(data: Mapping[str, Any], results: Mapping[str, Any]) -> dict[str, Any]:
    """``data`` with the tables of the parts in ``results`` replaced (or added at the end)."""
    new = {table["id"]: table for table in tables(results)}
    kept = [new.pop(table["id"], table) for table in data["tables"]]
    return {**data, "tables": kept + list(new.values())}


def main(argv: Sequence[str] | None = None) -> int:
    cli = argparse.ArgumentParser(
        prog="python -m bench.publish",
        description="Replaces the performance tables of the parts a bench run measured.",
    )
    cli.add_argument("--results", type=Path, default=RESULTS, help="default bench/results")
    cli.add_argument("--data", type=Path, default=DATA, help="default docs/performance-data.json")
    args = cli.parse_args(sys.argv[1:] if argv is None else argv)
    if not args.results.is_file():
        print(f"{args.results}: no results (make bench writes them)", file=sys.stderr)
        return 2
    results = json.loads(args.results.read_text())
    data = json.loads(args.data.read_text())
    try:
        updated = publish(data, results)
    except NotPublishable as why:
        print(f"{args.results}: {why}", file=sys.stderr)
        return 2
    args.data.write_text(json.dumps(updated, indent=2, ensure_ascii=False) + "\n")
    names = ", ".join(table["id"] for table in tables(results))
    print(f"replaced in {args.data}: {names}; say in CHANGELOG.md what they replaced")
    return 0


if __name__ == "__main__":
    sys.exit(main())
