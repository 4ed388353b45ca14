"""What the function and the forwarder say in their logs, read as the demo goes (parsing is
pure; ``LogTail`` only reads new lines from a file)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from floating_ip_common import contract

TRIGGER_NAMES = {
    contract.EVENT_SERVICE_CHANGED: "service.changed",
    contract.EVENT_RESYNC: "resync",
}


@dataclass(frozen=True)
class Call:
    """One invocation of the function, from the summary line it logs when it answers."""

    status: int
    trigger: str | None
    changes: int
    seconds: float | None
    problem: str | None

    @property
    def quiet(self) -> bool:
        """Answered 200 with nothing to change: the system confirming it is converged."""
        return self.status == 200 and self.changes == 0 and self.problem is None

    def describe(self) -> str:
        trigger = TRIGGER_NAMES.get(self.trigger or "", self.trigger or "call")
        parts = [f"{trigger} → {self.status}"]
        parts.append(f"{self.changes} change{'' if self.changes == 1 else 's'}")
        if self.seconds is not None:
            parts.append(f"{self.seconds:.2f} s")
        if self.problem:
            parts.append(self.problem)
        return " · ".join(parts)


def parse_call(text: str) -> Call | None:
    entry = _json(text)
    if entry is None or not isinstance(entry.get("status"), int):
        return None
    problems = [str(entry["error"])] if entry.get("error") else []
    problems += [str(e) for e in entry.get("errors") or []]
    seconds = entry.get("seconds")
    return Call(
        status=entry["status"],
        trigger=str(entry["trigger"]) if entry.get("trigger") else None,
        changes=int(entry.get("changes") or 0),
        seconds=float(seconds) if isinstance(seconds, int | float) else None,
        problem="; ".join(problems) or None,
    )


def parse_forwarder_problem(text: str) -> str | None:
    """A warning or error of the forwarder, in one line; ``None`` for anything else."""
    entry = _json(text)
    if entry is None or entry.get("level") not in ("warning", "error", "critical"):
        return None
    details = [f"{k}={entry[k]}" for k in ("subject", "status", "error") if entry.get(k)]
    return str(entry.get("message", "")) + (f" ({', '.join(details)})" if details else "")


def _json(text: str) -> dict[str, Any] | None:
    text = text.strip()
    if not text.startswith("{"):
        return None
    try:
        entry = json.loads(text)
    except ValueError:
        return None
    return entry if isinstance(entry, dict) else None


class LogTail:
    """The complete lines appended to a log file since the last call."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0
        self._partial = b""

    def new_lines(self) -> list[str]:
        if not self.path.exists():
            return []
        with self.path.open("rb") as stream:
            stream.seek(self._offset)
            data = stream.read()
        self._offset += len(data)
        *complete, self._partial = (self._partial + data).split(b"\n")
        return [raw.decode("utf-8", "replace") for raw in complete]
