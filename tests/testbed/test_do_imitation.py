"""The DigitalOcean API imitation, driven by the real pydo client over HTTPS.

Each test gets an empty imitation (``do_api``); the fixture fails a test whose requests or
responses broke DigitalOcean's OpenAPI description.
"""

from __future__ import annotations

import re
import time
from typing import Any, cast

import pydo
import pytest
import requests
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ServiceResponseError,
    ServiceResponseTimeoutError,
)

from testbed.do_imitation import DoImitation, Droplet
from testbed.do_imitation.fixtures import fail_on_contract_violations
from testbed.do_imitation.world import DROPLET_PENDING, IP_PENDING


def client(api: DoImitation, token: str | None = None, **options: Any) -> pydo.Client:
    """pydo pointed at the imitation, trusting the bed's CA, with no retries by default."""
    options.setdefault("retry_total", 0)
    return pydo.Client(
        token or api.token, endpoint=api.url, connection_verify=str(api.ca_file), **options
    )


def with_headers(pipeline_response: Any, body: Any, headers: Any) -> tuple[int, Any, Any]:
    """pydo's ``cls`` hook: keep the status and headers next to the body."""
    return pipeline_response.http_response.status_code, body, headers


def two_nodes(api: DoImitation) -> tuple[str, Droplet, Droplet]:
    cluster = api.add_cluster(name="prod")
    return cluster, api.add_doks_node(cluster), api.add_doks_node(cluster)


DO_ERROR = "^\\(None\\) {0}\nCode: None\nMessage: {0}$"
"""How azure-core words DigitalOcean's error body (``{"id": ..., "message": ...}``): the
message twice; format it with a pattern of the message."""


def error_of(call: Any) -> tuple[int, dict[str, Any]]:
    with pytest.raises(HttpResponseError, match=DO_ERROR.format(".+")) as caught:
        call()
    return caught.value.status_code or 0, caught.value.response.json()


def wait_for(condition: Any, seconds: float = 5.0) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {seconds} s")
        time.sleep(0.05)


# -- reserved IPs and actions -------------------------------------------------------------


def test_assign_is_in_progress_and_locked_until_it_completes_then_the_ip_has_moved(
    do_api: DoImitation,
) -> None:
    do_api.set_action_latency(None)  # pending until the test says so
    _, first, second = two_nodes(do_api)
    ip = do_api.add_reserved_ip(droplet_id=first.id)
    do = client(do_api)

    action = do.reserved_ips_actions.post(ip, {"type": "assign", "droplet_id": second.id})
    assert action["action"]["status"] == "in-progress"
    assert action["action"]["type"] == "assign_ip"
    assert action["action"]["completed_at"] is None
    pending = do.reserved_ips.get(ip)["reserved_ip"]
    assert pending["locked"] is True
    assert pending["droplet"]["id"] == first.id  # nothing moves before completion
    action_id = action["action"]["id"]
    assert do.actions.get(action_id)["action"]["status"] == "in-progress"

    assert do_api.complete_pending_actions() == 1
    done = do.reserved_ips_actions.get(ip, action_id)["action"]
    assert done["status"] == "completed"
    assert done["completed_at"] is not None
    assert do.actions.get(action_id)["action"]["status"] == "completed"
    moved = do.reserved_ips.get(ip)["reserved_ip"]
    assert moved["locked"] is False
    assert moved["droplet"]["id"] == second.id  # moved without an unassign
    assert moved["droplet"]["networks"]["v4"][1]["ip_address"] == second.public_ipv4


def test_with_no_latency_an_action_has_completed_by_the_next_request(do_api: DoImitation) -> None:
    _, first, _ = two_nodes(do_api)
    ip = do_api.add_reserved_ip()
    do = client(do_api)

    posted = do.reserved_ips_actions.post(ip, {"type": "assign", "droplet_id": first.id})
    assert posted["action"]["status"] == "in-progress"  # the real API never answers done
    assert do.actions.get(posted["action"]["id"])["action"]["status"] == "completed"
    assert do.reserved_ips.get(ip)["reserved_ip"]["droplet"]["id"] == first.id

    unassigned = do.reserved_ips_actions.post(ip, {"type": "unassign"})
    assert unassigned["action"]["type"] == "unassign_ip"
    assert do.reserved_ips.get(ip)["reserved_ip"]["droplet"] is None


def test_a_pending_event_refuses_new_actions_on_the_ip_and_on_the_droplet(
    do_api: DoImitation,
) -> None:
    do_api.set_action_latency(None)
    _, first, second = two_nodes(do_api)
    ip = do_api.add_reserved_ip(droplet_id=first.id)
    other_ip = do_api.add_reserved_ip()
    do = client(do_api)
    do.reserved_ips_actions.post(ip, {"type": "assign", "droplet_id": second.id})

    status, body = error_of(lambda: do.reserved_ips_actions.post(ip, {"type": "unassign"}))
    assert (status, body["id"], body["message"]) == (422, "unprocessable_entity", IP_PENDING)
    assert body["request_id"]
    status, body = error_of(
        lambda: do.reserved_ips_actions.post(other_ip, {"type": "assign", "droplet_id": second.id})
    )
    assert (status, body["message"]) == (422, DROPLET_PENDING)

    do_api.complete_pending_actions()
    again = do.reserved_ips_actions.post(ip, {"type": "unassign"})
    assert again["action"]["status"] == "in-progress"


def test_a_droplet_holds_at_most_one_reserved_ip(do_api: DoImitation) -> None:
    _, first, _ = two_nodes(do_api)
    do_api.add_reserved_ip(droplet_id=first.id)
    spare = do_api.add_reserved_ip()
    do = client(do_api)

    status, body = error_of(
        lambda: do.reserved_ips_actions.post(spare, {"type": "assign", "droplet_id": first.id})
    )
    assert status == 422
    assert "already has a reserved IP" in body["message"]
    assert do.reserved_ips.get(spare)["reserved_ip"]["droplet"] is None


def test_an_ip_cannot_go_to_a_droplet_of_another_region(do_api: DoImitation) -> None:
    far = do_api.add_droplet(region="fra1")
    ip = do_api.add_reserved_ip(region="nyc3")
    do = client(do_api)

    status, body = error_of(
        lambda: do.reserved_ips_actions.post(ip, {"type": "assign", "droplet_id": far.id})
    )
    assert status == 422
    assert "nyc3" in body["message"]
    assert "fra1" in body["message"]


def test_unknown_ip_action_and_droplet_answer_404(do_api: DoImitation) -> None:
    ip = do_api.add_reserved_ip()
    do = client(do_api)

    # pydo returns documented error statuses as the body instead of raising.
    assert do.reserved_ips.get("192.0.2.250")["id"] == "not_found"
    assert do.reserved_ips_actions.post(ip, {"type": "assign", "droplet_id": 4242})["id"] == (
        "not_found"
    )
    assert do.actions.get(999)["id"] == "not_found"
    assert do.droplets.get(4242)["id"] == "not_found"


def test_reserved_ip_list_is_paginated(do_api: DoImitation) -> None:
    ips = [do_api.add_reserved_ip() for _ in range(3)]
    do = client(do_api)

    page = do.reserved_ips.list(per_page=2, page=2)
    assert [r["ip"] for r in page["reserved_ips"]] == ips[2:]
    assert page["meta"]["total"] == 3
    assert set(page["links"]["pages"]) == {"first", "prev"}
    first = do.reserved_ips.list(per_page=2, page=1)
    assert set(first["links"]["pages"]) == {"last", "next"}
    assert first["links"]["pages"]["next"].startswith(do_api.url)


# -- droplets, tags, clusters ---------------------------------------------------------------


def test_droplets_by_cluster_tag(do_api: DoImitation) -> None:
    cluster, first, second = two_nodes(do_api)
    other_cluster = do_api.add_cluster(name="staging")
    do_api.add_doks_node(other_cluster)
    do_api.add_droplet(name="lonely", tags=["web"])
    do = client(do_api)

    listed = do.droplets.list(tag_name=f"k8s:{cluster}")
    assert [d["id"] for d in listed["droplets"]] == [first.id, second.id]
    assert listed["meta"]["total"] == 2
    droplet = listed["droplets"][0]
    assert set(droplet["tags"]) == {"k8s", f"k8s:{cluster}", "k8s:worker"}
    assert droplet["region"]["slug"] == "nyc3"
    networks = {n["type"]: n["ip_address"] for n in droplet["networks"]["v4"]}
    assert networks == {"public": first.public_ipv4, "private": first.private_ipv4}
    paged = do.droplets.list(tag_name=f"k8s:{cluster}", per_page=1, page=1)
    assert f"tag_name=k8s%3A{cluster}" in paged["links"]["pages"]["next"]


def test_cluster_lists_its_nodes_with_their_droplets(do_api: DoImitation) -> None:
    cluster, first, second = two_nodes(do_api)
    do = client(do_api)

    found = do.kubernetes.get_cluster(cluster)["kubernetes_cluster"]
    nodes = found["node_pools"][0]["nodes"]
    assert [n["droplet_id"] for n in nodes] == [str(first.id), str(second.id)]
    assert found["node_pools"][0]["count"] == 2
    assert [c["id"] for c in do.kubernetes.list_clusters()["kubernetes_clusters"]] == [cluster]
    unknown = "00000000-0000-4000-8000-000000000000"
    assert do.kubernetes.get_cluster(unknown)["id"] == "not_found"


def test_a_destroyed_node_leaves_its_ip_unassigned(do_api: DoImitation) -> None:
    cluster, first, _ = two_nodes(do_api)
    ip = do_api.add_reserved_ip(droplet_id=first.id)
    do_api.remove_droplet(first.id)
    do = client(do_api)

    assert do.reserved_ips.get(ip)["reserved_ip"]["droplet"] is None
    nodes = do.kubernetes.get_cluster(cluster)["kubernetes_cluster"]["node_pools"][0]["nodes"]
    assert str(first.id) not in [n["droplet_id"] for n in nodes]


def test_tags_get_and_create(do_api: DoImitation) -> None:
    cluster, _, _ = two_nodes(do_api)
    do = client(do_api)

    tag = do.tags.get(f"k8s:{cluster}")["tag"]
    assert tag["resources"]["droplets"]["count"] == 2
    assert do.tags.get("floating-ip")["id"] == "not_found"
    created = do.tags.create({"name": "floating-ip"})
    assert created["tag"]["name"] == "floating-ip"
    assert do.tags.get("floating-ip")["tag"]["resources"]["count"] == 0
    assert do.tags.create({"name": "floating-ip"})["tag"]["name"] == "floating-ip"


# -- firewalls ----------------------------------------------------------------------------


def web_rule(ports: str = "443") -> dict[str, Any]:
    return {"protocol": "tcp", "ports": ports, "sources": {"addresses": ["0.0.0.0/0", "::/0"]}}


def test_firewall_lifecycle(do_api: DoImitation) -> None:
    cluster, _, _ = two_nodes(do_api)
    do = client(do_api)

    created = do.firewalls.create(
        {"name": "fip-web", "inbound_rules": [web_rule("0")], "tags": [f"k8s:{cluster}"]}
    )["firewall"]
    assert created["status"] == "succeeded"
    assert created["pending_changes"] == []
    assert created["inbound_rules"][0]["ports"] == "0"  # all ports read back as "0"
    assert created["created_at"]
    firewall_id = created["id"]
    assert do.firewalls.get(firewall_id)["firewall"] == created
    assert [f["id"] for f in do.firewalls.list()["firewalls"]] == [firewall_id]

    # PUT replaces everything: the tags it leaves out are gone.
    replaced = do.firewalls.update(
        firewall_id, {"name": "fip-web", "inbound_rules": [web_rule("80"), web_rule("443")]}
    )["firewall"]
    assert [r["ports"] for r in replaced["inbound_rules"]] == ["80", "443"]
    assert replaced["tags"] == []

    do.firewalls.add_rules(firewall_id, {"inbound_rules": [web_rule("8000-9000")]})
    do.firewalls.delete_rules(firewall_id, {"inbound_rules": [web_rule("80")]})
    do.firewalls.add_tags(firewall_id, {"tags": [f"k8s:{cluster}"]})
    current = do.firewalls.get(firewall_id)["firewall"]
    assert [r["ports"] for r in current["inbound_rules"]] == ["443", "8000-9000"]
    assert current["tags"] == [f"k8s:{cluster}"]
    do.firewalls.delete_tags(firewall_id, {"tags": [f"k8s:{cluster}"]})
    assert do.firewalls.get(firewall_id)["firewall"]["tags"] == []

    do.firewalls.delete(firewall_id)
    assert do.firewalls.get(firewall_id)["id"] == "not_found"
    assert do_api.firewalls() == []


def test_firewall_names_must_fit_the_pattern(do_api: DoImitation) -> None:
    do = client(do_api)

    status, body = error_of(
        lambda: do.firewalls.create({"name": "-bad name", "inbound_rules": [web_rule()]})
    )
    assert (status, body["id"]) == (422, "unprocessable_entity")
    # The spec itself forbids such a name: the checker saw the client's mistake.
    violations = do_api.take_contract_violations()
    assert [(v.side, v.method, v.path) for v in violations] == [
        ("request", "POST", "/v2/firewalls")
    ]
    assert "does not match" in violations[0].detail


def test_firewall_rules_are_limited_to_fifty(do_api: DoImitation) -> None:
    do = client(do_api)
    rules = [web_rule(str(port)) for port in range(1000, 1050)]

    status, body = error_of(
        lambda: do.firewalls.create({"name": "too-many", "inbound_rules": [*rules, web_rule()]})
    )
    assert status == 422
    assert "50" in body["message"]
    firewall = do.firewalls.create({"name": "just-enough", "inbound_rules": rules})["firewall"]
    dns = {"protocol": "udp", "ports": "53", "destinations": {"addresses": ["0.0.0.0/0"]}}
    status, _ = error_of(lambda: do.firewalls.add_rules(firewall["id"], {"outbound_rules": [dns]}))
    assert status == 422


def test_a_firewall_needs_a_rule_and_existing_tags(do_api: DoImitation) -> None:
    do = client(do_api)

    status, _ = error_of(lambda: do.firewalls.create({"name": "empty", "inbound_rules": []}))
    assert status == 422
    status, body = error_of(
        lambda: do.firewalls.create(
            {"name": "tagged", "inbound_rules": [web_rule()], "tags": ["no-such-tag"]}
        )
    )
    assert status == 422
    assert "no-such-tag" in body["message"]


# -- authentication and rate limits -------------------------------------------------------


def test_a_wrong_token_is_refused(do_api: DoImitation) -> None:
    do = client(do_api, token="dop_v1_wrong")

    unauthorized = DO_ERROR.format(re.escape("Unable to authenticate you."))
    with pytest.raises(ClientAuthenticationError, match=unauthorized) as caught:
        do.droplets.list()
    assert caught.value.status_code == 401
    assert caught.value.response.json()["id"] == "unauthorized"
    assert caught.value.response.headers["ratelimit-limit"] == "5000"


def test_a_scoped_token_is_refused_outside_its_scopes(do_api: DoImitation) -> None:
    do_api.add_token("dop_v1_scoped", scopes=["droplet:read", "reserved_ip:read"])
    do = client(do_api, token="dop_v1_scoped")

    assert do.droplets.list()["droplets"] == []
    status, body = error_of(do.firewalls.list)
    assert status == 403
    assert body["id"] == "forbidden"
    status, _ = error_of(lambda: do.reserved_ips.create({"region": "nyc3"}))
    assert status == 403  # reserved_ip:create is not reserved_ip:read


def test_a_missing_token_is_refused_and_breaks_the_contract(do_api: DoImitation) -> None:
    answer = requests.get(f"{do_api.url}/v2/droplets", verify=str(do_api.ca_file), timeout=10)

    assert answer.status_code == 401
    assert answer.json()["id"] == "unauthorized"
    violations = do_api.take_contract_violations()
    assert [(v.side, v.path) for v in violations] == [("request", "/v2/droplets")]
    assert "bearer_auth" in violations[0].detail


def test_the_per_minute_limit_answers_429_with_retry_after(do_api: DoImitation) -> None:
    do_api.set_rate_limits(per_minute=3, minute_seconds=3.0)
    do = client(do_api)

    answers = [cast(tuple[int, Any, Any], do.droplets.list(cls=with_headers)) for _ in range(3)]
    assert [headers["ratelimit-remaining"] for _, _, headers in answers] == [4999, 4998, 4997]
    assert all(headers["ratelimit-limit"] == 5000 for _, _, headers in answers)
    too_many = DO_ERROR.format(re.escape("API Rate limit exceeded."))
    with pytest.raises(HttpResponseError, match=too_many) as caught:
        do.droplets.list()
    assert caught.value.status_code == 429
    assert caught.value.response.json()["id"] == "too_many_requests"
    assert int(caught.value.response.headers["retry-after"]) >= 1

    def allowed_again() -> bool:
        try:
            do.droplets.list()
        except HttpResponseError as error:
            assert error.status_code == 429
            return False
        return True

    wait_for(allowed_again, seconds=10)  # the minute window (shortened to 3 s) slides on


def test_the_hourly_limit_answers_429_without_retry_after(do_api: DoImitation) -> None:
    do_api.set_rate_limits(per_minute=100, per_hour=2)
    do = client(do_api)
    do.droplets.list()
    do.droplets.list()

    too_many = DO_ERROR.format(re.escape("API Rate limit exceeded."))
    with pytest.raises(HttpResponseError, match=too_many) as caught:
        do.droplets.list()
    assert caught.value.status_code == 429
    assert "retry-after" not in caught.value.response.headers
    assert caught.value.response.headers["ratelimit-remaining"] == "0"


# -- faults -------------------------------------------------------------------------------


def test_an_injected_status_answers_the_next_calls_only(do_api: DoImitation) -> None:
    droplet = do_api.add_droplet()
    do_api.fail_next("GET", "/v2/droplets/{droplet_id}", 503, times=2, retry_after=7)
    do = client(do_api)

    for _ in range(2):
        with pytest.raises(
            HttpResponseError, match=DO_ERROR.format("injected fault: 503")
        ) as caught:
            do.droplets.get(droplet.id)
        assert caught.value.status_code == 503
        assert caught.value.response.headers["retry-after"] == "7"
    assert do.droplets.get(droplet.id)["droplet"]["id"] == droplet.id
    assert [(r.status, r.fault) for r in do_api.requests("GET", "/v2/droplets/{droplet_id}")] == [
        (503, True),
        (503, True),
        (200, False),
    ]


def test_an_injected_delay_holds_the_answer(do_api: DoImitation) -> None:
    droplet = do_api.add_droplet()
    do = client(do_api)
    do_api.delay_next("GET", "/v2/droplets/{droplet_id}", 5.0)

    started = time.monotonic()
    with pytest.raises(ServiceResponseTimeoutError, match=r"Read timed out\."):
        do.droplets.get(droplet.id, read_timeout=0.3)
    assert time.monotonic() - started < 4

    do_api.delay_next("GET", "/v2/droplets/{droplet_id}", 0.3)
    started = time.monotonic()
    assert do.droplets.get(droplet.id)["droplet"]["id"] == droplet.id
    assert time.monotonic() - started >= 0.3


def test_an_injected_hang_up_closes_the_connection_without_answer(do_api: DoImitation) -> None:
    droplet = do_api.add_droplet()
    do_api.hang_up_next("*", "/v2/droplets/{droplet_id}")
    do = client(do_api)

    with pytest.raises(ServiceResponseError, match=r"Connection aborted\."):
        do.droplets.get(droplet.id)
    assert do.droplets.get(droplet.id)["droplet"]["id"] == droplet.id
    assert [r.status for r in do_api.requests()] == [None, 200]


# -- request log and contract -------------------------------------------------------------


def test_the_request_log_keeps_order_bodies_and_statuses(do_api: DoImitation) -> None:
    _, first, _ = two_nodes(do_api)
    ip = do_api.add_reserved_ip()
    do = client(do_api)
    do.reserved_ips.get(ip)
    do.reserved_ips_actions.post(ip, {"type": "assign", "droplet_id": first.id})

    log = do_api.requests()
    assert [(r.method, r.path, r.status) for r in log] == [
        ("GET", f"/v2/reserved_ips/{ip}", 200),
        ("POST", f"/v2/reserved_ips/{ip}/actions", 201),
    ]
    assert log[1].body == {"type": "assign", "droplet_id": first.id}
    assert log[0].seq < log[1].seq
    assert do_api.count("POST", "/v2/reserved_ips/{reserved_ip}/actions") == 1
    do_api.clear_requests()
    assert do_api.requests() == []


def test_the_contract_checker_catches_a_malformed_request(do_api: DoImitation) -> None:
    ip = do_api.add_reserved_ip()

    answer = requests.post(
        f"{do_api.url}/v2/reserved_ips/{ip}/actions",
        json={"type": "move", "droplet_id": "not-a-number"},
        headers={"Authorization": f"Bearer {do_api.token}"},
        verify=str(do_api.ca_file),
        timeout=10,
    )
    assert answer.status_code == 422
    violations = do_api.take_contract_violations()
    assert len(violations) == 1
    assert (violations[0].side, violations[0].method) == ("request", "POST")
    assert violations[0].path == f"/v2/reserved_ips/{ip}/actions"
    assert "CLIENT" in violations[0].describe()
    assert "'move' is not one of" in violations[0].detail


def test_a_broken_contract_fails_the_test_at_teardown(do_api: DoImitation) -> None:
    answer = requests.get(
        f"{do_api.url}/v2/droplets",
        params={"per_page": 500},  # the spec allows 200 at most
        headers={"Authorization": f"Bearer {do_api.token}"},
        verify=str(do_api.ca_file),
        timeout=10,
    )
    assert answer.status_code == 200  # served (capped), but the request is recorded
    with pytest.raises(pytest.fail.Exception, match="per_page"):
        fail_on_contract_violations(do_api)  # what the fixture does after each test
    assert do_api.contract_violations() == []


def test_the_control_interface_drives_the_imitation_over_http(do_api: DoImitation) -> None:
    def control(method: str, route: str, **options: Any) -> requests.Response:
        # verify per request: a Session's verify loses to REQUESTS_CA_BUNDLE when that is set
        return requests.request(
            method, do_api.control_url + route, verify=str(do_api.ca_file), timeout=10, **options
        )

    made = control(
        "POST",
        "/seed",
        json={
            "clusters": [{"name": "demo", "nodes": [{"id": 11}, {"id": 12}]}],
            "reserved_ips": [{"ip": "192.0.2.77", "droplet_id": 11}],
        },
    ).json()
    assert made["droplets"] == [11, 12]
    fault = {"method": "GET", "path": "/v2/droplets/{id}", "status": 500}
    assert control("POST", "/faults", json=fault).status_code == 204
    control("PUT", "/settings", json={"action_latency": None}).raise_for_status()
    do = client(do_api)

    with pytest.raises(HttpResponseError, match=DO_ERROR.format("injected fault: 500")):
        do.droplets.get(11)
    do.reserved_ips_actions.post("192.0.2.77", {"type": "assign", "droplet_id": 12})
    assert control("GET", "/state").json()["reserved_ips"][0]["locked"] is True
    assert control("POST", "/actions/complete").json() == {"completed": 1}
    assert do_api.reserved_ip_holder("192.0.2.77") == 12
    logged = control("GET", "/requests", params={"method": "POST"}).json()["requests"]
    assert [r["path"] for r in logged] == ["/v2/reserved_ips/192.0.2.77/actions"]
    assert control("GET", "/violations").json() == {"violations": []}
    assert control("POST", "/faults", json={"path": "/v2/x"}).status_code == 400
