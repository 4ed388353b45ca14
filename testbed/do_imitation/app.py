"""The imitation's behaviour as one object: what a ``/v2`` request gets, and the test API.

Order of work for a request: contract check of the request, injected fault (delay, hang-up
or status), authentication (401), rate limit (429), then the route. Every answer carries the
rate-limit headers; error bodies carry a ``request_id``. The response is checked against the
spec too, except answers of injected faults, which are deliberately off-contract.

Thread-safe: the HTTP server calls ``handle`` from many threads; state changes under a lock.
"""

from __future__ import annotations

import dataclasses
import json
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, parse_qsl

from testbed.do_imitation.contract import ContractChecker, ContractViolation, HttpExchange
from testbed.do_imitation.faults import Fault, FaultBook
from testbed.do_imitation.model import ApiError, Droplet
from testbed.do_imitation.ratelimit import RateDecision, RateLimiter, RateLimits
from testbed.do_imitation.render import droplet_json, firewall_json, reserved_ip_json
from testbed.do_imitation.requestlog import LoggedRequest, body_value, select
from testbed.do_imitation.routes import Call, Reply, dispatch
from testbed.do_imitation.scopes import FORBIDDEN, required_scope
from testbed.do_imitation.world import World

UNAUTHORIZED = {"id": "unauthorized", "message": "Unable to authenticate you."}
TOO_MANY = {"id": "too_many_requests", "message": "API Rate limit exceeded."}


@dataclass(frozen=True)
class ApiRequest:
    method: str
    path: str
    query_string: str
    headers: Mapping[str, str]
    body: bytes


class ImitationApp:
    def __init__(
        self,
        *,
        token: str | None = None,
        check_contract: bool = True,
        spec_path: Path | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
        on_violation: Callable[[ContractViolation], None] | None = None,
    ) -> None:
        self.token = token or f"dop_v1_{secrets.token_hex(32)}"
        self.base_url = "https://api.digitalocean.invalid"  # the server sets the real one
        self._monotonic = monotonic
        self._wall = wall
        self._checker = ContractChecker(spec_path) if check_contract else None
        self._on_violation = on_violation
        self._lock = threading.RLock()
        self._new_state()

    def _new_state(self) -> None:
        self.world = World(self._monotonic, self._wall)
        self._tokens: dict[str, frozenset[str] | None] = {self.token: None}
        """Accepted tokens and their scopes (None: full access)."""
        self._limiter = RateLimiter()
        self._faults = FaultBook()
        self._log: list[LoggedRequest] = []
        self._seq = 0
        self._violations: list[ContractViolation] = []
        self._aborted = threading.Event()  # set when a reset or stop ends this generation

    # -- serving --------------------------------------------------------------------------

    def handle(self, request: ApiRequest) -> Reply | None:
        """The answer to one ``/v2`` request, or None to close the connection unanswered."""
        with self._lock:
            aborted = self._aborted
            fault = self._faults.take(request.method, request.path)
        exchange = HttpExchange(
            request.method,
            request.path,
            parse_qsl(request.query_string, keep_blank_values=True),
            request.headers,
            request.body,
        )
        if self._checker is not None:
            self._record(self._checker.check_request(exchange), aborted)
        request_id = str(uuid.uuid4())
        if fault is not None and fault.delay > 0 and aborted.wait(fault.delay):
            return None  # reset or stopped meanwhile: this request belongs to the past
        with self._lock:
            if aborted is not self._aborted:
                return None
            if fault is not None and fault.hang_up:
                self._log_request(request, None, True, request_id)
                return None
            if fault is not None and fault.status is not None:
                reply = self._fault_reply(fault, request, request_id)
            else:
                reply = self._serve(request, request_id)
            self._log_request(request, reply.status, fault is not None, request_id)
            if fault is not None and fault.lose_answer:
                return None
        if self._checker is not None and not (fault and fault.status is not None):
            answered = dataclasses.replace(
                exchange,
                status=reply.status,
                response_headers={**_content_type(reply), **reply.headers},
                response_body=encode(reply.body),
            )
            self._record(self._checker.check_response(answered), aborted)
        return reply

    def _serve(self, request: ApiRequest, request_id: str) -> Reply:
        token = _bearer(request.headers)
        now, epoch = self._monotonic(), time.time()
        if token not in self._tokens:
            decision = self._limiter.peek(token or "", now, epoch)
            return _with_id(Reply(401, dict(UNAUTHORIZED), decision.headers()), request_id)
        decision = self._limiter.take(token, now, epoch)
        if not decision.allowed:
            return _with_id(Reply(429, dict(TOO_MANY), decision.headers()), request_id)
        scopes = self._tokens[token]
        needed = required_scope(request.method, request.path)
        if scopes is not None and needed is not None and needed not in scopes:
            return _with_id(Reply(403, dict(FORBIDDEN), decision.headers()), request_id)
        self.world.tick()
        call = Call({}, parse_qs(request.query_string), request.body, self.base_url)
        reply = dispatch(self.world, request.method, request.path, call)
        return _with_id(_headed(reply, decision), request_id)

    def _fault_reply(self, fault: Fault, request: ApiRequest, request_id: str) -> Reply:
        token = _bearer(request.headers) or ""
        headers = self._limiter.peek(token, self._monotonic(), time.time()).headers()
        if fault.retry_after is not None:
            headers["retry-after"] = str(fault.retry_after)
        return Reply(fault.status or 500, fault.error_body(request_id), headers)

    def _log_request(
        self, request: ApiRequest, status: int | None, fault: bool, request_id: str
    ) -> None:
        self._seq += 1
        self._log.append(
            LoggedRequest(
                seq=self._seq,
                method=request.method,
                path=request.path,
                query=parse_qs(request.query_string, keep_blank_values=True),
                body=body_value(request.body),
                status=status,
                fault=fault,
                at=time.time(),
                request_id=request_id,
            )
        )

    def _record(self, violations: list[ContractViolation], aborted: threading.Event) -> None:
        if not violations:
            return
        with self._lock:
            if aborted is not self._aborted:
                return  # a request from before a reset: not this test's business
            self._violations.extend(violations)
        if self._on_violation is not None:
            for violation in violations:
                self._on_violation(violation)

    # -- test API: whole state ------------------------------------------------------------

    def reset(self) -> None:
        """Back to an empty account with default settings; requests in flight are dropped."""
        with self._lock:
            self._aborted.set()
            self._new_state()

    def abort_in_flight(self) -> None:
        """Wake delayed requests so that they end (used when the server stops)."""
        with self._lock:
            self._aborted.set()

    def add_token(self, token: str, scopes: Iterable[str] | None = None) -> None:
        """Accept ``token``: with every right, or only ``scopes`` (others answer 403)."""
        with self._lock:
            self._tokens[token] = None if scopes is None else frozenset(scopes)

    # -- test API: seeding ----------------------------------------------------------------

    def add_droplet(
        self,
        *,
        id: int | None = None,
        name: str | None = None,
        region: str = "nyc3",
        tags: Iterable[str] = (),
        public_ipv4: str | None = None,
        private_ipv4: str | None = None,
        size_slug: str = "s-2vcpu-4gb",
    ) -> Droplet:
        """Add a droplet; returns a copy of its record (id and addresses filled in)."""
        with self._lock:
            droplet = self.world.add_droplet(
                id=id,
                name=name,
                region=region,
                tags=list(tags),
                public_ipv4=public_ipv4,
                private_ipv4=private_ipv4,
                size_slug=size_slug,
            )
            return dataclasses.replace(droplet, tags=list(droplet.tags))

    def remove_droplet(self, droplet_id: int) -> None:
        with self._lock:
            self.world.remove_droplet(droplet_id)

    def add_reserved_ip(
        self, ip: str | None = None, *, region: str = "nyc3", droplet_id: int | None = None
    ) -> str:
        with self._lock:
            return self.world.add_reserved_ip(ip=ip, region=region, droplet_id=droplet_id).ip

    def add_cluster(
        self,
        *,
        id: str | None = None,
        name: str = "k8s-cluster",
        region: str = "nyc3",
        version: str = "1.33.1-do.0",
    ) -> str:
        with self._lock:
            return self.world.add_cluster(id=id, name=name, region=region, version=version).id

    def add_doks_node(
        self,
        cluster_id: str,
        *,
        pool: str = "pool-1",
        id: int | None = None,
        name: str | None = None,
        public_ipv4: str | None = None,
        private_ipv4: str | None = None,
    ) -> Droplet:
        """A worker droplet of the cluster with DOKS's tags, listed in the node pool."""
        with self._lock:
            droplet = self.world.add_doks_node(
                cluster_id,
                pool=pool,
                id=id,
                name=name,
                public_ipv4=public_ipv4,
                private_ipv4=private_ipv4,
            )
            return dataclasses.replace(droplet, tags=list(droplet.tags))

    def add_tag(self, name: str) -> None:
        with self._lock:
            self.world.add_tag(name)

    def add_firewall(self, body: Mapping[str, Any]) -> str:
        """Create a firewall from an API body, as ``POST /v2/firewalls`` would; its id."""
        with self._lock:
            try:
                return self.world.create_firewall(dict(body)).id
            except ApiError as error:
                raise ValueError(f"firewall not created: {error.message}") from None

    # -- test API: reading the state without using the API --------------------------------

    def reserved_ip_holder(self, ip: str) -> int | None:
        with self._lock:
            self.world.tick()
            return self.world.reserved_ips[ip].droplet_id

    def firewall(self, firewall_id: str) -> dict[str, Any] | None:
        """The firewall as the API renders it, or None if there is none with this id."""
        with self._lock:
            found = self.world.firewalls.get(firewall_id)
            return None if found is None else firewall_json(found)

    def firewalls(self) -> list[dict[str, Any]]:
        with self._lock:
            return [firewall_json(f) for f in self.world.firewalls.values()]

    def snapshot(self) -> dict[str, Any]:
        """Everything, rendered as the API would, for assertions and for the control API."""
        with self._lock:
            world = self.world
            world.tick()
            return {
                "droplets": [droplet_json(d) for d in world.droplets.values()],
                "reserved_ips": [
                    reserved_ip_json(r, world.holder(r), world.is_locked(r.ip))
                    for r in world.reserved_ips.values()
                ],
                "firewalls": [firewall_json(f) for f in world.firewalls.values()],
                "tags": sorted(
                    set(world.created_tags) | {t for d in world.droplets.values() for t in d.tags}
                ),
                "clusters": [c.id for c in world.clusters.values()],
                "pending_actions": [
                    a.id for a in world.actions.values() if a.status == "in-progress"
                ],
            }

    # -- test API: behaviour settings -----------------------------------------------------

    def reserved_ips(self) -> dict[str, int | None]:
        """Every reserved IP of the account and the droplet holding it (``None``: none)."""
        with self._lock:
            self.world.tick()
            return {ip: r.droplet_id for ip, r in self.world.reserved_ips.items()}

    def set_reserved_ip_limit(self, limit: int) -> None:
        """How many reserved IPs the account may hold (DigitalOcean's default is 3)."""
        with self._lock:
            self.world.reserved_ip_limit = limit

    def set_action_latency(self, seconds: float | None) -> None:
        """How long reserved-IP actions stay in progress; None: until told to complete."""
        if seconds is not None and seconds < 0:
            raise ValueError("latency cannot be negative")
        with self._lock:
            self.world.action_latency = seconds

    def complete_pending_actions(self) -> int:
        with self._lock:
            return self.world.complete_pending_actions()

    def fail_next_actions(self, count: int = 1) -> None:
        """The next ``count`` reserved-IP actions end ``errored`` and change nothing."""
        with self._lock:
            self.world.actions_to_fail = count

    def set_rate_limits(
        self,
        *,
        per_minute: int = 250,
        per_hour: int = 5000,
        minute_seconds: float = 60.0,
        hour_seconds: float = 3600.0,
    ) -> None:
        """New limits and windows; the counts so far are forgotten."""
        with self._lock:
            self._limiter.reset(RateLimits(per_minute, per_hour, minute_seconds, hour_seconds))

    def settings(self) -> dict[str, Any]:
        with self._lock:
            return {
                "action_latency": self.world.action_latency,
                "actions_to_fail": self.world.actions_to_fail,
                "rate_limits": dataclasses.asdict(self._limiter.limits),
            }

    # -- test API: faults -----------------------------------------------------------------

    def inject(self, fault: Fault) -> None:
        with self._lock:
            self._faults.add(fault)

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
        """The next ``times`` calls answer ``status`` (``path`` is a spec-style template)."""
        self.inject(Fault(method, path, times, status, body, retry_after))

    def delay_next(self, method: str, path: str, seconds: float, *, times: int = 1) -> None:
        self.inject(Fault(method, path, times, delay=seconds))

    def hang_up_next(self, method: str, path: str, *, times: int = 1) -> None:
        """The next ``times`` calls get their connection closed without an answer."""
        self.inject(Fault(method, path, times, hang_up=True))

    def lose_answer_next(self, method: str, path: str, *, times: int = 1) -> None:
        """The next ``times`` calls are served, then closed before the answer is sent."""
        self.inject(Fault(method, path, times, lose_answer=True))

    def pending_faults(self) -> list[Fault]:
        with self._lock:
            return [dataclasses.replace(f) for f in self._faults.pending()]

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    # -- test API: request log and contract -----------------------------------------------

    def requests(self, method: str = "*", path: str | None = None) -> list[LoggedRequest]:
        """Logged ``/v2`` requests, oldest first, optionally only those fitting a template."""
        with self._lock:
            return select(list(self._log), method, path)

    def count(self, method: str = "*", path: str | None = None) -> int:
        return len(self.requests(method, path))

    def clear_requests(self) -> None:
        with self._lock:
            self._log.clear()

    def contract_violations(self) -> list[ContractViolation]:
        with self._lock:
            return list(self._violations)

    def take_contract_violations(self) -> list[ContractViolation]:
        """The violations so far, forgotten afterwards (for tests that cause them on purpose)."""
        with self._lock:
            taken, self._violations = self._violations, []
            return taken


def encode(body: Any) -> bytes:
    return b"" if body is None else json.dumps(body).encode()


def _content_type(reply: Reply) -> dict[str, str]:
    return {} if reply.body is None else {"Content-Type": "application/json; charset=utf-8"}


def _bearer(headers: Mapping[str, str]) -> str | None:
    value = next((v for k, v in headers.items() if k.lower() == "authorization"), None)
    if value is None or not value.startswith("Bearer "):
        return None
    return value[len("Bearer ") :].strip() or None


def _headed(reply: Reply, decision: RateDecision) -> Reply:
    return dataclasses.replace(reply, headers={**decision.headers(), **reply.headers})


def _with_id(reply: Reply, request_id: str) -> Reply:
    if reply.status >= 400 and isinstance(reply.body, dict) and "id" in reply.body:
        return dataclasses.replace(reply, body={**reply.body, "request_id": request_id})
    return reply
