"""Driving an imitation that runs in another process, through its control interface.

remote = RemoteImitation.from_state_dir(Path("state"))   # written by ``python -m ...``
remote.seed({"clusters": [{"nodes": [{"id": 1}]}]})
remote.fail_next("GET", "/v2/droplets/{droplet_id}", 503)
"""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from testbed.do_imitation.contract import ContractViolation
from testbed.do_imitation.faults import Fault
from testbed.do_imitation.requestlog import LoggedRequest


@dataclass(frozen=True)
class RemoteImitation:
    url: str
    ca_file: Path
    token: str
    control_url: str

    @classmethod
    def from_state_dir(cls, state_dir: Path) -> RemoteImitation:
        facts = json.loads((state_dir / "imitation.json").read_text())
        return cls(facts["url"], Path(facts["ca_file"]), facts["token"], facts["control_url"])

    def _call(self, method: str, route: str, body: Any = None, query: str = "") -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"{self.control_url}{route}{'?' + query if query else ''}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        context = ssl.create_default_context(cafile=str(self.ca_file))
        try:
            with urllib.request.urlopen(request, context=context, timeout=30) as answer:
                raw = answer.read()
        except urllib.error.HTTPError as error:
            raise RuntimeError(f"{method} {route}: {error.code} {error.read().decode()}") from None
        return json.loads(raw) if raw else None

    def reset(self) -> None:
        self._call("POST", "/reset")

    def seed(self, document: dict[str, Any]) -> dict[str, list[Any]]:
        made: dict[str, list[Any]] = self._call("POST", "/seed", document)
        return made

    def inject(self, fault: Fault) -> None:
        self._call("POST", "/faults", fault.to_json())

    def fail_next(
        self,
        method: str,
        path: str,
        status: int,
        *,
        times: int = 1,
        body: Any = None,
        retry_after: int | None = None,
    ) -> None:
        self.inject(Fault(method, path, times, status, body, retry_after))

    def delay_next(self, method: str, path: str, seconds: float, *, times: int = 1) -> None:
        self.inject(Fault(method, path, times, delay=seconds))

    def hang_up_next(self, method: str, path: str, *, times: int = 1) -> None:
        self.inject(Fault(method, path, times, hang_up=True))

    def lose_answer_next(self, method: str, path: str, *, times: int = 1) -> None:
        self.inject(Fault(method, path, times, lose_answer=True))

    def fail_next_actions(self, count: int = 1) -> None:
        self.change_settings(actions_to_fail=count)

    def clear_faults(self) -> None:
        self._call("DELETE", "/faults")

    def change_settings(self, **settings: Any) -> dict[str, Any]:
        """``action_latency`` (s or None), ``actions_to_fail``, ``rate_limits`` (a dict)."""
        changed: dict[str, Any] = self._call("PUT", "/settings", settings)
        return changed

    def complete_pending_actions(self) -> int:
        return int(self._call("POST", "/actions/complete")["completed"])

    def requests(self, method: str = "*", path: str | None = None) -> list[LoggedRequest]:
        query = urlencode({"method": method, **({"path": path} if path else {})})
        found = self._call("GET", "/requests", query=query)["requests"]
        return [LoggedRequest.from_json(item) for item in found]

    def clear_requests(self) -> None:
        self._call("DELETE", "/requests")

    def contract_violations(self, *, forget: bool = False) -> list[ContractViolation]:
        found = self._call("DELETE" if forget else "GET", "/violations")["violations"]
        return [ContractViolation(**item) for item in found]

    def state(self) -> dict[str, Any]:
        snapshot: dict[str, Any] = self._call("GET", "/state")
        return snapshot
