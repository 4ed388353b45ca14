"""Injected failures: the next N calls of a route answer a status, wait, hang up, or are
served and then lose their answer."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from testbed.do_imitation.paths import match_template, method_matches

ERROR_IDS: dict[int, str] = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    409: "conflict",
    422: "unprocessable_entity",
    429: "too_many_requests",
    500: "server_error",
    502: "bad_gateway",
    503: "service_unavailable",
    504: "gateway_timeout",
}


@dataclass
class Fault:
    """What the next ``times`` calls of ``method`` + ``path`` (a spec-style template) get.

    ``delay`` seconds pass first; then the connection is closed without an answer
    (``hang_up``), or ``status`` is answered (with ``body`` or a standard error body, and
    ``retry_after`` as a header), or, with neither, the request is served as usual;
    ``lose_answer``: the request is served (DigitalOcean acts) and the connection is then
    closed without the answer, as when a response is lost on the way back.
    """

    method: str
    path: str
    times: int = 1
    status: int | None = None
    body: Any = None
    retry_after: int | None = None
    delay: float = 0.0
    hang_up: bool = False
    lose_answer: bool = False

    def __post_init__(self) -> None:
        if self.times < 1:
            raise ValueError("times must be at least 1")
        if self.status is None and not (self.hang_up or self.lose_answer) and self.delay <= 0:
            raise ValueError("a fault needs a status, a delay, hang_up or lose_answer")
        if self.status is not None and not 100 <= self.status <= 599:
            raise ValueError(f"invalid HTTP status {self.status}")

    def matches(self, method: str, path: str) -> bool:
        return method_matches(self.method, method) and match_template(self.path, path) is not None

    def error_body(self, request_id: str) -> Any:
        if self.body is not None:
            return self.body
        status = self.status or 500
        return {
            "id": ERROR_IDS.get(status, "error"),
            "message": f"injected fault: {status}",
            "request_id": request_id,
        }

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Any) -> Fault:
        if not isinstance(data, dict) or "method" not in data or "path" not in data:
            raise ValueError("a fault is an object with at least method and path")
        known = set(cls.__dataclass_fields__)
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown fault fields {sorted(unknown)}; known: {sorted(known)}")
        return cls(**data)


class FaultBook:
    def __init__(self) -> None:
        self._faults: list[Fault] = []

    def add(self, fault: Fault) -> None:
        self._faults.append(fault)

    def clear(self) -> None:
        self._faults.clear()

    def pending(self) -> list[Fault]:
        return list(self._faults)

    def take(self, method: str, path: str) -> Fault | None:
        """The first fault for this call, used up by one."""
        for fault in self._faults:
            if fault.matches(method, path):
                fault.times -= 1
                if fault.times == 0:
                    self._faults.remove(fault)
                return fault
        return None
