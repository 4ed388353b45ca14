"""``address: auto``: when an IP is created, adopted, waited for or released; one row each."""

from __future__ import annotations

from dataclasses import replace

import pytest

from floating_ip.core.model import (
    Allocation,
    Reason,
    Release,
    ReservedIP,
    Service,
    ServicePatch,
)
from floating_ip.core.plan import plan
from floating_ip_common import contract
from tests.core.builders import IP_B, droplet, lb, nodes, observe, rip, svc

CREATED = "198.18.0.1"
AUTO = contract.AUTO


def auto(*, on: tuple[str, ...] = ("n1",), deleting: bool = False, **annotations: str) -> Service:
    notes = {key.replace("_", "-"): value for key, value in annotations.items()}
    named = {contract.PREFIX + key: value for key, value in notes.items()}
    service = svc("web", AUTO, on=on, annotations=named)
    finalizers = (contract.FINALIZER,)
    return replace(service, finalizers=finalizers, deleting=deleting)


def forget(service: Service, *keys: str) -> ServicePatch:
    return ServicePatch(
        service.ref,
        service.uid,
        service.resource_version,
        annotations=tuple((key, None) for key in keys),
    )


def test_an_auto_service_gets_an_ip_created_on_a_fit_free_droplet() -> None:
    service = auto(on=("n1", "n2"))
    decided = plan(observe(service, nodes=nodes("n1", "n2"), ips=[rip(IP_B, on="n1")]))
    assert decided.allocations == (Allocation(service.ref, service.uid, "1", droplet("n2"), "n2"),)
    [report] = decided.reports
    assert report.status == "Creating a reserved IP for this Service on node n2 (droplet 102)."
    assert report.problems == ()


@pytest.mark.parametrize(
    ("ips", "expected"),
    [
        pytest.param([rip(CREATED, on="n1")], "adopt", id="created-ip-on-the-marked-droplet"),
        pytest.param(
            [ReservedIP(CREATED, "ams3", None, locked=True)], "wait", id="still-assigning"
        ),
        pytest.param([], "create", id="the-call-created-nothing"),
        pytest.param([ReservedIP(CREATED, "ams3", None, locked=True)], "wait", id="wait-is-stable"),
    ],
)
def test_a_creation_interrupted_by_a_crash(ips: list[ReservedIP], expected: str) -> None:
    service = auto(allocation="droplet 101")
    decided = plan(observe(service, nodes=nodes("n1"), ips=ips))
    adopted = [
        p for p in decided.after_assign if (contract.OWNED_ADDRESS, CREATED) in p.annotations
    ]
    outcome = "adopt" if adopted else "create" if decided.allocations else "wait"
    assert outcome == expected
    if expected == "create":  # its own marker's empty droplet is free for it
        assert decided.allocations[0].droplet_id == droplet("n1")


def test_a_locked_ip_on_its_way_keeps_other_ips_off_the_marked_droplet() -> None:
    recorded = auto(allocation="droplet 101", owned_address=CREATED)
    other = replace(svc("api", AUTO, on=["n1"], tcp=[443]), finalizers=(contract.FINALIZER,))
    assigning = ReservedIP(CREATED, "ams3", None, locked=True)
    decided = plan(observe(recorded, other, nodes=nodes("n1"), ips=[assigning]))
    assert decided.allocations == ()
    assert not any((contract.ALLOCATION, None) in p.annotations for p in decided.after_assign), (
        "the marker stays while the IP is assigning"
    )


def test_the_marker_goes_once_the_recorded_ip_is_assigned() -> None:
    recorded = auto(allocation="droplet 101", owned_address=CREATED)
    decided = plan(observe(recorded, nodes=nodes("n1"), ips=[rip(CREATED, on="n1")]))
    assert forget(recorded, contract.ALLOCATION) in decided.after_assign


def test_a_refused_creation_is_announced_once_and_not_tried_again() -> None:
    refused = auto(allocation="refused: 422 You have reached the limit of reserved IPs")
    decided = plan(observe(refused, nodes=nodes("n1")))
    assert decided.allocations == ()
    [report] = decided.reports
    assert [p.reason for p in report.problems] == [Reason.IP_NOT_CREATED]
    assert "limit" in report.status and contract.ALLOCATION in report.status
    assert [e.reason for e in decided.events] == [Reason.IP_NOT_CREATED]
    announced = auto(
        allocation="refused: 422 You have reached the limit of reserved IPs", status=report.status
    )
    again = plan(observe(announced, nodes=nodes("n1")))
    assert again.allocations == () and again.events == (), "one Warning, no retry"


def test_no_fit_free_node_creates_nothing_and_says_why() -> None:
    service = auto(on=("n1",))
    decided = plan(observe(service, nodes=nodes("n1"), ips=[rip(IP_B, on="n1")]))
    assert decided.allocations == ()
    [report] = decided.reports
    assert report.status == (
        "No reserved IP is created for this Service yet: every fit node (n1) already holds "
        "a reserved IP."
    )


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        pytest.param(
            {"deleting": True},
            Release(auto().ref, auto().uid, CREATED, droplet("n1"), delete=True, forget=None),
            id="deleted",
        ),
        pytest.param(
            {"address": IP_B},
            Release(
                auto().ref,
                auto().uid,
                CREATED,
                droplet("n1"),
                delete=True,
                forget=forget(auto(), contract.OWNED_ADDRESS),
            ),
            id="switched-to-an-own-address",
        ),
    ],
)
def test_an_owned_ip_no_longer_asked_for_is_released(
    change: dict[str, object], expected: Release
) -> None:
    owned = auto(owned_address=CREATED)
    if "deleting" in change:
        owned = replace(owned, deleting=True)
    else:
        notes = dict(owned.annotations) | {contract.ADDRESS: str(change["address"])}
        owned = replace(owned, annotations=tuple(sorted(notes.items())))
    expected = replace(
        expected,
        forget=replace(expected.forget, annotations=expected.forget.annotations)
        if expected.forget
        else None,
    )
    decided = plan(observe(owned, nodes=nodes("n1", "n2"), ips=[rip(CREATED, on="n1"), rip(IP_B)]))
    assert decided.releases == (expected,)
    assert all(u.ip != CREATED for u in decided.unclaimed), "never reported as unclaimed"


def test_an_owned_ip_another_service_names_is_only_forgotten() -> None:
    leaving = auto(owned_address=CREATED, deleting=True)
    user = replace(svc("api", CREATED, on=["n1"], tcp=[443]), finalizers=(contract.FINALIZER,))
    decided = plan(observe(leaving, user, nodes=nodes("n1"), ips=[rip(CREATED, on="n1")]))
    [release] = decided.releases
    assert (release.delete, release.unassign_from) == (False, None)


def test_a_deleted_service_whose_ip_is_busy_keeps_its_finalizer() -> None:
    leaving = auto(owned_address=CREATED, deleting=True)
    busy = ReservedIP(CREATED, "ams3", droplet("n1"), locked=True)
    decided = plan(observe(leaving, nodes=nodes("n1"), ips=[busy]))
    assert decided.releases == () and decided.finalizers_removed == ()


def test_opting_out_keeps_the_ownership_record_until_the_release() -> None:
    owned = auto(owned_address=CREATED, status="placed", holder_node="n1")
    notes = tuple((k, v) for k, v in owned.annotations if k != contract.ADDRESS)
    opted_out = replace(owned, annotations=notes)
    decided = plan(observe(opted_out, nodes=nodes("n1"), ips=[rip(CREATED, on="n1")]))
    [cleanup] = [p for p in decided.after_assign if (contract.STATUS, None) in p.annotations]
    assert contract.OWNED_ADDRESS not in dict(cleanup.annotations)
    [release] = decided.releases
    assert release.forget is not None
    assert release.forget.annotations == ((contract.OWNED_ADDRESS, None),)


@pytest.mark.parametrize(
    ("lb_class", "created"),
    [
        pytest.param(contract.LOAD_BALANCER_CLASS, True, id="ours-asks-by-itself"),
        pytest.param("example.com/other", False, id="another-class-never"),
        pytest.param(None, False, id="no-class-never"),
    ],
)
def test_a_load_balancer_of_our_class_without_an_address_asks_for_one(
    lb_class: str | None, created: bool
) -> None:
    service = lb("web", None, lb_class=lb_class, on=["n1"])
    decided = plan(observe(service, nodes=nodes("n1")))
    assert bool(decided.allocations) is created


def test_a_new_ip_goes_to_a_node_of_the_newest_kubelet() -> None:
    """Mid-upgrade, on a node that stays (``upgrades``)."""
    old = [replace(n, kubelet_version="v1.30.4") for n in nodes("n1", "n2")]
    new = [replace(n, kubelet_version="v1.31.1") for n in nodes("n3")]
    service = auto(on=("n1", "n2", "n3"))
    [allocation] = plan(observe(service, nodes=[*old, *new])).allocations
    assert allocation.node_name == "n3"
