"""Lease election decisions, judged by the local clock as client-go does."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from floating_ip_forwarder.election.lease_rules import (
    Election,
    LeaseRecord,
    Step,
    micro_time,
    record_from,
)

WALL = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)


def record(holder: str, renew: str = "r1", version: str = "1", transitions: int = 0) -> LeaseRecord:
    return LeaseRecord(holder, 15.0, "a", renew, transitions, version)


def test_no_lease_means_create() -> None:
    assert Election("me", 15, 10).step(None, 0.0) is Step.CREATE


def test_own_lease_is_renewed() -> None:
    assert Election("me", 15, 10).step(record("me"), 0.0) is Step.RENEW


def test_free_lease_is_taken() -> None:
    assert Election("me", 15, 10).step(record(""), 0.0) is Step.ACQUIRE


def test_someone_elses_lease_expires_only_when_it_stops_changing_for_a_duration() -> None:
    election = Election("me", 15, 10)
    assert election.step(record("other", "r1"), 100.0) is Step.WAIT
    assert election.step(record("other", "r1"), 114.9) is Step.WAIT
    assert election.step(record("other", "r2", "2"), 114.9) is Step.WAIT, "renewed"
    assert election.step(record("other", "r2", "2"), 129.8) is Step.WAIT
    assert election.step(record("other", "r2", "2"), 129.9) is Step.ACQUIRE


def test_leadership_lasts_until_the_renew_deadline() -> None:
    election = Election("me", 15, 10)
    assert not election.leading(0.0)
    election.held(1.0)
    assert election.leading(10.9)
    assert not election.leading(11.0)
    election.held(11.0)
    election.lost()
    assert not election.leading(11.0)


def test_spec_for_taking_over_counts_a_transition() -> None:
    election = Election("me", 15, 10)
    now = micro_time(WALL)
    assert election.spec(None, WALL) == {
        "holderIdentity": "me",
        "leaseDurationSeconds": 15,
        "acquireTime": now,
        "renewTime": now,
        "leaseTransitions": 0,
    }
    taken = election.spec(record("other", transitions=3), WALL)
    assert (taken["leaseTransitions"], taken["acquireTime"]) == (4, now)
    from_free = election.spec(record("", transitions=3), WALL)
    assert from_free["leaseTransitions"] == 3
    renewed = election.spec(record("me", transitions=3), WALL)
    assert (renewed["leaseTransitions"], renewed["acquireTime"]) == (3, "a")


def test_released_spec_frees_the_lease() -> None:
    spec = Election("me", 15, 10).released_spec(record("me", transitions=2), WALL)
    assert spec["holderIdentity"] is None
    assert spec["leaseDurationSeconds"] == 1
    assert spec["leaseTransitions"] == 2


def test_record_from_api_object() -> None:
    lease = {
        "metadata": {"resourceVersion": "42"},
        "spec": {
            "holderIdentity": "pod-a",
            "leaseDurationSeconds": 15,
            "renewTime": "2025-03-01T12:00:00.000000Z",
            "leaseTransitions": 2,
        },
    }
    assert record_from(lease) == LeaseRecord(
        "pod-a", 15.0, None, "2025-03-01T12:00:00.000000Z", 2, "42"
    )
    assert record_from({"metadata": {}, "spec": {}}).holder == ""


def test_micro_time() -> None:
    assert micro_time(WALL) == "2025-03-01T12:00:00.000000Z"


def test_renew_deadline_must_be_shorter_than_the_lease() -> None:
    with pytest.raises(ValueError):
        Election("me", 10, 10)
