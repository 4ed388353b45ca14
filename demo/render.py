"""How the narration looks: timestamps, aligned columns, colour only on a terminal (pure)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from demo.model import Change, Droplet, Kind, Snapshot, StepResult, name_of, port_list

if TYPE_CHECKING:
    from demo.data_path import ClientSaw

WHO_WIDTH = 14
RULE_WIDTH = 78

_CODES = {
    "bold": "1",
    "dim": "2",
    "red": "31",
    "green": "32",
    "yellow": "33",
    "blue": "34",
    "magenta": "35",
    "cyan": "36",
}
KIND_COLOURS = {
    Kind.ACTION: "yellow",
    Kind.HOLDER: "green",
    Kind.SERVICE: "cyan",
    Kind.FIREWALL: "magenta",
}


@dataclass(frozen=True)
class Style:
    color: bool

    def paint(self, text: str, *styles: str) -> str:
        if not self.color or not styles or not text:
            return text
        codes = ";".join(_CODES[s] for s in styles)
        return f"\x1b[{codes}m{text}\x1b[0m"


def stamp(seconds: float) -> str:
    """``+ 12.3s``: seconds since the demo started, right-aligned."""
    return f"+{seconds:5.1f}s"


def line(style: Style, at: float, who: str, text: str, *colours: str) -> str:
    """One event: when, who or what it concerns, what happened."""
    return (
        f"  {style.paint(stamp(at), 'dim')}  {style.paint(who.ljust(WHO_WIDTH), *colours)} {text}"
    )


def change_line(style: Style, at: float, change: Change) -> str:
    colour = KIND_COLOURS[change.kind]
    emphasis = ("bold",) if change.kind is Kind.HOLDER else ()
    return line(style, at, change.subject, style.paint(change.text, *emphasis), colour)


def heading(style: Style, title: str) -> str:
    text = f"── {title} "
    return "\n" + style.paint(text + "─" * max(3, RULE_WIDTH - len(text)), "bold")


def verdict(style: Style, number: int, reached: bool, text: str) -> str:
    mark = style.paint("✓", "green", "bold") if reached else style.paint("✗", "red", "bold")
    return f"  {mark} step {number} {text}"


Painter = Callable[[str], str]


def table(
    style: Style,
    header: Sequence[str],
    rows: Sequence[Sequence[str]],
    painters: Mapping[int, Painter] | None = None,
) -> list[str]:
    """Columns aligned on the plain text, then painted (``painters`` by column index)."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    paint = painters or {}

    def join(cells: Sequence[str], painted: bool) -> str:
        padded = [c.ljust(w) for c, w in zip(cells, widths, strict=True)]
        if painted:
            padded = [paint[i](c) if i in paint else c for i, c in enumerate(padded)]
        return ("    " + "  ".join(padded)).rstrip()

    return [style.paint(join(header, False), "dim"), *(join(row, True) for row in rows)]


HOLDER_HEADER = ("reserved IP", "holder node", "droplet", "anchor", "claimed by")


def holder_rows(snapshot: Snapshot, droplets: Mapping[int, Droplet]) -> list[list[str]]:
    rows = []
    for state in snapshot.ips:
        holder = droplets.get(state.droplet_id) if state.droplet_id is not None else None
        node = name_of(state.droplet_id, droplets)
        if state.locked:
            node += f" → {name_of(state.target, droplets)}" if state.target else " (locked)"
        rows.append(
            [
                state.ip,
                node,
                str(state.droplet_id) if state.droplet_id is not None else "—",
                holder.anchor if holder else "—",
                snapshot.claimant(state.ip) or "—",
            ]
        )
    return rows


def holder_table(style: Style, snapshot: Snapshot, droplets: Mapping[int, Droplet]) -> list[str]:
    rows = table(style, HOLDER_HEADER, holder_rows(snapshot, droplets))
    return [*rows, f"    firewall opens: {port_list(snapshot.openings)}"]


SUMMARY_HEADER = ("#", "step", "", "IP landed", "all done")


def summary(style: Style, results: Sequence[StepResult]) -> list[str]:
    """One row per step: what happened, ✓/✗, and the seconds from the cluster change until
    the IP reached its droplet and until the whole expected state was there."""
    rows = [
        [str(r.number), r.summary, "✓" if r.reached else "✗", seconds(r.landed), seconds(r.took)]
        for r in results
    ]

    def mark(cell: str) -> str:
        return style.paint(cell, "green" if "✓" in cell else "red", "bold")

    return table(style, SUMMARY_HEADER, rows, {2: mark})


def seconds(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f} s"


def client_lines(style: Style, saw: ClientSaw, started: float) -> list[str]:
    """What the client saw of a move: which node's pod answered before and after, and per
    protocol the gap from the old pod's last answer to the new one's first (by the time the
    request was sent, shown since ``started``) and the requests lost in it."""
    seen = saw.seen
    lines = [
        f"      client: {saw.old} on {saw.old_node} answered before,"
        f" {style.paint(f'{saw.new} on {saw.new_node}', 'bold')} after"
    ]
    for protocol, gap in seen.outage.items():
        lost = seen.lost[protocol]
        how = ", ".join(f"{n} {kind}" for kind, n in seen.failures[protocol].items())
        lines.append(
            f"        {protocol}  gap {gap:.2f} s"
            f" (+{seen.last_old[protocol] - started:.2f} s"
            f" → +{seen.first_new[protocol] - started:.2f} s),"
            + (f" {lost} requests lost: {how}" if lost else " nothing lost")
        )
    lines.append(f"        an open TCP connection: {seen.established}")
    return lines
