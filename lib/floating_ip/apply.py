"""Apply: carry out a ``Plan`` in its order, make-before-break, and record what happened.

0. the cleanup finalizer on every opted-in Service that lacks it (an IP of a Service whose
finalizer could not be added is not moved or created), then the reserved IPs created for
``address: auto`` Services (``core/allocation.py``); 1. the firewall; 2. Service patches
that add the new holder's anchor IP (to ``spec.externalIPs``, or to ``status.loadBalancer.ingress``
through ``services/status``);
3. the reserved-IP assignments (none when a patch of step 2 failed: the IPs stay on their
droplets): every one is started, then all are waited for together until their actions end,
so when several IPs move at once (their holders gone together) the last one moves one action
time after the change, not one action time per IP before it; 4. patches that drop old
anchors and write status (skipped when their assignment did not complete: the old anchor
then stays); 5. Events; 6. unclaimed IPs released (when the user opted in), and the IPs the
function created that no Service asks for any more unassigned and deleted; 7. the finalizer
removed from deleted and opted-out Services, only when every cloud write of the run
succeeded (else a ``CleanupFailed`` Warning on each: their cleanup is retried while they
exist). Dry run records every write it would make and makes none.

A change decided but not made (an action DigitalOcean reports ``errored``, one still running
at the deadline, a write refused) is recorded as failed: it leaves a Warning Event
(``ChangeFailed``) on the Services it concerns, and the answer asks the sender to retry.

In relay mode the Kubernetes writes are collected for the caller to make (the adapter
``defers_writes``): a run that must add new anchors stops after step 2 and asks to be called
again once they are in place; that next run moves the IPs and drops the old anchors.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any

from floating_ip import translate
from floating_ip.adapters.digitalocean import DigitalOcean, LimitReached, NotFound, TokenRefused
from floating_ip.adapters.kubernetes import KubernetesApi
from floating_ip.core import allocation as ownership
from floating_ip.core.model import (
    Allocation,
    Assignment,
    Event,
    EventType,
    FirewallAction,
    FirewallChange,
    ObjectRef,
    Plan,
    Reason,
    Release,
    ServicePatch,
    Unclaimed,
)
from floating_ip.deadline import Deadline
from floating_ip.errors import PermanentError, TransientError
from floating_ip.retry import with_retries
from floating_ip_common import contract

ACTION_POLL_FAST = 0.15
ACTION_POLL_FAST_FOR = 3.0
ACTION_POLL_GROWTH = 1.5
ACTION_POLL_SLOW = 1.0
"""The move is done only when we see it, and the old anchor is dropped only then: each poll
interval is time the failover may overshoot the action. So poll every 0.15 s for the first
3 s (an action that short is over at most 0.15 s before we know), then back off to one read a
second. A token has 250 requests a minute for everything: an 11 s action costs ~32 reads, a
minute-long one ~81, never more than a third of the budget."""
ACTION_READS_PER_TICK = 2
"""Several assignments are waited for on one schedule, reading at most this many of their
actions per tick, the least recently read first. Reading all N would cost N times the reads
of one action (N = 5 IPs for 11 s: ~160 of the token's 250 a minute). One invocation waits
at most ~23 s, ~42 ticks: at most ~84 reads, a third of a minute's budget, however many IPs
move. The price: of actions that end together, all but two are seen a tick or more later."""
COMPONENT = "floating-ip"
MAX_MESSAGE = 1024
"""Kubernetes keeps an Event's message short; a DigitalOcean error body can be long."""

JSON = dict[str, Any]


@dataclass
class Applied:
    """What apply did (or, in dry run, would do), in order, for the report."""

    changes: list[JSON] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    completed_ips: set[str] = field(default_factory=set)
    pending_ips: set[str] = field(default_factory=set)
    """Assignments still in progress when the deadline came: the sender should retry."""
    failures: list[Failure] = field(default_factory=list)
    """Changes decided but not made, each with the Services its Warning goes to."""
    follow_up: bool = False
    """A reserved IP was created (or its creation refused): the next run places it (or
    announces the refusal), so the sender should come back soon."""
    again: bool = False
    """Relay mode: Kubernetes writes that must be in place first (new anchors, the cleanup
    finalizer, an allocation marker) are made by the caller; the cloud writes that depend on
    them happen when it calls again (make-before-break across two calls)."""


@dataclass
class _Move:
    """An assignment started in step 3, followed until its action ends or time runs out."""

    assignment: Assignment
    record: JSON
    started: float
    """``deadline.elapsed()`` before its POST."""
    action_id: int = 0
    status: str = "in-progress"
    seconds: float | None = None
    """From its POST to when its action was seen ended."""
    refused: PermanentError | None = None
    """The POST, or a read of its action, was refused."""

    @property
    def running(self) -> bool:
        return self.refused is None and self.status == "in-progress"


@dataclass(frozen=True)
class Failure:
    what: str
    """``assign 203.0.113.10 to droplet 101``: the change, as a phrase."""
    error: str
    services: tuple[tuple[ObjectRef, str], ...]
    """``(Service, uid)`` pairs the change was for."""

    @property
    def message(self) -> str:
        text = f"Could not {self.what}: {self.error}; the change will be retried."
        return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 1] + "…"


class Applier:
    def __init__(
        self, kube: KubernetesApi, do: DigitalOcean, deadline: Deadline, *, dry_run: bool
    ) -> None:
        self.kube = kube
        self.do = do
        self.deadline = deadline
        self.dry_run = dry_run
        self.result = Applied()
        self._versions: dict[str, str] = {}
        self._cloud_errors: list[str] = []
        """Cloud writes that failed this run: a leaving Service keeps its finalizer."""
        self._services: tuple[tuple[str | None, ObjectRef, str], ...] = ()

    def apply(self, plan: Plan) -> Applied:
        """The plan's steps, in make-before-break order (see the module's docstring)."""
        self._services = tuple((r.address, r.service, r.uid) for r in plan.reports)
        failed = self._add_finalizers(plan.finalizers_added)
        written_later = self._written_by_the_caller(plan.finalizers_added)
        self._allocate(plan.allocations, failed, written_later)
        unfinalized = failed | written_later
        assignments = [a for a in plan.assignments if not self._concerns(a.ip, unfinalized)]
        self._hold_ips(
            [a for a in plan.assignments if self._concerns(a.ip, failed)],
            "the cleanup finalizer could not be added to its Service first",
        )
        self._keep_firewall(plan.firewall)
        if self._add_new_anchors(plan.before_assign):
            if self._deferring() and plan.before_assign and assignments:
                self.result.again = True
            else:
                self._move_ips(assignments)
        else:
            self._hold_ips(assignments, "a new anchor IP could not be added first")
        self._drop_old_anchors(plan.after_assign)
        self._send_events(plan.events)
        self._release(plan.unassignments)
        self._give_back(plan.releases)
        self._warn_of_failures()
        self._remove_finalizers(plan.finalizers_removed)
        return self.result

    # --- the steps ----------------------------------------------------------------------------

    def _keep_firewall(self, change: FirewallChange | None) -> None:
        if change is not None:
            self._firewall(change)

    def _add_new_anchors(self, patches: Sequence[ServicePatch]) -> bool:
        """True when every new anchor is in place, so the IPs may move to it."""
        made = [self._patch(patch) for patch in patches]
        return all(made)

    def _move_ips(self, assignments: Sequence[Assignment]) -> None:
        """Every assignment is started before any is waited for: they are independent IPs,
        and DigitalOcean runs their actions side by side."""
        moves = [move for a in assignments if (move := self._start_assign(a)) is not None]
        self._wait_for(moves)
        for move in moves:
            self._settle(move)

    def _hold_ips(self, assignments: Sequence[Assignment], because: str) -> None:
        """A new holder without its anchor in ``spec.externalIPs`` would drop the traffic, and
        a Service without the finalizer could be deleted without its cleanup: the IPs stay
        where they are (and so do the old anchors) until a later run."""
        for assignment in assignments:
            self.result.errors.append(
                f"assign {assignment.ip} to droplet {assignment.droplet_id}: not started, "
                f"because {because}"
            )

    def _add_finalizers(self, patches: Sequence[ServicePatch]) -> frozenset[ObjectRef]:
        """The finalizer first; the Services it could not be added to."""
        return frozenset(patch.service for patch in patches if not self._patch(patch))

    def _deferring(self) -> bool:
        """Relay mode: the caller makes this run's Kubernetes writes after the answer."""
        return self.kube.defers_writes and not self.dry_run

    def _written_by_the_caller(self, patches: Sequence[ServicePatch]) -> frozenset[ObjectRef]:
        """Relay mode: the Services whose finalizer the caller adds after this answer; nothing
        of theirs reaches DigitalOcean before it is in place (the next call goes on)."""
        if not self._deferring() or not patches:
            return frozenset()
        self.result.again = True
        return frozenset(patch.service for patch in patches)

    def _allocate(
        self,
        allocations: Sequence[Allocation],
        unfinalized: frozenset[ObjectRef],
        written_later: frozenset[ObjectRef],
    ) -> None:
        """Each new reserved IP: the marker first, then ONE create call (a repeat after a lost
        answer could create a second IP: the next run adopts the first instead), then the
        record, then its assignment waited for."""
        for allocation in allocations:
            if allocation.service in written_later:
                continue
            if allocation.service in unfinalized:
                self.result.errors.append(
                    f"create a reserved IP for Service {allocation.service}: not started, "
                    "because the cleanup finalizer could not be added to it first"
                )
                continue
            self._create_for(allocation)

    def _create_for(self, allocation: Allocation) -> None:
        ref, uid, droplet = allocation.service, allocation.uid, allocation.droplet_id
        marker = ServicePatch(
            ref,
            uid,
            allocation.resource_version,
            annotations=((contract.ALLOCATION, ownership.in_flight(droplet, allocation.existing)),),
        )
        if not self._patch(marker):
            return
        if self._deferring() and not allocation.marked:
            # Relay mode: the marker must be on the Service before the create call.
            self.result.again = True
            return
        record: JSON = {"kind": "create_reserved_ip", "service": str(ref), "droplet_id": droplet}
        if self._record(record):
            return
        self.result.follow_up = True
        try:
            created, action_id = self.do.create_reserved_ip(droplet)
        except TransientError as error:
            # Perhaps created all the same: the marker lets the next run find it.
            self._fail(record, error)
            return
        except PermanentError as error:
            record["error"] = str(error)
            marker_text = ownership.refused(str(error), refusal_kind(error))
            answer = ((contract.ALLOCATION, marker_text),)
            self._patch(ServicePatch(ref, uid, annotations=answer))
            return
        ip = str(created["ip"])
        record["ip"] = ip
        # The marker stays until the IP is seen assigned (core/allocation.py).
        owned = ((contract.OWNED_ADDRESS, ip),)
        if not self._patch(ServicePatch(ref, uid, annotations=owned)):
            return  # the marker stays: the next run adopts the IP on the droplet
        where = f"node {allocation.node_name} (droplet {droplet})"
        message = f"Reserved IP {ip} created for this Service on {where}"
        self._event(Event(ref, uid, EventType.NORMAL, Reason.IP_CREATED, message))
        if action_id is not None:
            with contextlib.suppress(TransientError, PermanentError):
                record["status"] = self._wait(action_id, "in-progress", ip)

    def _give_back(self, releases: Sequence[Release]) -> None:
        """Owned IPs no Service asks for: unassigned, deleted, then forgotten; a failure
        keeps the record (and a deleted Service's finalizer) for the next run."""
        for release in releases:
            record: JSON = {"kind": "release_reserved_ip", "service": str(release.service)}
            record["ip"] = release.ip
            if release.delete and self._record(record):
                continue
            if release.delete and not self._delete_owned(release, record):
                self._cloud_errors.append(f"release {release.ip}: {record.get('error')}")
                continue
            if release.unassign_from is not None:
                self.result.follow_up = True  # its droplet is free now for another IP
            if release.forget is not None:
                self._patch(release.forget)
            if release.delete and release.forget is not None:
                message = f"Reserved IP {release.ip} released (unassigned and deleted)"
                self._event(
                    Event(
                        release.service, release.uid, EventType.NORMAL, Reason.IP_RELEASED, message
                    )
                )

    def _delete_owned(self, release: Release, record: JSON) -> bool:
        ip = release.ip
        try:
            if release.unassign_from is not None:
                action = self._retry(f"unassign {ip}", lambda: self.do.unassign(ip))
                status = self._wait(int(action["id"]), action.get("status", ""), ip)
                if status != "completed":
                    raise PermanentError(f"unassign {ip}: action {status}")
            # NotFound: a repeated DELETE whose first answer was lost; gone all the same.
            with contextlib.suppress(NotFound):
                self._retry(f"delete {ip}", lambda: self.do.delete_reserved_ip(ip))
        except (PermanentError, TransientError) as error:
            self._fail(record, error)
            return False
        record["status"] = "deleted"
        return True

    def _concerns(self, ip: str, services: frozenset[ObjectRef]) -> bool:
        return any(ref in services for ref, _ in self._sharing(ip))

    def _remove_finalizers(self, patches: Sequence[ServicePatch]) -> None:
        """A Service's finalizer goes only once its cleanup is done: every cloud write of
        this run (the firewall without its ports, releases) succeeded."""
        for patch in patches:
            if self._cloud_errors:
                self._event(cleanup_failed(patch, self._cloud_errors))
            else:
                self._patch(patch)

    def _drop_old_anchors(self, patches: Sequence[ServicePatch]) -> None:
        """An old anchor leaves only once its IP's assignment completed."""
        for patch in patches:
            if self._may_follow(patch.after_ip) and self._patch(patch) and _records_an_ip(patch):
                # An IP a crash left unrecorded, adopted: the next run places it.
                self.result.follow_up = True

    def _send_events(self, events: Sequence[Event]) -> None:
        for event in events:
            if self._may_follow(event.after_ip):
                self._event(event)

    def _release(self, unclaimed: Sequence[Unclaimed]) -> None:
        """Unclaimed IPs, unassigned only because the user opted in."""
        for ip in unclaimed:
            self._unassign(ip)

    def _may_follow(self, ip: str | None) -> bool:
        return ip is None or self.dry_run or ip in self.result.completed_ips

    # --- the four kinds of write --------------------------------------------------------------

    def _firewall(self, change: FirewallChange) -> None:
        record: JSON = {"kind": "firewall", "action": str(change.action), "id": change.firewall_id}
        if change.body is not None:
            record["inbound_rules"] = len(change.body.inbound_rules)
        if self._record(record):
            return
        body = translate.firewall_body(change.body) if change.body is not None else None
        try:
            if change.action == FirewallAction.CREATE and body is not None:
                created = self._retry("create firewall", lambda: self.do.create_firewall(body))
                record["id"] = created.get("id")
            elif change.action == FirewallAction.UPDATE and body is not None and change.firewall_id:
                firewall_id = change.firewall_id
                self._retry("update firewall", lambda: self.do.update_firewall(firewall_id, body))
            elif change.action == FirewallAction.DELETE and change.firewall_id:
                firewall_id = change.firewall_id
                self._retry("delete firewall", lambda: self.do.delete_firewall(firewall_id))
        except PermanentError as error:
            self._fail(record, error)
            self._cloud_errors.append(f"{change.action} the firewall: {error}")
            everyone = tuple((ref, uid) for _, ref, uid in self._services)
            self._failed(f"{change.action} the firewall", error, everyone)

    def _patch(self, patch: ServicePatch) -> bool:
        """True when the patch was made (or, in dry run, would be). The ingress goes through
        ``services/status`` first (in LoadBalancer-class mode it is what serves traffic), then
        metadata and spec through the Service: two calls at most."""
        key = str(patch.service)
        # A Service patched twice in one run carries the version its last patch returned.
        version = self._versions.get(key) or patch.resource_version
        if patch.ingress is not None:
            ingress = translate.ingress_json(patch.ingress)
            record: JSON = {"kind": "service_status", "service": key, "ingress": ingress}
            body = _status_body(ingress, version)
            if not self._write(patch, record, body, self.kube.patch_service_status):
                return False
            version = self._versions.get(key, version)
        if patch.annotations or patch.external_ips is not None or patch.finalizers is not None:
            record = {"kind": "service", "service": key}
            if patch.finalizers is not None:
                record["finalizers"] = list(patch.finalizers)
            if patch.external_ips is not None:
                record["externalIPs"] = list(patch.external_ips)
            if patch.annotations:
                record["annotations"] = dict(patch.annotations)
            body = _patch_body(patch, version)
            return self._write(patch, record, body, self.kube.patch_service)
        return True

    def _write(
        self, patch: ServicePatch, record: JSON, body: JSON, call: Callable[[str, str, JSON], JSON]
    ) -> bool:
        """One patch call of the Service; False when it failed."""
        if self._record(record):
            return True
        key, ns, name = str(patch.service), patch.service.namespace, patch.service.name
        try:
            reply = self._retry(f"patch service {key}", lambda: call(ns, name, body))
        except PermanentError as error:
            self._fail(record, error)
            self._failed(f"update Service {key}", error, ((patch.service, patch.uid),))
            return False
        self._versions[key] = reply.get("metadata", {}).get("resourceVersion", "")
        return True

    def _start_assign(self, assignment: Assignment) -> _Move | None:
        """POST the assignment; None in dry run. A transient failure that outlasts the retries
        propagates: this action did not start (those started before it run on), nothing after
        it is written, and the sender retries."""
        record: JSON = {
            "kind": "reserved_ip",
            "ip": assignment.ip,
            "droplet_id": assignment.droplet_id,
            "node": assignment.node_name,
            "from_droplet_id": assignment.from_droplet_id,
        }
        if self._record(record):
            return None
        move = _Move(assignment, record, self.deadline.elapsed())
        ip, droplet = assignment.ip, assignment.droplet_id
        try:
            action = self._retry(f"assign {ip}", lambda: self.do.assign(ip, droplet))
        except PermanentError as error:
            move.refused = error
            return move
        move.action_id = int(action["id"])
        self._seen(move, action)
        return move

    def _wait_for(self, moves: Sequence[_Move]) -> None:
        """Read the actions still in progress on one schedule (see ACTION_READS_PER_TICK)
        until each has ended; those still running when time runs out stay ``in-progress``."""
        running = [move for move in moves if move.running]
        delays = action_poll_delays()
        try:
            while running:
                ips = ", ".join(move.assignment.ip for move in running)
                self.deadline.sleep(next(delays), f"the assignment of {ips}")
                read, rest = running[:ACTION_READS_PER_TICK], running[ACTION_READS_PER_TICK:]
                for move in read:
                    read_action = partial(self.do.action, move.action_id)
                    try:
                        self._seen(move, self._retry(f"action {move.action_id}", read_action))
                    except PermanentError as error:
                        move.refused = error
                # The unread go first next tick: every action is read within a few ticks.
                running = [move for move in rest + read if move.running]
        except TransientError:
            pass  # out of time: the actions run on without us; the next run sees the IPs

    def _seen(self, move: _Move, action: JSON) -> None:
        move.status = str(action.get("status", ""))
        if move.status != "in-progress":
            move.seconds = round(self.deadline.elapsed() - move.started, 3)

    def _settle(self, move: _Move) -> None:
        """Record how the assignment ended: completed, failed, or still in progress."""
        record, assignment = move.record, move.assignment
        ip, droplet = assignment.ip, assignment.droplet_id
        what = f"assign reserved IP {ip} to node {assignment.node_name} (droplet {droplet})"
        if move.refused is not None:
            # Looked up after the wait: a repeated POST's first action may have ended since.
            if self._already_on(ip, droplet):
                # A retried POST whose first answer was lost: DigitalOcean acted on the first
                # and refuses the repeat (422). The IP is where it should be.
                record["status"] = "completed"
                self.result.completed_ips.add(ip)
                return
            self._fail(record, move.refused)
            self._failed(what, move.refused, self._sharing(ip))
            return
        status = record["status"] = move.status
        if status == "in-progress":
            # The action runs on without us; the next run sees the IP locked, then moved.
            self.result.pending_ips.add(ip)
            late = "DigitalOcean's action was still in progress at the deadline"
            self._failed(what, late, self._sharing(ip))
            return
        record["seconds"] = move.seconds
        if status == "completed":
            self.result.completed_ips.add(ip)
        else:
            self.result.errors.append(f"assign {ip} to droplet {droplet}: action {status}")
            record["error"] = f"action {status}"
            self._failed(what, f"DigitalOcean's action {status}", self._sharing(ip))

    def _already_on(self, ip: str, droplet_id: int) -> bool:
        """Whether ``ip`` is already assigned to ``droplet_id``, with no action pending."""
        listed = self._retry_list("list reserved IPs", self.do.reserved_ips)
        found = [translate.reserved_ip(raw) for raw in listed if raw.get("ip") == ip]
        return any(r.droplet_id == droplet_id and not r.locked for r in found)

    def _unassign(self, unclaimed: Unclaimed) -> None:
        record: JSON = {
            "kind": "reserved_ip",
            "ip": unclaimed.ip,
            "droplet_id": None,
            "from_droplet_id": unclaimed.droplet_id,
        }
        if self._record(record):
            return
        ip = unclaimed.ip
        try:
            action = self._retry(f"unassign {ip}", lambda: self.do.unassign(ip))
            status = self._wait(int(action["id"]), action.get("status", ""), ip)
        except PermanentError as error:
            self._fail(record, error)
            self._cloud_errors.append(f"unassign {ip}: {error}")
            return
        record["status"] = status
        if status != "completed":
            self.result.errors.append(f"unassign {ip}: action {status}")
            self._cloud_errors.append(f"unassign {ip}: action {status}")

    def _wait(self, action_id: int, status: str, ip: str) -> str:
        delays = action_poll_delays()
        while status == "in-progress":
            self.deadline.sleep(next(delays), f"the assignment of {ip}")
            action = self._retry(f"action {action_id}", lambda: self.do.action(action_id))
            status = str(action.get("status", ""))
        return status

    def _event(self, event: Event) -> None:
        record: JSON = {
            "kind": "event",
            "service": str(event.service),
            "type": str(event.type),
            "reason": str(event.reason),
            "message": event.message,
        }
        if self._record(record):
            return
        body = _event_body(event)
        namespace = event.service.namespace
        try:
            self._retry("create event", lambda: self.kube.create_event(namespace, body))
        except PermanentError as error:
            self._fail(record, error)

    # --- helpers ------------------------------------------------------------------------------

    def _record(self, record: JSON) -> bool:
        """Record a write; True when it must not be made (dry run)."""
        record["dry_run"] = self.dry_run
        self.result.changes.append(record)
        return self.dry_run

    def _fail(self, record: JSON, error: Exception) -> None:
        record["error"] = str(error)
        self.result.errors.append(str(error))

    def _failed(
        self, what: str, error: Exception | str, services: tuple[tuple[ObjectRef, str], ...]
    ) -> None:
        self.result.failures.append(Failure(what, str(error), services))

    def _sharing(self, ip: str) -> tuple[tuple[ObjectRef, str], ...]:
        """The Services that use reserved IP ``ip``."""
        return tuple((ref, uid) for address, ref, uid in self._services if address == ip)

    def _warn_of_failures(self) -> None:
        """One Warning per Service per failed change, after everything else was tried."""
        for failure in self.result.failures:
            for ref, uid in failure.services:
                warning = Event(ref, uid, EventType.WARNING, Reason.CHANGE_FAILED, failure.message)
                self._event(warning)

    def _retry_list(self, what: str, call: Callable[[], list[JSON]]) -> list[JSON]:
        return with_retries(call, self.deadline, what)

    def _retry(self, what: str, call: Callable[[], object]) -> JSON:
        """Transient failures are retried inside the deadline; a conflict (409) propagates so
        the whole reconcile observes again."""
        reply = with_retries(call, self.deadline, what)
        return dict(reply) if isinstance(reply, dict) else {}


def _patch_body(patch: ServicePatch, resource_version: str) -> JSON:
    body: JSON = {"metadata": {}}
    if resource_version:
        body["metadata"]["resourceVersion"] = resource_version
    if patch.annotations:
        body["metadata"]["annotations"] = dict(patch.annotations)
    if patch.finalizers is not None:
        body["metadata"]["finalizers"] = list(patch.finalizers)
    if patch.external_ips is not None:
        body["spec"] = {"externalIPs": list(patch.external_ips)}
    return body


def cleanup_failed(patch: ServicePatch, errors: Sequence[str]) -> Event:
    """The Warning on a leaving Service whose cleanup failed; it says how to give it up."""
    remaining = list(patch.finalizers or ()) or None
    body = json.dumps({"metadata": {"finalizers": remaining}}, separators=(",", ":"))
    message = (
        f"Cleanup not finished, retried at every run; the finalizer {contract.FINALIZER} "
        f"keeps the Service until then (to give up: kubectl patch service "
        f"{patch.service.name} -n {patch.service.namespace} --type=merge -p '{body}'). "
        f"Failed: {'; '.join(errors)}"
    )
    if len(message) > MAX_MESSAGE:
        message = message[: MAX_MESSAGE - 1] + "…"
    return Event(patch.service, patch.uid, EventType.WARNING, Reason.CLEANUP_FAILED, message)


def _status_body(ingress: list[JSON], resource_version: str) -> JSON:
    body: JSON = {"status": {"loadBalancer": {"ingress": ingress}}}
    if resource_version:
        body["metadata"] = {"resourceVersion": resource_version}
    return body


def _event_body(event: Event) -> JSON:
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "metadata": {
            "name": f"{event.service.name}.{uuid.uuid4().hex[:16]}",
            "namespace": event.service.namespace,
        },
        "involvedObject": {
            "apiVersion": "v1",
            "kind": "Service",
            "namespace": event.service.namespace,
            "name": event.service.name,
            "uid": event.uid,
        },
        "type": str(event.type),
        "reason": str(event.reason),
        "message": event.message,
        "source": {"component": COMPONENT},
        "reportingComponent": COMPONENT,
        "reportingInstance": COMPONENT,
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    }


def action_poll_delays() -> Iterator[float]:
    """Seconds to wait before each read of an action in progress (see ACTION_POLL_FAST)."""
    waited = 0.0
    while waited < ACTION_POLL_FAST_FOR:
        waited += ACTION_POLL_FAST
        yield ACTION_POLL_FAST
    delay = ACTION_POLL_FAST
    while True:
        delay = min(ACTION_POLL_SLOW, delay * ACTION_POLL_GROWTH)
        yield delay


def _records_an_ip(patch: ServicePatch) -> bool:
    return any(key == contract.OWNED_ADDRESS and value for key, value in patch.annotations)


def refusal_kind(error: PermanentError) -> ownership.Refusal:
    """What a refused creation asks of the user, by the kind the adapter gave the answer."""
    if isinstance(error, LimitReached):
        return ownership.Refusal.LIMIT
    if isinstance(error, TokenRefused):
        return ownership.Refusal.ACCESS
    return ownership.Refusal.OTHER
