"""Apply carries out a plan make-before-break: whatever call fails, a Service never loses the
anchor its IP's droplet serves, and nothing after a failed step pretends it succeeded.

The adapters are fakes that journal every call in order (tests/function/fakes.py); the plan
is written out by hand so each step is visible."""

from __future__ import annotations

import itertools

import pytest

from floating_ip.apply import Applied, Applier, action_poll_delays
from floating_ip.core.model import (
    Assignment,
    Event,
    EventType,
    FirewallAction,
    FirewallBody,
    FirewallChange,
    FirewallRule,
    ObjectRef,
    Plan,
    Reason,
    ServicePatch,
    Sources,
)
from floating_ip.errors import ConflictError, PermanentError, TransientError
from floating_ip_common import contract
from tests.function.fakes import FakeDeadline, FakeDigitalOcean, FakeKube, Journal

IP = "203.0.113.10"
OLD, NEW = "10.20.0.1", "10.20.0.2"
WEB = ObjectRef("apps", "web")
API = ObjectRef("apps", "api")

FIREWALL = FirewallChange(
    FirewallAction.UPDATE,
    "fw-1",
    FirewallBody(
        "floating-ip-c0ffee",
        (FirewallRule("tcp", "443", Sources(addresses=("0.0.0.0/0",))),),
        tags=("k8s:c0ffee",),
    ),
)
ADD_NEW_ANCHOR = ServicePatch(
    WEB,
    "uid-web",
    "41",
    external_ips=(OLD, NEW),
    annotations=((contract.ANCHOR_IP, f"{OLD},{NEW}"),),
)
MOVE = Assignment(IP, 102, "node-b", 101)
DROP_OLD_ANCHOR = ServicePatch(
    WEB,
    "uid-web",
    external_ips=(NEW,),
    annotations=((contract.ANCHOR_IP, NEW), (contract.HOLDER_NODE, "node-b")),
    after_ip=IP,
)
OTHER_STATUS = ServicePatch(API, "uid-api", "7", annotations=((contract.STATUS, "no fit node"),))
MOVED = Event(WEB, "uid-web", EventType.NORMAL, Reason.IP_MOVED, "moved to node-b", after_ip=IP)
WARNING = Event(API, "uid-api", EventType.WARNING, Reason.NO_FIT_NODE, "no node is fit")

MOVE_PLAN = Plan(
    firewall=FIREWALL,
    before_assign=(ADD_NEW_ANCHOR,),
    assignments=(MOVE,),
    after_assign=(DROP_OLD_ANCHOR, OTHER_STATUS),
    events=(MOVED, WARNING),
)
FULL_ORDER = [
    ("update firewall", "fw-1"),
    ("patch", "apps/web", "add"),
    ("assign", IP, "102"),
    ("patch", "apps/web", "drop"),
    ("patch", "apps/api", "status"),
    ("event", "apps/web", "IPMoved"),
    ("event", "apps/api", "NoFitNode"),
]


def run(
    plan: Plan,
    journal: Journal,
    *,
    action_statuses: tuple[str, ...] = ("completed",),
    dry_run: bool = False,
    deadline: FakeDeadline | None = None,
) -> Applied:
    kube = FakeKube(journal)
    do = FakeDigitalOcean(journal, action_statuses=action_statuses)
    return Applier(kube, do, deadline or FakeDeadline(), dry_run=dry_run).apply(plan)


def steps(journal: Journal) -> list[tuple[str, ...]]:
    """The journal with each Service patch named by what it does."""
    named: list[tuple[str, ...]] = []
    for call in journal.calls:
        if call[0] == "patch":
            body = call[2]
            kind = (
                "add"
                if f"'{OLD}', '{NEW}'" in body
                else "drop"
                if "externalIPs" in body
                else "status"
            )
            named.append(("patch", call[1], kind))
        elif call[0] != "action":
            named.append(call)
    return named


def test_a_move_is_made_before_the_old_anchor_is_broken() -> None:
    journal = Journal()
    applied = run(MOVE_PLAN, journal)
    assert steps(journal) == FULL_ORDER
    assert applied.errors == []
    assert applied.completed_ips == {IP}
    assert applied.pending_ips == set()
    assert [c["kind"] for c in applied.changes] == [
        "firewall",
        "service",
        "reserved_ip",
        "service",
        "service",
        "event",
        "event",
    ]


def test_the_second_patch_of_a_service_carries_the_version_the_first_returned() -> None:
    journal = Journal()
    run(MOVE_PLAN, journal)
    patches = [c for c in journal.calls if c[0] == "patch" and c[1] == "apps/web"]
    assert "'resourceVersion': '41'" in patches[0][2]
    assert "'resourceVersion': '1'" in patches[1][2]  # what the fake answered the first


def test_an_assignment_is_waited_for_until_its_action_completes() -> None:
    journal = Journal()
    deadline = FakeDeadline()
    applied = run(
        MOVE_PLAN, journal, action_statuses=("in-progress",) * 3 + ("completed",), deadline=deadline
    )
    assert journal.operations().count("action") == 3
    assert [seconds for seconds, _ in deadline.slept] == list(
        itertools.islice(action_poll_delays(), 3)
    )
    assert journal.operations().index("action") < journal.calls.index(
        ("event", "apps/web", "IPMoved")
    )
    assert applied.completed_ips == {IP}


def test_a_failed_firewall_write_is_reported_and_the_move_goes_on() -> None:
    journal = Journal()
    journal.fail("update firewall", PermanentError("digitalocean update firewall: 422 bad rule"))
    applied = run(MOVE_PLAN, journal)
    assert steps(journal) == FULL_ORDER
    assert applied.errors == ["digitalocean update firewall: 422 bad rule"]
    assert applied.changes[0]["error"] == "digitalocean update firewall: 422 bad rule"


def test_a_new_anchor_that_cannot_be_added_keeps_the_ip_and_the_old_anchor() -> None:
    journal = Journal()
    journal.fail("patch", PermanentError("kubernetes patch: 422 invalid"))
    applied = run(MOVE_PLAN, journal)
    # No assignment without the new anchor in place; the old anchor is not dropped; the
    # other Service's status (no assignment of its own) is still written.
    assert steps(journal) == [
        ("update firewall", "fw-1"),
        ("patch", "apps/web", "add"),
        ("patch", "apps/api", "status"),
        ("event", "apps/api", "NoFitNode"),
        ("event", "apps/web", "ChangeFailed"),  # the refused write, announced last
    ]
    assert applied.completed_ips == set()
    assert len(applied.errors) == 2
    assert "not started" in applied.errors[1]


def test_a_conflict_on_the_new_anchor_stops_apply_so_the_reconcile_observes_again() -> None:
    journal = Journal()
    journal.fail("patch", ConflictError("kubernetes patch: 409 conflict"))
    with pytest.raises(ConflictError):
        run(MOVE_PLAN, journal)
    assert steps(journal) == FULL_ORDER[:2]


@pytest.mark.parametrize(
    "failure",
    [
        pytest.param(PermanentError("digitalocean assign: 422 not allowed"), id="refused"),
        pytest.param(None, id="action-errored"),
    ],
)
def test_an_assignment_that_fails_keeps_the_old_anchor(failure: Exception | None) -> None:
    journal = Journal()
    if failure is not None:
        journal.fail("assign", failure)
    applied = run(MOVE_PLAN, journal, action_statuses=("in-progress", "errored"))
    # A refusal looks whether the IP is there already (a repeat of a lost POST); it is not.
    looked = [("list reserved IPs",)] if failure is not None else []
    # Only the steps that do not depend on the move follow it.
    assert steps(journal) == [
        ("update firewall", "fw-1"),
        ("patch", "apps/web", "add"),
        ("assign", IP, "102"),
        *looked,
        ("patch", "apps/api", "status"),
        ("event", "apps/api", "NoFitNode"),
    ]
    assert applied.completed_ips == set()
    assert len(applied.errors) == 1


def test_a_transient_failure_before_the_action_starts_propagates_for_the_sender_to_retry() -> None:
    journal = Journal()
    journal.fail("assign", *[TransientError("digitalocean assign: 503")] * 100)
    with pytest.raises(TransientError):
        run(MOVE_PLAN, journal)
    assert steps(journal)[:2] == FULL_ORDER[:2]
    assert {c[0] for c in journal.calls[2:]} == {"assign"}  # retried, nothing else written


def test_an_action_still_running_at_the_deadline_leaves_the_ip_pending_and_the_old_anchor() -> None:
    journal = Journal()
    applied = run(MOVE_PLAN, journal, action_statuses=("in-progress",), deadline=FakeDeadline(2.0))
    assert ("patch", "apps/web", "drop") not in steps(journal)
    assert ("event", "apps/web", "IPMoved") not in steps(journal)
    assert applied.pending_ips == {IP}
    assert applied.completed_ips == set()
    assert applied.errors == []
    [assign] = [c for c in applied.changes if c["kind"] == "reserved_ip"]
    assert assign["status"] == "in-progress"


def test_a_failed_old_anchor_drop_is_reported_and_the_move_stands() -> None:
    journal = Journal()
    journal.fail("patch", None, PermanentError("kubernetes patch: 403 forbidden"))
    applied = run(MOVE_PLAN, journal)
    assert steps(journal) == [*FULL_ORDER, ("event", "apps/web", "ChangeFailed")]
    assert applied.completed_ips == {IP}
    assert applied.errors == ["kubernetes patch: 403 forbidden"]


def test_a_failed_event_is_reported_and_nothing_else_changes() -> None:
    journal = Journal()
    journal.fail("event", PermanentError("kubernetes create event: 403 forbidden"))
    applied = run(MOVE_PLAN, journal)
    assert steps(journal) == FULL_ORDER
    assert applied.errors == ["kubernetes create event: 403 forbidden"]


def test_dry_run_records_every_write_in_order_and_makes_none() -> None:
    journal = Journal()
    applied = run(MOVE_PLAN, journal, dry_run=True)
    assert journal.calls == []
    assert [c["kind"] for c in applied.changes] == [
        "firewall",
        "service",
        "reserved_ip",
        "service",
        "service",
        "event",
        "event",
    ]
    assert all(c["dry_run"] for c in applied.changes)


@pytest.mark.parametrize(
    ("change", "call"),
    [
        (
            FirewallChange(FirewallAction.CREATE, None, FIREWALL.body),
            ("create firewall", "floating-ip-c0ffee"),
        ),
        (FIREWALL, ("update firewall", "fw-1")),
        (FirewallChange(FirewallAction.DELETE, "fw-1"), ("delete firewall", "fw-1")),
    ],
)
def test_each_firewall_change_makes_its_one_call(
    change: FirewallChange, call: tuple[str, ...]
) -> None:
    journal = Journal()
    applied = run(Plan(firewall=change), journal)
    assert journal.calls == [call]
    assert applied.changes[0]["action"] == str(change.action)
