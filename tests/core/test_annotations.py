"""Each annotation's parser: accepted spellings, and errors that name the annotation."""

from __future__ import annotations

import pytest

from floating_ip.core.annotations import (
    AnnotationError,
    parse_address,
    parse_firewall,
    parse_sources,
    read_intent,
)
from floating_ip.core.model import Reason
from floating_ip_common import contract
from tests.core.builders import IP_A, svc


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("203.0.113.10", "203.0.113.10", id="plain"),
        pytest.param(" 203.0.113.10\n", "203.0.113.10", id="surrounding-space"),
    ],
)
def test_address_accepts(text: str, expected: str) -> None:
    assert parse_address(text) == expected


@pytest.mark.parametrize(
    ("text", "why"),
    [
        pytest.param("2001:db8::1", "not IPv4", id="ipv6"),
        pytest.param("abc", "not an IP address", id="word"),
        pytest.param("203.0.113.300", "not an IP address", id="octet-too-large"),
        pytest.param("203.0.113.10/32", "not an IP address", id="cidr"),
        pytest.param("203.0.113.10,203.0.113.11", "not an IP address", id="two"),
        pytest.param("", "not an IP address", id="empty"),
    ],
)
def test_address_rejects_naming_the_key(text: str, why: str) -> None:
    with pytest.raises(AnnotationError, match=why) as error:
        parse_address(text)
    assert contract.ADDRESS in str(error.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(None, True, id="absent-means-true"),
        pytest.param("true", True, id="true"),
        pytest.param("True", True, id="capitalised"),
        pytest.param(" false ", False, id="false-spaced"),
        pytest.param("FALSE", False, id="upper-false"),
    ],
)
def test_firewall_accepts(text: str | None, expected: bool) -> None:
    assert parse_firewall(text) is expected


@pytest.mark.parametrize("text", ["yes", "1", "", "on", "truth"])
def test_firewall_rejects_naming_the_key(text: str) -> None:
    with pytest.raises(AnnotationError, match="must be") as error:
        parse_firewall(text)
    assert contract.FIREWALL in str(error.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(None, ("0.0.0.0/0", "::/0"), id="absent-means-everyone"),
        pytest.param("10.0.0.0/8", ("10.0.0.0/8",), id="one"),
        pytest.param("192.0.2.7", ("192.0.2.7/32",), id="bare-ipv4-is-host"),
        pytest.param("2001:db8::7", ("2001:db8::7/128",), id="bare-ipv6-is-host"),
        pytest.param("2001:DB8:0:0::/64", ("2001:db8::/64",), id="ipv6-canonical"),
        pytest.param("::/0, 0.0.0.0/0", ("0.0.0.0/0", "::/0"), id="ipv4-first"),
        pytest.param("10.0.0.0/8,10.0.0.0/8", ("10.0.0.0/8",), id="duplicate"),
        pytest.param(
            "192.0.2.0/24, 10.0.0.0/8", ("10.0.0.0/8", "192.0.2.0/24"), id="numeric-order"
        ),
    ],
)
def test_sources_accepts(text: str | None, expected: tuple[str, ...]) -> None:
    assert parse_sources(text) == expected


@pytest.mark.parametrize(
    ("text", "why"),
    [
        pytest.param(
            "10.0.0.1/8", r"host bits set \(the network is 10.0.0.0/8\)", id="host-bits-set"
        ),
        pytest.param("10.0.0.0/33", "not a CIDR", id="prefix-too-long"),
        pytest.param("everyone", "not a CIDR", id="word"),
        pytest.param("10.0.0.0/8,", "empty entry", id="trailing-comma"),
        pytest.param("", "empty entry", id="empty"),
    ],
)
def test_sources_rejects_naming_the_key(text: str, why: str) -> None:
    with pytest.raises(AnnotationError, match=why) as error:
        parse_sources(text)
    assert contract.FIREWALL_SOURCES in str(error.value)


def test_service_without_address_has_not_opted_in() -> None:
    assert read_intent(svc("web", None, annotations={contract.FIREWALL: "false"})) is None


def test_valid_service_reads_every_annotation() -> None:
    intent = read_intent(svc("web", annotations={contract.FIREWALL_SOURCES: "192.0.2.0/24"}))
    assert intent is not None
    assert (intent.address, intent.firewall, intent.sources, intent.problems) == (
        IP_A,
        True,
        ("192.0.2.0/24",),
        (),
    )


@pytest.mark.parametrize(
    ("annotations", "address", "firewall", "named"),
    [
        pytest.param({contract.ADDRESS: "nope"}, None, True, contract.ADDRESS, id="address"),
        pytest.param({contract.FIREWALL: "maybe"}, IP_A, False, contract.FIREWALL, id="firewall"),
        pytest.param(
            {contract.FIREWALL_SOURCES: "10.0.0.1/8"},
            IP_A,
            False,
            contract.FIREWALL_SOURCES,
            id="sources-fail-closed",
        ),
    ],
)
def test_invalid_annotation_is_a_named_problem(
    annotations: dict[str, str], address: str | None, firewall: bool, named: str
) -> None:
    intent = read_intent(svc("web", annotations=annotations))
    assert intent is not None
    assert (intent.address, intent.firewall) == (address, firewall)
    [problem] = intent.problems
    assert problem.reason is Reason.INVALID_ANNOTATION
    assert named in problem.message
