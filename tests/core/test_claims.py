"""Shared IPs and conflicts: Services may share an IP unless they claim the same port."""

from __future__ import annotations

import pytest

from floating_ip.core.annotations import Intent, read_intent
from floating_ip.core.claims import claim_all
from floating_ip.core.model import Reason, Service
from tests.core.builders import IP_A, IP_B, svc

OLD = "2024-01-01T00:00:00Z"
NEW = "2025-06-01T00:00:00Z"


def intents(*services: Service) -> list[Intent]:
    return [intent for service in services if (intent := read_intent(service))]


@pytest.mark.parametrize(
    ("services", "accepted", "rejected"),
    [
        pytest.param(
            [svc("web", tcp=[80]), svc("dns", tcp=[], udp=[53])],
            ["dns", "web"],
            [],
            id="different-ports-share",
        ),
        pytest.param(
            [svc("tcp-dns", tcp=[53]), svc("udp-dns", tcp=[], udp=[53])],
            ["tcp-dns", "udp-dns"],
            [],
            id="same-port-other-protocol-shares",
        ),
        pytest.param(
            [svc("new", tcp=[80], created=NEW), svc("old", tcp=[80, 443], created=OLD)],
            ["old"],
            ["new"],
            id="same-port-older-wins",
        ),
        pytest.param(
            [svc("b", tcp=[80]), svc("a", tcp=[80])],
            ["a"],
            ["b"],
            id="same-age-name-decides",
        ),
        pytest.param(
            [svc("a", tcp=[80]), svc("b", tcp=[80]), svc("c", tcp=[443])],
            ["a", "c"],
            ["b"],
            id="only-the-clashing-one-loses",
        ),
        pytest.param(
            [svc("a", IP_A, tcp=[80]), svc("b", IP_B, tcp=[80])],
            ["a", "b"],
            [],
            id="same-port-on-other-ips",
        ),
    ],
)
def test_claims(services: list[Service], accepted: list[str], rejected: list[str]) -> None:
    claims, rejections = claim_all(intents(*services))
    assert sorted(s.name for c in claims for s in c.services) == accepted
    assert [r.intent.service.name for r in rejections] == rejected
    assert all(r.problem.reason is Reason.IP_CONFLICT for r in rejections)


def test_conflict_message_names_the_winner_and_port() -> None:
    _, [rejection] = claim_all(
        intents(svc("old", tcp=[80], created=OLD), svc("new", tcp=[8080, 80], created=NEW))
    )
    assert "default/old" in rejection.problem.message
    assert "TCP/80" in rejection.problem.message
    assert "8080" not in rejection.problem.message


def test_claims_come_in_numeric_ip_order_and_skip_bad_addresses() -> None:
    services = [svc("b", "203.0.113.100"), svc("a", "203.0.113.9"), svc("x", "not-an-ip")]
    claims, _ = claim_all(intents(*services))
    assert [c.ip for c in claims] == ["203.0.113.9", "203.0.113.100"]
