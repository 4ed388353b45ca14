"""The metadata imitation answers as the real service does, per droplet, and fails on demand."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import pytest

from testbed import metadata as bed
from testbed.metadata import MetadataService


def get(url: str, timeout: float = 5.0) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as reply:
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_each_droplet_sees_its_own_data(metadata_service: MetadataService) -> None:
    metadata_service.add_droplet(101, anchor_ipv4="10.17.0.5")
    metadata_service.add_droplet(102, anchor_ipv4="10.17.0.6")
    metadata_service.add_droplet(103, custom_image=True)

    for droplet_id, anchor in ((101, "10.17.0.5"), (102, "10.17.0.6")):
        root = metadata_service.url(droplet_id) + "/metadata/v1/"
        assert get(root + "id") == (200, str(droplet_id))
        assert get(root + bed.ANCHOR_PATH) == (200, anchor)
        assert get(root + "interfaces/public/0/anchor_ipv4/netmask") == (200, "255.255.0.0")
    assert get(metadata_service.url(103) + "/metadata/v1/" + bed.ANCHOR_PATH)[0] == 404
    assert get(metadata_service.url(999) + "/metadata/v1/id")[0] == 404


def test_the_json_document_has_the_real_shape(metadata_service: MetadataService) -> None:
    metadata_service.add_droplet(101, anchor_ipv4="10.17.0.5", public_ipv4="203.0.113.7")
    metadata_service.add_droplet(103, custom_image=True)
    metadata_service.set_reserved_ip(101, "198.51.100.4")

    status, body = get(metadata_service.url(101) + "/metadata/v1.json")
    document = json.loads(body)
    assert status == 200
    assert document["droplet_id"] == 101
    assert document["region"] == "nyc3"
    public = document["interfaces"]["public"][0]
    assert public["type"] == "public"
    assert public["ipv4"]["ip_address"] == "203.0.113.7"
    assert public["anchor_ipv4"] == {
        "ip_address": "10.17.0.5",
        "netmask": "255.255.0.0",
        "gateway": "10.17.0.1",
    }
    assert document["reserved_ip"] == {"ipv4": {"active": True, "ip_address": "198.51.100.4"}}
    assert document["floating_ip"] == document["reserved_ip"]
    root = metadata_service.url(101) + "/metadata/v1/"
    assert get(root + "reserved_ip/ipv4/ip_address") == (200, "198.51.100.4")

    custom = json.loads(get(metadata_service.url(103) + "/metadata/v1.json")[1])
    assert "anchor_ipv4" not in custom["interfaces"]["public"][0]
    assert custom["reserved_ip"] == {"ipv4": {"active": False}}


def test_directories_list_their_entries(metadata_service: MetadataService) -> None:
    metadata_service.add_droplet(101)
    status, listing = get(metadata_service.url(101) + "/metadata/v1/interfaces/public/0/")
    assert status == 200
    assert listing.splitlines() == ["mac", "type", "ipv4/", "anchor_ipv4/"]


@pytest.mark.parametrize(
    ("fault", "status", "body"),
    [
        (bed.NOT_FOUND, 404, "not found"),
        (bed.SERVER_ERROR, 500, "internal error"),
        (bed.IPV6, 200, "2604:a880:800:10::1"),
        (bed.EMPTY, 200, ""),
    ],
)
def test_a_fault_replaces_one_path_of_one_droplet(
    metadata_service: MetadataService, fault: bed.Fault, status: int, body: str
) -> None:
    metadata_service.add_droplet(101, anchor_ipv4="10.17.0.5")
    metadata_service.add_droplet(102, anchor_ipv4="10.17.0.6")
    metadata_service.inject(101, fault)

    assert get(metadata_service.url(101) + "/metadata/v1/" + bed.ANCHOR_PATH) == (status, body)
    assert get(metadata_service.url(101) + "/metadata/v1/id") == (200, "101")
    assert get(metadata_service.url(102) + "/metadata/v1/" + bed.ANCHOR_PATH) == (200, "10.17.0.6")


def test_a_counted_fault_passes_after_its_count(metadata_service: MetadataService) -> None:
    metadata_service.add_droplet(101, anchor_ipv4="10.17.0.5")
    metadata_service.inject(101, bed.SERVER_ERROR, path=None, times=2)
    url = metadata_service.url(101) + "/metadata/v1/" + bed.ANCHOR_PATH

    assert [get(url)[0] for _ in range(3)] == [500, 500, 200]
    assert metadata_service.count(101, bed.ANCHOR_PATH) == 3


def test_a_hang_outlasts_the_client_and_ends_at_stop() -> None:
    service = MetadataService().start()
    try:
        service.add_droplet(101)
        service.inject(101, bed.hang(60))
        with pytest.raises(TimeoutError):
            get(service.url(101) + "/metadata/v1/" + bed.ANCHOR_PATH, timeout=0.3)
    finally:
        started = time.monotonic()
        service.stop()
    assert time.monotonic() - started < 5  # the hanging answer was released, not waited out


def test_a_stopped_service_refuses_connections(metadata_service: MetadataService) -> None:
    metadata_service.add_droplet(101)
    url = metadata_service.url(101) + "/metadata/v1/id"
    assert get(url)[0] == 200
    metadata_service.stop()
    with pytest.raises(urllib.error.URLError) as refused:
        get(url)
    assert isinstance(refused.value.reason, ConnectionRefusedError)
