"""Several reserved IPs moving in one run (a node that held several Services' IPs died): every
assignment is started before any is waited for, then their actions are read together on one
schedule, and each IP's outcome is its own. Make-before-break holds for every IP.

The fakes journal every call in order (tests/function/fakes.py); each IP's action follows its
own script of statuses, and the clock moves only when apply waits or a POST takes time."""

from __future__ import annotations

import itertools
import math

import pytest

from floating_ip.apply import ACTION_READS_PER_TICK, Applied, Applier, action_poll_delays
from floating_ip.core.model import (
    Assignment,
    Event,
    EventType,
    ObjectRef,
    Plan,
    Reason,
    ServicePatch,
)
from floating_ip.errors import PermanentError, TransientError
from floating_ip_common import contract
from tests.function.fakes import JSON, FakeDeadline, FakeDigitalOcean, FakeKube, Journal

IPS = ("203.0.113.11", "203.0.113.12", "203.0.113.13")
OLD, NEW = "10.20.0.1", "10.20.0.2"
OLD_DROPLET, NEW_DROPLET = 101, 102
POST_SECONDS = 0.1
RATE_LIMIT_PER_MINUTE = 250


class ScriptedDigitalOcean(FakeDigitalOcean):
    """Each IP's action answers its own statuses in turn: the POST's answer, then one per
    read (the last one stays). A POST takes ``POST_SECONDS`` on the deadline's clock."""

    def __init__(
        self,
        journal: Journal,
        deadline: FakeDeadline,
        scripts: dict[str, tuple[str, ...]],
        listed: list[JSON] | None = None,
    ) -> None:
        super().__init__(journal, reserved_ips=listed)
        self.deadline = deadline
        self.scripts = {ip: list(statuses) for ip, statuses in scripts.items()}
        self.ids = {100 + n: ip for n, ip in enumerate(scripts)}

    def _next(self, ip: str) -> str:
        script = self.scripts[ip]
        return script.pop(0) if len(script) > 1 else script[0]

    def assign(self, ip: str, droplet_id: int) -> JSON:
        self.journal.call("assign", ip, str(droplet_id))
        self.deadline.now += POST_SECONDS
        action_id = next(i for i, known in self.ids.items() if known == ip)
        return {"id": action_id, "status": self._next(ip)}

    def action(self, action_id: int) -> JSON:
        self.journal.call("action", self.ids[action_id])
        return {"id": action_id, "status": self._next(self.ids[action_id])}


def service(ip: str) -> ObjectRef:
    return ObjectRef("apps", f"web-{ip.rsplit('.', 1)[1]}")


def fanout_plan(ips: tuple[str, ...] = IPS) -> Plan:
    """Every IP's Service gains the new holder's anchor, the IP moves, the old anchor goes."""
    adds, assignments, drops, events = [], [], [], []
    for ip in ips:
        ref = service(ip)
        adds.append(
            ServicePatch(
                ref,
                f"uid-{ref.name}",
                "41",
                external_ips=(OLD, NEW),
                annotations=((contract.ANCHOR_IP, f"{OLD},{NEW}"),),
            )
        )
        assignments.append(Assignment(ip, NEW_DROPLET, "node-b", OLD_DROPLET))
        drops.append(
            ServicePatch(
                ref,
                f"uid-{ref.name}",
                external_ips=(NEW,),
                annotations=((contract.ANCHOR_IP, NEW),),
                after_ip=ip,
            )
        )
        events.append(
            Event(ref, f"uid-{ref.name}", EventType.NORMAL, Reason.IP_MOVED, "moved", after_ip=ip)
        )
    return Plan(
        before_assign=tuple(adds),
        assignments=tuple(assignments),
        after_assign=tuple(drops),
        events=tuple(events),
    )


def run(
    scripts: dict[str, tuple[str, ...]],
    journal: Journal,
    *,
    deadline: FakeDeadline | None = None,
    listed: list[JSON] | None = None,
    dry_run: bool = False,
) -> Applied:
    deadline = deadline or FakeDeadline()
    do = ScriptedDigitalOcean(journal, deadline, scripts, listed)
    plan = fanout_plan(tuple(scripts))
    return Applier(FakeKube(journal), do, deadline, dry_run=dry_run).apply(plan)


def steps(journal: Journal) -> list[tuple[str, ...]]:
    """The journal, each Service patch named by what it does, each action read by its IP."""
    named: list[tuple[str, ...]] = []
    for call in journal.calls:
        if call[0] == "patch":
            named.append(("add" if f"'{OLD}', '{NEW}'" in call[2] else "drop", call[1]))
        else:
            named.append(call)
    return named


def records(applied: Applied) -> dict[str, JSON]:
    return {c["ip"]: c for c in applied.changes if c["kind"] == "reserved_ip"}


def dropped(journal: Journal) -> set[str]:
    return {call[1] for call in steps(journal) if call[0] == "drop"}


def test_every_assignment_is_posted_before_the_first_action_read() -> None:
    journal = Journal()
    applied = run(dict.fromkeys(IPS, ("in-progress", "completed")), journal)
    operations = journal.operations()
    assert [c for c in steps(journal) if c[0] == "assign"] == [
        ("assign", ip, str(NEW_DROPLET)) for ip in IPS
    ]
    assert max(i for i, op in enumerate(operations) if op == "assign") < operations.index("action")
    assert applied.completed_ips == set(IPS)
    assert applied.pending_ips == set() and applied.errors == [] and applied.failures == []
    assert {r["status"] for r in records(applied).values()} == {"completed"}


def test_one_schedule_serves_every_action_instead_of_one_schedule_per_ip() -> None:
    """Three actions that each need five reads are all seen done after ceil(15 / 2) = 8 ticks
    of one schedule (two reads a tick), not 3 x 5 ticks one IP after the other."""
    journal = Journal()
    deadline = FakeDeadline()
    run(dict.fromkeys(IPS, ("in-progress",) * 5 + ("completed",)), journal, deadline=deadline)
    ticks = len(deadline.slept)
    reads = journal.operations().count("action")
    assert reads == 5 * len(IPS)
    assert ticks == math.ceil(reads / ACTION_READS_PER_TICK)
    assert [seconds for seconds, _ in deadline.slept] == list(
        itertools.islice(action_poll_delays(), ticks)
    )


def test_an_action_seen_done_early_is_timed_from_its_own_post_and_read_no_more() -> None:
    journal = Journal()
    deadline = FakeDeadline()
    first, second, third = IPS
    applied = run(
        {
            first: ("completed",),  # done when the POST answered
            second: ("in-progress", "completed"),  # done at its first read
            third: ("in-progress",) * 6 + ("completed",),
        },
        journal,
        deadline=deadline,
    )
    reads = [c[1] for c in journal.calls if c[0] == "action"]
    assert first not in reads, "an action its POST answered done is not read"
    assert reads.count(second) == 1
    took = {ip: r["seconds"] for ip, r in records(applied).items()}
    # Each from its own POST: the first's own POST took 0.1 s; the others came after it.
    assert took[first] == pytest.approx(POST_SECONDS)
    assert took[second] == pytest.approx(2 * POST_SECONDS + 0.15)
    assert took[second] < took[third]
    assert applied.completed_ips == set(IPS)


def test_an_errored_action_fails_alone() -> None:
    journal = Journal()
    first, failing, third = IPS
    applied = run(
        {
            first: ("in-progress", "completed"),
            failing: ("in-progress", "in-progress", "errored"),
            third: ("in-progress", "completed"),
        },
        journal,
    )
    assert applied.completed_ips == {first, third}
    assert applied.errors == [f"assign {failing} to droplet {NEW_DROPLET}: action errored"]
    [failure] = applied.failures
    assert failing in failure.what and "errored" in failure.error
    assert records(applied)[failing]["status"] == "errored"
    assert dropped(journal) == {str(service(first)), str(service(third))}


def test_an_action_still_running_at_the_deadline_is_pending_while_the_others_complete() -> None:
    journal = Journal()
    first, slow, third = IPS
    applied = run(
        {first: ("in-progress", "completed"), slow: ("in-progress",), third: ("completed",)},
        journal,
        deadline=FakeDeadline(2.0),
    )
    assert applied.completed_ips == {first, third}
    assert applied.pending_ips == {slow}
    assert applied.errors == []
    assert [f.error for f in applied.failures] == [
        "DigitalOcean's action was still in progress at the deadline"
    ]
    assert records(applied)[slow]["status"] == "in-progress"
    assert "seconds" not in records(applied)[slow]
    assert dropped(journal) == {str(service(first)), str(service(third))}


def test_a_refused_read_fails_that_assignment_alone_after_looking_where_the_ip_is() -> None:
    journal = Journal()
    journal.fail("action", PermanentError("digitalocean get action: 404 not found"))
    applied = run(dict.fromkeys(IPS, ("in-progress", "completed")), journal)
    refused = next(c[1] for c in journal.calls if c[0] == "action")
    assert applied.completed_ips == set(IPS) - {refused}
    assert applied.errors == ["digitalocean get action: 404 not found"]
    assert journal.operations().count("list reserved IPs") == 1
    assert dropped(journal) == {str(service(ip)) for ip in IPS if ip != refused}


def test_a_repeated_post_refused_for_an_ip_already_in_place_is_success_among_others() -> None:
    repeated = IPS[1]
    journal = Journal()
    journal.fail("assign", None, PermanentError("digitalocean assign: 422 locked"))
    listed = [{"ip": repeated, "droplet": {"id": NEW_DROPLET}, "locked": False}]
    applied = run(dict.fromkeys(IPS, ("in-progress", "completed")), journal, listed=listed)
    assert applied.completed_ips == set(IPS)
    assert applied.failures == [] and applied.errors == []
    assert [c[1] for c in journal.calls if c[0] == "assign"] == list(IPS)
    assert repeated not in [c[1] for c in journal.calls if c[0] == "action"]


def test_a_transient_failure_of_a_later_post_propagates_before_any_wait() -> None:
    journal = Journal()
    journal.fail("assign", None, *[TransientError("digitalocean assign: 503")] * 100)
    with pytest.raises(TransientError):
        run(dict.fromkeys(IPS, ("in-progress", "completed")), journal)
    assert "action" not in journal.operations()
    assert dropped(journal) == set()


def test_make_before_break_holds_for_every_ip() -> None:
    journal = Journal()
    first, second, third = IPS
    run(
        {
            first: ("in-progress", "completed"),
            second: ("in-progress",) * 4 + ("completed",),
            third: ("completed",),
        },
        journal,
    )
    named = steps(journal)
    at = {kind: [i for i, c in enumerate(named) if c[0] == kind] for kind in ("add", "drop")}
    assigns = [i for i, c in enumerate(named) if c[0] in ("assign", "action")]
    events = [i for i, c in enumerate(named) if c[0] == "event"]
    assert len(at["add"]) == len(at["drop"]) == len(events) == len(IPS)
    # Every new anchor before the first POST; every old anchor dropped after the last read.
    assert max(at["add"]) < min(assigns)
    assert max(assigns) < min(at["drop"])
    assert max(at["drop"]) < min(events)


def test_reads_are_capped_per_tick_and_every_running_action_is_read_in_turn() -> None:
    """Five IPs whose actions outlast the whole deadline: the reads stay within about a third
    of the token's minute, and no action waits more than its turn to be read."""
    ips = tuple(f"203.0.113.{20 + n}" for n in range(5))
    journal = Journal()
    deadline = FakeDeadline(23.0)  # the most an invocation has (deadline.MAX_BUDGET - margin)
    applied = run(dict.fromkeys(ips, ("in-progress",)), journal, deadline=deadline)
    assert applied.pending_ips == set(ips)
    reads = [c[1] for c in journal.calls if c[0] == "action"]
    turn = math.ceil(len(ips) / ACTION_READS_PER_TICK)
    for tick in range(len(deadline.slept)):
        window = reads[tick * ACTION_READS_PER_TICK : (tick + turn) * ACTION_READS_PER_TICK]
        if len(window) == turn * ACTION_READS_PER_TICK:
            assert set(window) == set(ips)
    assert len(reads) <= ACTION_READS_PER_TICK * len(deadline.slept)
    assert len(reads) <= 0.34 * RATE_LIMIT_PER_MINUTE


def test_two_actions_are_both_read_every_tick() -> None:
    journal = Journal()
    deadline = FakeDeadline()
    pair = IPS[:2]
    run(dict.fromkeys(pair, ("in-progress",) * 3 + ("completed",)), journal, deadline=deadline)
    assert len(deadline.slept) == 3
    assert [c[1] for c in journal.calls if c[0] == "action"] == list(pair) * 3


def test_dry_run_of_several_assignments_makes_no_call() -> None:
    journal = Journal()
    applied = run(dict.fromkeys(IPS, ("in-progress",)), journal, dry_run=True)
    assert journal.calls == []
    assert [r["dry_run"] for r in records(applied).values()] == [True] * len(IPS)
    assert applied.completed_ips == set() and applied.pending_ips == set()
