"""Reserved IPs created and deleted through the real pydo client against the imitation, every
request and answer checked against DigitalOcean's OpenAPI description (the fixture)."""

from __future__ import annotations

from typing import Any

import pydo
import pytest
from azure.core.exceptions import HttpResponseError

from testbed.do_imitation import DoImitation


def client(api: DoImitation) -> pydo.Client:
    return pydo.Client(
        api.token, endpoint=api.url, connection_verify=str(api.ca_file), retry_total=0
    )


def error_of(call: Any) -> tuple[int, dict[str, Any]]:
    # How azure-core words DigitalOcean's error body: the message twice.
    with pytest.raises(
        HttpResponseError, match=r"^\(None\) .+\nCode: None\nMessage: .+$"
    ) as caught:
        call()
    return caught.value.status_code or 0, caught.value.response.json()


def test_created_for_a_droplet_it_is_locked_until_assigned(do_api: DoImitation) -> None:
    cluster = do_api.add_cluster(name="prod", region="ams3")
    droplet = do_api.add_doks_node(cluster)
    do_api.set_action_latency(None)
    reply = client(do_api).reserved_ips.create({"droplet_id": droplet.id})
    created = reply["reserved_ip"]
    assert (created["droplet"], created["locked"], created["region"]["slug"]) == (
        None,
        True,
        "ams3",
    )
    [action] = reply["links"]["actions"]
    assert action["rel"] == "assign_ip"
    assert do_api.reserved_ips() == {created["ip"]: None}
    do_api.complete_pending_actions()
    assert do_api.reserved_ips() == {created["ip"]: droplet.id}


def test_reserved_to_a_region_it_is_unassigned(do_api: DoImitation) -> None:
    reply = client(do_api).reserved_ips.create({"region": "nyc3"})
    assert reply["reserved_ip"]["droplet"] is None and reply["links"] == {}


def test_the_account_limit_is_refused_with_422(do_api: DoImitation) -> None:
    do_api.set_reserved_ip_limit(1)
    pydo_client = client(do_api)
    pydo_client.reserved_ips.create({"region": "nyc3"})
    status, body = error_of(lambda: pydo_client.reserved_ips.create({"region": "nyc3"}))
    assert status == 422 and body["id"] == "unprocessable_entity"
    assert "limit" in body["message"]
    assert len(do_api.reserved_ips()) == 1


def test_a_droplet_with_a_reserved_ip_gets_no_second_one(do_api: DoImitation) -> None:
    cluster = do_api.add_cluster(name="prod", region="ams3")
    droplet = do_api.add_doks_node(cluster)
    do_api.add_reserved_ip("192.0.2.10", region="ams3", droplet_id=droplet.id)
    status, _ = error_of(lambda: client(do_api).reserved_ips.create({"droplet_id": droplet.id}))
    assert status == 422


def test_deleted_only_once_unassigned(do_api: DoImitation) -> None:
    cluster = do_api.add_cluster(name="prod", region="ams3")
    droplet = do_api.add_doks_node(cluster)
    ip = do_api.add_reserved_ip("192.0.2.10", region="ams3", droplet_id=droplet.id)
    pydo_client = client(do_api)
    status, _ = error_of(lambda: pydo_client.reserved_ips.delete(ip))
    assert status == 422
    pydo_client.reserved_ips_actions.post(ip, {"type": "unassign"})
    do_api.complete_pending_actions()
    pydo_client.reserved_ips.delete(ip)
    assert do_api.reserved_ips() == {}
    assert pydo_client.reserved_ips.get(ip)["id"] == "not_found"
