"""The one Retry-After reading, shared by the DigitalOcean adapter, the Kubernetes adapter and
the forwarder (its POSTs to the function and its watches)."""

from __future__ import annotations

import email.utils
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError

from floating_ip.adapters import digitalocean, kubernetes
from floating_ip.errors import TransientError
from floating_ip_common.retry_after import MAX_RETRY_AFTER, parse_retry_after

NOW = 1_700_000_000.0


def http_date(epoch: float) -> str:
    return email.utils.formatdate(epoch, usegmt=True)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        (None, None),
        ("7", 7.0),
        (" 0 ", 0.0),
        ("120", 120.0),
        ("1.5", 1.5),
        ("600", 600.0),
        ("601", MAX_RETRY_AFTER),
        ("86400", MAX_RETRY_AFTER),
        ("9" * 400, MAX_RETRY_AFTER),
        (http_date(NOW + 30), 30.0),
        (http_date(NOW - 30), 0.0),
        (http_date(NOW + 86_400), MAX_RETRY_AFTER),
        ("Tue, 14 Nov 2023 22:13:50 -0000", 30.0),
        ("Tuesday, 14-Nov-23 22:13:50 GMT", 30.0),
        ("", None),
        ("soon", None),
        ("-5", None),
        ("+5", None),
        ("1e3", None),
        ("nan", None),
        ("inf", None),
        ("5 seconds", None),
        ("Tue, 99 Nov 2023 22:13:50 GMT", None),
    ],
)
def test_delay_seconds_and_http_dates_are_read_and_capped(
    header: str | None, seconds: float | None
) -> None:
    read = parse_retry_after(header, now=NOW)
    assert read == (pytest.approx(seconds) if seconds is not None else None)


def test_the_dates_in_the_table_are_what_they_claim() -> None:
    assert datetime.fromtimestamp(NOW + 30, UTC) == datetime(2023, 11, 14, 22, 13, 50, tzinfo=UTC)


def test_a_callers_own_cap() -> None:
    assert parse_retry_after("90", now=NOW, cap=60.0) == 60.0
    assert parse_retry_after(http_date(NOW + 90), now=NOW, cap=60.0) == 60.0


def test_without_now_a_date_is_read_against_the_clock() -> None:
    soon = datetime.now(UTC).timestamp() + 120
    read = parse_retry_after(http_date(soon))
    assert read is not None and 100 <= read <= 120


class _Response:
    """What azure-core's HttpResponseError reads of a response."""

    def __init__(self, status: int, headers: dict[str, str]) -> None:
        self.status_code = status
        self.headers = headers
        self.reason = "Too Many Requests"
        self.request = SimpleNamespace(method="GET", url="https://api.invalid/v2/x")

    def json(self) -> Any:
        return {"id": "too_many_requests", "message": "slow down"}

    def text(self) -> str:
        return '{"message": "slow down"}'


@pytest.mark.parametrize(
    ("header", "seconds"), [("3", 3.0), (http_date(NOW + 45), None), ("later", None)]
)
def test_the_digitalocean_adapter_reads_retry_after_with_the_shared_parser(
    header: str, seconds: float | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    error = HttpResponseError(response=_Response(429, {"retry-after": header}))
    classified = digitalocean._classify("list reserved IPs", error)
    assert isinstance(classified, TransientError)
    assert classified.retry_after == parse_retry_after(header)
    if seconds is not None:
        assert classified.retry_after == seconds


@pytest.mark.parametrize(("header", "seconds"), [("2", 2.0), ("999999", MAX_RETRY_AFTER)])
def test_the_kubernetes_adapter_reads_retry_after_with_the_shared_parser(
    header: str, seconds: float
) -> None:
    classified = kubernetes._classify(503, "Service Unavailable", {"Retry-After": header}, "GET")
    assert isinstance(classified, TransientError)
    assert classified.retry_after == seconds


def test_the_kubernetes_adapter_reads_an_http_date() -> None:
    date = http_date(datetime.now(UTC).timestamp() + 200)
    classified = kubernetes._classify(429, "Too Many Requests", {"Retry-After": date}, "GET")
    assert isinstance(classified, TransientError)
    assert classified.retry_after is not None and 150 <= classified.retry_after <= 200
