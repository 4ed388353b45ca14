"""A change the apply step could not make is recorded as failed and leaves one Warning Event
(``ChangeFailed``) on each Service it was for; everything else in the plan still happens.

The clients are stand-ins here (each failure is one line to arrange); the bed tests show the
same on the real apiserver and the DigitalOcean imitation.
"""

from __future__ import annotations

from typing import Any

import pytest

from floating_ip.adapters.digitalocean import DigitalOcean
from floating_ip.adapters.kubernetes import Kubernetes
from floating_ip.apply import MAX_MESSAGE, Applier, Failure
from floating_ip.core.model import ObjectRef, Plan
from floating_ip.core.plan import plan
from floating_ip.deadline import Deadline
from floating_ip.errors import PermanentError
from tests.core.builders import IP_A, nodes, observe, rip, svc

JSON = dict[str, Any]


class FakeKube(Kubernetes):
    def __init__(self, refuse_patches: bool = False) -> None:
        self.refuse_patches = refuse_patches
        self.patches: list[str] = []
        self.events: list[JSON] = []

    def patch_service(self, namespace: str, name: str, body: JSON) -> JSON:
        if self.refuse_patches:
            raise PermanentError(f"kubernetes patch service {namespace}/{name}: 422 Invalid")
        self.patches.append(f"{namespace}/{name}")
        return {"metadata": {"resourceVersion": "2"}}

    def create_event(self, namespace: str, body: JSON) -> JSON:
        self.events.append(body)
        return body


class FakeDo(DigitalOcean):
    def __init__(self, action_status: str = "completed", refuse: bool = False) -> None:
        self.action_status = action_status
        self.refuse = refuse
        self.assigned: list[tuple[str, int]] = []

    def assign(self, ip: str, droplet_id: int) -> JSON:
        if self.refuse:
            raise PermanentError(f"digitalocean assign {ip}: 403 You are not authorized.")
        self.assigned.append((ip, droplet_id))
        return {"id": 7, "status": self.action_status}

    def create_firewall(self, body: JSON) -> JSON:
        return {"id": "fw-1"}

    def reserved_ips(self) -> list[JSON]:
        return [{"ip": IP_A, "region": {"slug": "ams3"}, "droplet": None, "locked": False}]


def first_placement() -> Plan:
    return plan(observe(svc("web", on=["n1"]), nodes=nodes("n1"), ips=[rip(IP_A)]))


def warnings(kube: FakeKube) -> list[JSON]:
    return [e for e in kube.events if e["reason"] == "ChangeFailed"]


@pytest.mark.parametrize(
    ("do", "needle"),
    [
        pytest.param(FakeDo(action_status="errored"), "action errored", id="errored-action"),
        pytest.param(FakeDo(refuse=True), "403", id="refused-assign"),
    ],
)
def test_a_failed_assignment_warns_the_service_and_skips_what_depended_on_it(
    do: FakeDo, needle: str
) -> None:
    kube = FakeKube()
    applied = Applier(kube, do, Deadline(10), dry_run=False).apply(first_placement())
    [failure] = applied.failures
    assert failure.services == ((ObjectRef("default", "web"), "uid-web"),)
    [warning] = warnings(kube)
    assert warning["type"] == "Warning"
    assert warning["involvedObject"]["uid"] == "uid-web"
    assert IP_A in warning["message"] and needle in warning["message"]
    assert applied.errors
    assert [e["reason"] for e in kube.events if e["type"] == "Normal"] == ["FirewallUpdated"]
    # The finalizer, then the new anchor; the status patch waits for the assignment.
    assert kube.patches == ["default/web", "default/web"]


def test_a_refused_assign_of_an_ip_already_in_place_is_success() -> None:
    """A repeated POST (its first answer lost) is refused, but the IP is where it should be."""

    class AlreadyThere(FakeDo):
        def reserved_ips(self) -> list[JSON]:
            return [{"ip": IP_A, "droplet": {"id": 101}, "locked": False}]

    kube = FakeKube()
    applied = Applier(kube, AlreadyThere(refuse=True), Deadline(10), dry_run=False).apply(
        first_placement()
    )
    assert applied.failures == [] and applied.errors == []
    assert applied.completed_ips == {IP_A}
    assert warnings(kube) == []
    assert [e["reason"] for e in kube.events] == ["FirewallUpdated", "IPAssigned"]


def test_a_refused_service_patch_warns_that_service() -> None:
    kube = FakeKube(refuse_patches=True)
    applied = Applier(kube, FakeDo(), Deadline(10), dry_run=False).apply(first_placement())
    assert {f.what for f in applied.failures} == {"update Service default/web"}
    assert all("422" in w["message"] for w in warnings(kube))
    assert len(warnings(kube)) == len(applied.failures)


def test_a_dry_run_fails_nothing() -> None:
    kube = FakeKube(refuse_patches=True)
    do = FakeDo(refuse=True)
    applied = Applier(kube, do, Deadline(10), dry_run=True).apply(first_placement())
    assert applied.failures == [] and applied.errors == []
    assert kube.events == [] and do.assigned == []


def test_a_long_error_is_cut_to_an_event_message() -> None:
    failure = Failure("assign x", "e" * 10_000, ())
    assert len(failure.message) == MAX_MESSAGE
