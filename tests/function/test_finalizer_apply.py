"""The apply step and the cleanup finalizer: it goes on before any cloud write, and comes off
only once the Service's cleanup succeeded (else a ``CleanupFailed`` Warning says how to give
up). The adapters are the journaling fakes of tests/function/fakes.py."""

from __future__ import annotations

import ast
import json

from floating_ip.apply import Applied, Applier
from floating_ip.core.model import (
    Allocation,
    Assignment,
    FirewallAction,
    FirewallChange,
    ObjectRef,
    Plan,
    ServicePatch,
    ServiceReport,
)
from floating_ip.errors import PermanentError
from floating_ip_common import contract
from tests.function.fakes import FakeDeadline, FakeDigitalOcean, FakeKube, Journal

IP = "203.0.113.10"
WEB = ObjectRef("apps", "web")
OLD = ObjectRef("apps", "old")
ADD = ServicePatch(WEB, "uid-web", "41", finalizers=(contract.FINALIZER,))
STATUS = ServicePatch(WEB, "uid-web", "41", annotations=((contract.STATUS, "placed"),))
REMOVE = ServicePatch(OLD, "uid-old", "7", finalizers=("example.com/keep",))
DELETE_FIREWALL = FirewallChange(FirewallAction.DELETE, "fw-1")
REPORT = ServiceReport(WEB, IP, None, None, None, "placed", uid="uid-web")


def run(plan: Plan, journal: Journal) -> Applied:
    return Applier(
        FakeKube(journal), FakeDigitalOcean(journal), FakeDeadline(), dry_run=False
    ).apply(plan)


def bodies(journal: Journal) -> list[tuple[str, dict[str, object]]]:
    """``(Service, body)`` of each patch, in order."""
    return [(call[1], ast.literal_eval(call[2])) for call in journal.calls if call[0] == "patch"]


def test_the_finalizer_goes_on_first_and_later_patches_carry_its_version() -> None:
    journal = Journal()
    run(Plan(finalizers_added=(ADD,), firewall=DELETE_FIREWALL, after_assign=(STATUS,)), journal)
    assert journal.operations() == ["patch", "delete firewall", "patch"]
    [(_, first), (_, second)] = bodies(journal)
    assert first == {"metadata": {"resourceVersion": "41", "finalizers": [contract.FINALIZER]}}
    # The plan's precondition is the version observed; our own write moved it on.
    assert second["metadata"]["resourceVersion"] == "1"


def test_an_ip_of_a_service_without_the_finalizer_is_not_moved() -> None:
    journal = Journal()
    journal.fail("patch", PermanentError("kubernetes patch: 403 forbidden"))
    plan = Plan(
        finalizers_added=(ADD,),
        assignments=(Assignment(IP, 102, "node-b"),),
        reports=(REPORT,),
    )
    applied = run(plan, journal)
    assert "assign" not in journal.operations()
    assert any("cleanup finalizer could not be added" in e for e in applied.errors)


def test_a_cleaned_up_service_loses_the_finalizer_and_keeps_the_others() -> None:
    journal = Journal()
    run(Plan(firewall=DELETE_FIREWALL, finalizers_removed=(REMOVE,)), journal)
    assert journal.operations() == ["delete firewall", "patch"]
    [(service, body)] = bodies(journal)
    assert service == "apps/old"
    assert body == {"metadata": {"resourceVersion": "7", "finalizers": ["example.com/keep"]}}


def test_a_failed_cleanup_keeps_the_finalizer_and_warns_how_to_give_up() -> None:
    journal = Journal()
    journal.fail("delete firewall", PermanentError("digitalocean delete firewall: 403 forbidden"))
    applied = run(Plan(firewall=DELETE_FIREWALL, finalizers_removed=(REMOVE,)), journal)
    assert "patch" not in journal.operations()
    assert ("event", "apps/old", "CleanupFailed") in journal.calls
    [warning] = [c for c in applied.changes if c.get("reason") == "CleanupFailed"]
    message = warning["message"]
    assert "403 forbidden" in message and contract.FINALIZER in message
    command = message.split("(to give up: ")[1].split(")")[0]
    assert command.startswith("kubectl patch service old -n apps --type=merge -p '")
    body = json.loads(command.split("-p '")[1].rstrip("'"))
    assert body == {"metadata": {"finalizers": ["example.com/keep"]}}


def test_the_give_up_command_drops_the_whole_list_when_ours_was_the_last() -> None:
    journal = Journal()
    journal.fail("delete firewall", PermanentError("digitalocean delete firewall: 500"))
    last = ServicePatch(OLD, "uid-old", "7", finalizers=())
    applied = run(Plan(firewall=DELETE_FIREWALL, finalizers_removed=(last,)), journal)
    [warning] = [c for c in applied.changes if c.get("reason") == "CleanupFailed"]
    assert """-p '{"metadata":{"finalizers":null}}'""" in warning["message"]


# --- relay mode: the caller makes the Kubernetes writes after the answer -------------------


class RelayedKube(FakeKube):
    """The journaling fake, as the relayed adapter: its writes reach the cluster only once
    the forwarder makes them after the answer."""

    defers_writes = True


def relayed(plan: Plan, journal: Journal) -> Applied:
    return Applier(
        RelayedKube(journal), FakeDigitalOcean(journal), FakeDeadline(), dry_run=False
    ).apply(plan)


def test_relayed_a_new_finalizer_goes_out_before_any_cloud_write_of_its_service() -> None:
    """The finalizer is in the answer; the IP moves on the next call, once it is in place."""
    journal = Journal()
    plan = Plan(
        finalizers_added=(ADD,),
        assignments=(Assignment(IP, 102, "node-b"),),
        reports=(REPORT,),
    )
    applied = relayed(plan, journal)
    assert journal.operations() == ["patch"]
    assert applied.again and not applied.errors


def test_relayed_an_ip_is_created_only_once_its_marker_is_on_the_service() -> None:
    """The marker is what makes a crash adopt the created IP instead of creating a second:
    relayed, it is written by the caller first, and the create waits for the next call."""
    first, second = Journal(), Journal()
    unmarked = Allocation(WEB, "uid-web", "41", 102, "node-b", ())
    applied = relayed(Plan(allocations=(unmarked,), reports=(REPORT,)), first)
    assert first.operations() == ["patch"] and applied.again
    marked = Allocation(WEB, "uid-web", "42", 102, "node-b", (), marked=True)
    relayed(Plan(allocations=(marked,), reports=(REPORT,)), second)
    assert "create reserved ip" in second.operations()
