"""What the imitation was asked and what it answered, for tests to count and order calls."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from testbed.do_imitation.paths import match_template, method_matches


@dataclass(frozen=True)
class LoggedRequest:
    seq: int
    method: str
    path: str
    query: dict[str, list[str]]
    body: Any  # parsed JSON, else text, None when empty
    status: int | None  # None: the connection was closed without an answer
    fault: bool  # answered by an injected fault
    at: float  # wall-clock seconds since the epoch
    request_id: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LoggedRequest:
        return cls(**data)


def body_value(body: bytes) -> Any:
    if not body:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return body.decode("utf-8", "replace")


def select(
    records: list[LoggedRequest], method: str = "*", path: str | None = None
) -> list[LoggedRequest]:
    """The records of ``method`` (``*`` = any) whose path fits the template ``path``."""
    return [
        r
        for r in records
        if method_matches(method, r.method)
        and (path is None or match_template(path, r.path) is not None)
    ]
