"""The imitation's pure parts: action timing, rate limits, firewall rules, faults, contract."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from testbed.do_imitation.app import ImitationApp
from testbed.do_imitation.contract import ContractChecker, HttpExchange
from testbed.do_imitation.faults import Fault, FaultBook
from testbed.do_imitation.firewall_rules import normalise_ports
from testbed.do_imitation.model import ApiError
from testbed.do_imitation.paths import match_template
from testbed.do_imitation.ratelimit import RateLimiter, RateLimits
from testbed.do_imitation.render import paginate
from testbed.do_imitation.scopes import required_scope
from testbed.do_imitation.seed import apply_seed
from testbed.do_imitation.world import World, iso


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def monotonic(self) -> float:
        return self.now

    def wall(self) -> datetime:
        return datetime.fromtimestamp(1_750_000_000 + self.now, UTC)


def world_with_move(latency: float | None) -> tuple[World, FakeClock, int, int, str]:
    clock = FakeClock()
    world = World(clock.monotonic, clock.wall)
    world.action_latency = latency
    first = world.add_droplet().id
    second = world.add_droplet().id
    ip = world.add_reserved_ip(droplet_id=first).ip
    return world, clock, first, second, ip


# -- actions ------------------------------------------------------------------------------


def seen(world: World, action_id: int, ip: str) -> tuple[str, bool, int | None]:
    """What a client would read: action status, IP locked, IP holder."""
    action = world.get_action(action_id)
    return action.status, world.is_locked(ip), world.reserved_ips[ip].droplet_id


def test_an_action_finishes_after_its_latency_and_not_before() -> None:
    world, clock, first, second, ip = world_with_move(2.0)
    world.tick()
    action = world.post_reserved_ip_action(ip, {"type": "assign", "droplet_id": second})

    clock.now += 1.9
    world.tick()
    assert seen(world, action.id, ip) == ("in-progress", True, first)
    clock.now += 0.1
    world.tick()
    assert seen(world, action.id, ip) == ("completed", False, second)
    assert world.get_action(action.id).completed_at == iso(clock.wall())


def test_with_latency_zero_the_creating_request_still_sees_in_progress() -> None:
    world, _, _, second, ip = world_with_move(0.0)
    world.tick()
    action = world.post_reserved_ip_action(ip, {"type": "assign", "droplet_id": second})
    assert seen(world, action.id, ip)[0] == "in-progress"
    world.tick()
    assert seen(world, action.id, ip)[0] == "completed"


def test_manual_latency_waits_for_complete_pending_actions() -> None:
    world, clock, _, second, ip = world_with_move(None)
    action = world.post_reserved_ip_action(ip, {"type": "assign", "droplet_id": second})
    clock.now += 3600
    world.tick()
    assert seen(world, action.id, ip)[0] == "in-progress"
    assert world.complete_pending_actions() == 1
    assert seen(world, action.id, ip)[0] == "completed"


def test_a_failing_action_ends_errored_and_changes_nothing() -> None:
    world, _, first, second, ip = world_with_move(0.0)
    world.actions_to_fail = 1
    action = world.post_reserved_ip_action(ip, {"type": "assign", "droplet_id": second})
    world.tick()
    assert action.status == "errored"
    assert world.reserved_ips[ip].droplet_id == first
    again = world.post_reserved_ip_action(ip, {"type": "assign", "droplet_id": second})
    world.tick()
    assert again.status == "completed"


def test_a_target_destroyed_while_pending_makes_the_action_error() -> None:
    world, _, _, second, ip = world_with_move(None)
    action = world.post_reserved_ip_action(ip, {"type": "assign", "droplet_id": second})
    world.remove_droplet(second)
    world.complete_pending_actions()
    assert action.status == "errored"


@pytest.mark.parametrize(
    "body",
    [{"type": "move"}, {"type": "assign"}, {"type": "assign", "droplet_id": "7"}, None],
)
def test_malformed_action_bodies_are_refused(body: Any) -> None:
    world, _, _, _, ip = world_with_move(0.0)
    with pytest.raises(ApiError) as caught:
        world.post_reserved_ip_action(ip, body)
    assert caught.value.status == 422


# -- rate limits --------------------------------------------------------------------------


def test_per_minute_refusal_says_when_to_retry_and_does_not_count() -> None:
    limiter = RateLimiter(RateLimits(per_minute=2, per_hour=10))
    assert limiter.take("t", 0.0, 1000.0).allowed
    assert limiter.take("t", 20.0, 1020.0).allowed
    refused = limiter.take("t", 30.0, 1030.0)
    assert (refused.allowed, refused.retry_after, refused.remaining) == (False, 30, 8)
    assert refused.headers()["retry-after"] == "30"
    allowed = limiter.take("t", 60.5, 1060.5)
    assert (allowed.allowed, allowed.remaining, allowed.reset_epoch) == (True, 7, 3600 + 1000)


def test_hourly_refusal_has_no_retry_after_and_tokens_are_separate() -> None:
    limiter = RateLimiter(RateLimits(per_minute=100, per_hour=1))
    assert limiter.take("a", 0.0, 0.0).allowed
    refused = limiter.take("a", 1.0, 1.0)
    assert (refused.allowed, refused.retry_after) == (False, None)
    assert "retry-after" not in refused.headers()
    assert limiter.take("b", 1.0, 1.0).allowed
    assert limiter.take("a", 3600.5, 3600.5).allowed


# -- firewall rules, paths, pagination ----------------------------------------------------


@pytest.mark.parametrize(
    ("protocol", "ports", "expected"),
    [
        ("tcp", "0", "0"),
        ("tcp", "all", "0"),
        ("icmp", "", "0"),
        ("udp", "53", "53"),
        ("tcp", "8000-9000", "8000-9000"),
        ("tcp", "443-443", "443-443"),
    ],
)
def test_ports_normalise(protocol: str, ports: str, expected: str) -> None:
    assert normalise_ports(protocol, ports) == expected


@pytest.mark.parametrize("ports", ["", "abc", "70000", "9-1", "0-80", "80-"])
def test_bad_ports_are_refused(ports: str) -> None:
    with pytest.raises(ApiError) as caught:
        normalise_ports("tcp", ports)
    assert caught.value.status == 422


def test_path_templates_match_one_segment_per_placeholder() -> None:
    assert match_template("/v2/droplets/{id}", "/v2/droplets/7") == {"id": "7"}
    assert match_template("/v2/droplets/{id}", "/v2/droplets/7/actions") is None
    assert match_template("/v2/droplets", "/v2/droplets/") == {}


def test_pagination_links_point_around_the_page() -> None:
    items, links = paginate(list(range(5)), 2, 2, "https://x/v2/droplets", {"tag_name": "k8s"})
    assert items == [2, 3]
    assert set(links["pages"]) == {"first", "prev", "last", "next"}
    assert links["pages"]["next"] == "https://x/v2/droplets?tag_name=k8s&page=3&per_page=2"
    assert paginate([1], 1, 20, "https://x/v2/droplets", {}) == ([1], {})


# -- faults -------------------------------------------------------------------------------


def test_a_fault_is_used_up_by_its_calls() -> None:
    book = FaultBook()
    book.add(Fault("*", "/v2/droplets/{id}", times=2, status=500))
    assert book.take("POST", "/v2/firewalls") is None
    assert book.take("GET", "/v2/droplets/1") is not None
    assert book.take("DELETE", "/v2/droplets/2") is not None
    assert book.take("GET", "/v2/droplets/1") is None


@pytest.mark.parametrize(
    "fields",
    [
        {"method": "GET", "path": "/v2/x"},
        {"method": "GET", "path": "/v2/x", "status": 700},
        {"method": "GET", "path": "/v2/x", "status": 500, "times": 0},
        {"method": "GET", "path": "/v2/x", "status": 500, "colour": "red"},
    ],
)
def test_meaningless_faults_are_refused(fields: dict[str, Any]) -> None:
    with pytest.raises((ValueError, TypeError)):
        Fault.from_json(fields)


# -- contract -----------------------------------------------------------------------------


def exchange(status: int, body: Any, path: str = "/v2/actions/5") -> HttpExchange:
    return HttpExchange(
        "GET",
        path,
        [],
        {"Authorization": "Bearer t"},
        b"",
        status,
        {"Content-Type": "application/json"},
        json.dumps(body).encode(),
    )


def test_the_checker_blames_the_imitation_for_a_bad_response() -> None:
    checker = ContractChecker()
    good = {"action": {"id": 5, "status": "completed", "type": "assign_ip"}}
    assert checker.check_response(exchange(200, good)) == []
    bad = checker.check_response(exchange(200, {"action": {"id": 5, "status": "done"}}))
    assert [(v.side, v.status) for v in bad] == [("response", 200)]
    assert "IMITATION" in bad[0].describe()
    assert "'done' is not one of" in bad[0].detail
    assert checker.check_response(exchange(404, {"id": "not_found"}))  # message is required


def test_an_unknown_path_is_the_clients_mistake_only() -> None:
    checker = ContractChecker()
    unknown = exchange(501, {"id": "x", "message": "y"}, path="/v2/nowhere")
    assert [v.side for v in checker.check_request(unknown)] == ["request"]
    assert checker.check_response(unknown) == []


def test_a_seed_document_with_unknown_keys_is_refused() -> None:
    app = ImitationApp(check_contract=False)
    with pytest.raises(ValueError, match="unknown seed keys"):
        apply_seed(app, {"droplet": []})
    with pytest.raises(ValueError, match="unknown droplet fields"):
        apply_seed(app, {"droplets": [{"colour": "red"}]})
    made = apply_seed(app, {"tags": ["web"], "droplets": [{"id": 3, "tags": ["web"]}]})
    assert made["droplets"] == [3]


def test_the_scope_a_call_needs() -> None:
    assert required_scope("GET", "/v2/reserved_ips") == "reserved_ip:read"
    assert required_scope("POST", "/v2/reserved_ips/192.0.2.1/actions") == "reserved_ip:update"
    assert required_scope("POST", "/v2/firewalls") == "firewall:create"
    assert required_scope("DELETE", "/v2/firewalls/f-1") == "firewall:delete"
    assert required_scope("GET", "/v2/kubernetes/clusters/c-1") == "kubernetes:read"
    assert required_scope("GET", "/_imitation/log") is None
