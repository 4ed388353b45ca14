"""``address: auto``: when an IP is created, adopted, waited for or released; one row each."""

from __future__ import annotations

from dataclasses import replace

import pytest

from floating_ip.core import allocation
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
from tests.core.builders import IP_A, IP_B, droplet, lb, node, nodes, observe, rip, svc

CREATED = "198.18.0.1"
HAS_ONE = "198.18.0.9"
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
    expected = Allocation(service.ref, service.uid, "1", droplet("n2"), "n2", (IP_B,))
    assert decided.allocations == (expected,)
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


SPARE = "192.0.2.61"
"""A reserved IP the user keeps unassigned in the cluster's region, named by no Service."""
NAMED = "192.0.2.62"
"""A user's reserved IP, unassigned, that another Service names."""
MARKED = f"droplet 101; existing: {SPARE} {NAMED}"
"""The marker of a creation on n1 when the region had the user's two IPs."""


def test_the_marker_records_the_droplet_and_the_regions_ips_before_the_call() -> None:
    service = auto(on=("n1",))
    others = (user("api", NAMED, "n2"),)
    ips = [
        ReservedIP(SPARE, "ams3"),
        ReservedIP(NAMED, "ams3"),
        ReservedIP("192.0.2.70", "fra1"),
    ]
    [made] = plan(observe(service, *others, nodes=nodes("n1", "n2"), ips=ips)).allocations
    assert made.existing == (SPARE, NAMED)
    text = allocation.in_flight(made.droplet_id, made.existing)
    assert text == MARKED
    assert allocation.read_marker(text) == allocation.Marker(101, existing=frozenset(made.existing))
    assert allocation.in_flight(101, ()) == "droplet 101; existing: none"
    assert allocation.read_marker("droplet 101; existing: none").existing == frozenset()
    assert allocation.read_marker("droplet 101") == allocation.Marker(101), "as written before"


@pytest.mark.parametrize(
    ("marker", "ips", "expected"),
    [
        pytest.param(
            MARKED,
            [ReservedIP(SPARE, "ams3"), ReservedIP(NAMED, "ams3"), ReservedIP(CREATED, "ams3")],
            CREATED,
            id="its-droplet-deleted-the-new-ip-is-adopted-not-the-users",
        ),
        pytest.param(
            MARKED,
            [ReservedIP(SPARE, "ams3"), ReservedIP(NAMED, "ams3")],
            None,
            id="only-the-users-unassigned-ips-create-anew",
        ),
        pytest.param(
            "droplet 101; existing: none",
            [ReservedIP(NAMED, "ams3")],
            None,
            id="an-ip-another-service-names-is-never-adopted",
        ),
        pytest.param(
            MARKED,
            [ReservedIP(CREATED, "fra1")],
            None,
            id="an-ip-of-another-region-is-not-the-one",
        ),
        pytest.param(
            MARKED,
            [ReservedIP(CREATED, "ams3", 999)],
            None,
            id="an-ip-assigned-elsewhere-is-not-the-one",
        ),
        pytest.param(
            "droplet 101",
            [ReservedIP(CREATED, "ams3")],
            None,
            id="a-marker-without-the-regions-ips-adopts-on-its-droplet-only",
        ),
    ],
)
def test_a_created_ip_its_droplet_lost_is_adopted_and_a_users_ip_never(
    marker: str, ips: list[ReservedIP], expected: str | None
) -> None:
    """The create call's answer was lost, then the marked droplet was deleted (an upgrade,
    the autoscaler): DigitalOcean unassigned the new IP. It is adopted, not created again
    and left to cost money; an IP the region had before the marker, or one a Service names,
    never is (it may be the user's: adopted, it would be deleted with the Service)."""
    service = auto(on=("n2",), allocation=marker)
    others = (user("api", NAMED, "n3"),)
    decided = plan(observe(service, *others, nodes=nodes("n1", "n2", "n3"), ips=ips))
    adopted = [
        ip
        for patch in decided.after_assign
        for key, ip in patch.annotations
        if key == contract.OWNED_ADDRESS and patch.service == service.ref
    ]
    assert adopted == ([expected] if expected else [])
    assert bool(decided.allocations) is (expected is None), "created anew only without one"
    assert decided.releases == ()
    if expected:
        [report] = [r for r in decided.reports if r.service == service.ref]
        assert report.status == (
            f"Reserved IP {CREATED} was created for this Service, found unassigned (not on "
            "droplet 101); placing it."
        )


def test_two_lost_creations_adopt_one_ip_each() -> None:
    first = replace(auto(on=("n2",), allocation="droplet 101; existing: none"))
    second = replace(
        svc("zz", AUTO, on=["n2"], tcp=[443]),
        finalizers=(contract.FINALIZER,),
        annotations=(
            (contract.ADDRESS, AUTO),
            (contract.ALLOCATION, "droplet 103; existing: none"),
        ),
    )
    lost = [ReservedIP(CREATED, "ams3"), ReservedIP(HAS_ONE, "ams3")]
    decided = plan(observe(first, second, nodes=nodes("n2"), ips=lost))
    adopted = {
        patch.service.name: ip
        for patch in decided.after_assign
        for key, ip in patch.annotations
        if key == contract.OWNED_ADDRESS
    }
    assert adopted == {"web": CREATED, "zz": HAS_ONE}
    assert decided.allocations == ()


@pytest.mark.parametrize("deleting", [False, True], ids=["opted-out", "deleted"])
def test_a_creation_no_longer_waited_for_releases_the_ip_its_droplet_lost(deleting: bool) -> None:
    """Deleted (or opted out) after a lost answer, its droplet deleted too: the IP the call
    created is deleted; the user's unassigned IPs stay."""
    waiting = replace(auto(deleting=deleting), annotations=((contract.ALLOCATION, MARKED),))
    ips = [ReservedIP(SPARE, "ams3"), ReservedIP(NAMED, "ams3"), ReservedIP(CREATED, "ams3")]
    decided = plan(observe(waiting, nodes=nodes("n2"), ips=ips))
    forgotten = None if deleting else forget(waiting, contract.ALLOCATION)
    assert decided.releases == (Release(waiting.ref, waiting.uid, CREATED, None, True, forgotten),)


def test_a_leaving_service_whose_creation_answered_releases_only_its_recorded_ip() -> None:
    """The record says what the creation made: an IP the user reserved since the marker was
    written (the marker stays until the recorded IP is seen assigned) is not taken for it."""
    leaving_now = replace(
        auto(deleting=True, owned_address=CREATED),
        annotations=(
            (contract.ADDRESS, AUTO),
            (contract.ALLOCATION, "droplet 101; existing: none"),
            (contract.OWNED_ADDRESS, CREATED),
        ),
    )
    ips = [rip(CREATED, on="n1"), ReservedIP(SPARE, "ams3")]
    decided = plan(observe(leaving_now, nodes=nodes("n1"), ips=ips))
    assert [(r.ip, r.delete) for r in decided.releases] == [(CREATED, True)]


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


LIMIT_ANSWER = "422 You have reached the limit of reserved IPs"


def test_a_refused_creation_is_announced_once_and_not_tried_again() -> None:
    refused = auto(allocation=f"refused (limit): {LIMIT_ANSWER}")
    decided = plan(observe(refused, nodes=nodes("n1")))
    assert decided.allocations == ()
    [report] = decided.reports
    assert [p.reason for p in report.problems] == [Reason.IP_NOT_CREATED]
    assert [p.message for p in report.problems] == [
        "DigitalOcean refused to create a reserved IP for this Service: 422 You have reached the "
        "limit of reserved IPs; free one (or raise the account's limit), then remove the "
        f"annotation {contract.ALLOCATION} to try again"
    ]
    assert "limit" in report.status and contract.ALLOCATION in report.status
    assert [e.reason for e in decided.events] == [Reason.IP_NOT_CREATED]
    announced = auto(allocation=f"refused (limit): {LIMIT_ANSWER}", status=report.status)
    again = plan(observe(announced, nodes=nodes("n1")))
    assert again.allocations == () and again.events == (), "one Warning, no retry"


CREATE_CALL = "digitalocean create a reserved IP for droplet 101"
RETRY = f"then remove the annotation {contract.ALLOCATION} to try again"


@pytest.mark.parametrize(
    ("marker", "advice"),
    [
        pytest.param(
            f"refused (limit): {CREATE_CALL}: 422 You have reached the limit of 3 reserved IPs",
            "free one (or raise the account's limit)",
            id="the-accounts-limit",
        ),
        pytest.param(
            f"refused (token): {CREATE_CALL}: 403 You are not authorized to perform this "
            "operation (the token lacks a scope this call needs)",
            "give the function's DigitalOcean token (DIGITALOCEAN_TOKEN) the scope "
            "reserved_ip:create (beside reserved_ip:update and reserved_ip:delete), or a valid "
            "token if it expired",
            id="a-scope-the-token-lacks",
        ),
        pytest.param(
            f"refused (token): {CREATE_CALL}: 401 Unable to authenticate you. (check "
            "DIGITALOCEAN_TOKEN)",
            "give the function's DigitalOcean token (DIGITALOCEAN_TOKEN) the scope "
            "reserved_ip:create (beside reserved_ip:update and reserved_ip:delete), or a valid "
            "token if it expired",
            id="a-token-not-valid",
        ),
        pytest.param(
            f"refused: {CREATE_CALL}: 422 droplet_id must be an integer",
            "fix what the answer names",
            id="any-other-refusal",
        ),
        pytest.param(
            f"refused: {LIMIT_ANSWER}",
            "fix what the answer names",
            id="recorded-before-the-kinds",
        ),
    ],
)
def test_a_refusal_says_what_to_do_for_its_kind(marker: str, advice: str) -> None:
    """Only the account's limit asks to free an IP; a token refused (401) or without the
    scope (403) names the token and the scope; anything else, DigitalOcean's answer alone."""
    decided = plan(observe(auto(allocation=marker), nodes=nodes("n1")))
    [report] = decided.reports
    answer = marker.partition(": ")[2]
    expected = (
        f"DigitalOcean refused to create a reserved IP for this Service: {answer}; {advice}, "
        + RETRY
    )
    assert [(p.reason, p.message) for p in report.problems] == [(Reason.IP_NOT_CREATED, expected)]
    assert decided.allocations == ()


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


def test_the_marker_goes_when_the_recorded_ip_is_gone_from_the_account() -> None:
    recorded = auto(allocation="droplet 101", owned_address=CREATED)
    decided = plan(observe(recorded, nodes=nodes("n1")))
    assert forget(recorded, contract.ALLOCATION) in decided.after_assign


def test_a_node_without_a_region_label_may_get_a_new_ip() -> None:
    service = auto()
    decided = plan(observe(service, nodes=[node("n1", region=None)]))
    assert [a.node_name for a in decided.allocations] == ["n1"]


def test_new_ips_spread_over_the_fit_nodes_by_service() -> None:
    """Each Service's new IP goes to the first fit node in the rendezvous order of its uid, so
    Services asking at once do not all pile onto one node (and a rerun chooses the same)."""
    chosen = {}
    for uid in ("uid-a", "uid-b", "uid-c", "uid-d"):
        service = replace(auto(on=("n1", "n2", "n3", "n4")), uid=uid)
        [allocation] = plan(observe(service, nodes=nodes("n1", "n2", "n3", "n4"))).allocations
        chosen[uid] = allocation.node_name
    assert chosen == {"uid-a": "n4", "uid-b": "n1", "uid-c": "n4", "uid-d": "n3"}


def test_naming_the_created_ip_explicitly_keeps_it_and_only_drops_the_ownership() -> None:
    """A Service switches from ``address: auto`` to the very IP it was given: that IP stays
    where it is and is not deleted; only the record that the function owns it goes."""
    owned = auto(owned_address=CREATED)
    notes = dict(owned.annotations) | {contract.ADDRESS: CREATED}
    named = replace(owned, annotations=tuple(sorted(notes.items())))
    decided = plan(observe(named, nodes=nodes("n1"), ips=[rip(CREATED, on="n1")]))
    [release] = decided.releases
    assert (release.delete, release.unassign_from) == (False, None)
    assert release.forget == forget(named, contract.OWNED_ADDRESS)


@pytest.mark.parametrize(
    ("deleting", "forgotten"),
    [pytest.param(False, True, id="opted-out"), pytest.param(True, False, id="deleted")],
)
def test_a_creation_no_longer_waited_for_is_released_and_its_marker_dropped(
    deleting: bool, forgotten: bool
) -> None:
    """The Service asked for a new IP, the creation call went out (the marker names droplet
    101), then the Service opted out or was deleted: the IP the call created on that
    droplet (named by no one) is released, and the marker goes with it."""
    waiting = replace(
        auto(allocation="droplet 101", deleting=deleting),
        annotations=((contract.ALLOCATION, "droplet 101"),),
    )
    decided = plan(observe(waiting, nodes=nodes("n1"), ips=[rip(CREATED, on="n1")]))
    marker_gone = forget(waiting, contract.ALLOCATION)
    assert decided.releases == (
        Release(
            waiting.ref,
            waiting.uid,
            CREATED,
            droplet("n1"),
            True,
            marker_gone if forgotten else None,
        ),
    )
    assert all(u.ip != CREATED for u in decided.unclaimed), "released, not reported unclaimed"


def test_a_creation_no_longer_waited_for_that_created_nothing_only_drops_its_marker() -> None:
    waiting = replace(auto(), annotations=((contract.ALLOCATION, "droplet 101"),))
    decided = plan(observe(waiting, nodes=nodes("n1"), ips=[rip(IP_B, on="n1")]))
    # An IP on the marked droplet that no Service names is taken for the call's creation.
    assert [r.ip for r in decided.releases] == [IP_B]
    nothing = plan(observe(waiting, nodes=nodes("n1")))
    assert nothing.releases == ()
    assert forget(waiting, contract.ALLOCATION) in nothing.after_assign


def test_a_refused_creation_no_longer_waited_for_releases_nothing() -> None:
    """The marker records a refusal (no droplet): an unassigned IP no one names is someone
    else's business, and only the marker goes."""
    refused = replace(auto(), annotations=((contract.ALLOCATION, "refused: 422 limit"),))
    decided = plan(observe(refused, nodes=nodes("n1"), ips=[ReservedIP(IP_B, "ams3")]))
    assert decided.releases == ()
    assert forget(refused, contract.ALLOCATION) in decided.after_assign


def test_a_garbled_marker_is_no_marker() -> None:
    garbled = auto(allocation="droplet one-o-one")
    decided = plan(observe(garbled, nodes=nodes("n1")))
    assert [a.droplet_id for a in decided.allocations] == [droplet("n1")], "asked for anew"


def test_every_auto_service_in_one_plan_gets_its_own_outcome() -> None:
    """Services in every state at once, each before the last one, which must still get its
    IP created: a Service that is done with (named, refused, adopted, waiting, no fit node)
    ends its own turn, never the others'."""

    def asking(name: str, on: str, port: int, **notes: str) -> Service:
        named = {contract.PREFIX + key.replace("_", "-"): value for key, value in notes.items()}
        service = svc(name, AUTO, on=[on], tcp=[port], annotations=named)
        return replace(service, finalizers=(contract.FINALIZER,))

    plain = replace(svc("a-plain", IP_A, on=["n3"], tcp=[81]), finalizers=(contract.FINALIZER,))
    services = [
        plain,
        asking("b-refused", "n3", 82, allocation="refused: 422 limit"),
        asking("c-adopt", "n1", 83, allocation="droplet 101"),
        asking("d-wait", "n2", 84, allocation="droplet 102"),
        asking("e-nofit", "n9", 85),
        asking("f-has-one", "n9", 87, owned_address=HAS_ONE),
        asking("z-new", "n4", 86),
    ]
    assigning = ReservedIP(IP_B, "ams3", None, locked=True)
    decided = plan(
        observe(
            *services,
            nodes=nodes("n1", "n2", "n3", "n4"),
            ips=[rip(CREATED, on="n1"), assigning, rip(IP_A), rip(HAS_ONE)],
        )
    )
    assert [(a.service.name, a.node_name) for a in decided.allocations] == [("z-new", "n4")]
    assert all(u.ip != CREATED for u in decided.unclaimed), "the adopted IP is spoken for"
    status = {r.service.name: r.status for r in decided.reports}
    assert status["c-adopt"] == f"Reserved IP {CREATED} was created for this Service; placing it."
    assert status["f-has-one"].startswith(f"Reserved IP {HAS_ONE} stays unassigned"), "not anew"
    assert status["d-wait"] == (
        "Creating a reserved IP on droplet 102: waiting for DigitalOcean to finish assigning it."
    )
    [nofit] = next(r for r in decided.reports if r.service.name == "e-nofit").problems
    assert (nofit.reason, nofit.message) == (
        Reason.NO_FIT_NODE,
        "No reserved IP is created for this Service yet: no node is fit (n1: NoReadyEndpoint; "
        "n2: NoReadyEndpoint; n3: NoReadyEndpoint; n4: NoReadyEndpoint)",
    )


def test_no_new_ip_when_every_fit_node_holds_one_names_them() -> None:
    service = auto(on=("n1", "n2"))
    decided = plan(
        observe(service, nodes=nodes("n1", "n2"), ips=[rip(IP_A, "n1"), rip(IP_B, "n2")])
    )
    [problem] = decided.reports[0].problems
    assert problem.message == (
        "No reserved IP is created for this Service yet: every fit node (n1, n2) already holds "
        "a reserved IP"
    )


def user(name: str, address: str, on: str) -> Service:
    """A Service of the user's that names ``address`` itself."""
    service = svc(name, address, on=[on], tcp=[443])
    return replace(service, finalizers=(contract.FINALIZER,))


@pytest.mark.parametrize(
    ("marker", "on", "others", "ips", "expected"),
    [
        pytest.param(None, ("n1",), (), [], ("n1", False), id="first-attempt"),
        pytest.param("droplet 101", ("n1",), (), [], ("n1", True), id="retry-on-its-empty-droplet"),
        pytest.param("droplet 102", ("n1",), (), [], ("n1", False), id="retry-on-another-droplet"),
        pytest.param(
            "droplet 101",
            ("n1",),
            (user("api", IP_A, "n1"),),
            [rip(IP_A, on="n1")],
            None,
            id="its-droplet-now-holds-another-services-ip",
        ),
        pytest.param(
            "droplet 101",
            ("n1", "n2"),
            (user("api", IP_A, "n1"),),
            [rip(IP_A, on="n1")],
            ("n2", False),
            id="retry-moves-to-a-free-droplet",
        ),
    ],
)
def test_a_retried_creation_reuses_its_marked_droplet_only_while_it_is_empty(
    marker: str | None,
    on: tuple[str, ...],
    others: tuple[Service, ...],
    ips: list[ReservedIP],
    expected: tuple[str, bool] | None,
) -> None:
    """A creation whose earlier attempt created nothing is retried on the droplet its marker
    names, and says the marker is written already (``marked``: a relayed run may create at
    once); once another Service's IP sits on that droplet, it is no longer free for it."""
    service = auto(on=on, **({"allocation": marker} if marker else {}))
    decided = plan(observe(service, *others, nodes=nodes("n1", "n2"), ips=ips))
    made = [(a.node_name, a.marked) for a in decided.allocations]
    assert made == ([expected] if expected else [])


def leaving(name: str, on: str, **notes: str) -> Service:
    """A deleted ``address: auto`` Service with the given records of ours."""
    named = {contract.PREFIX + key.replace("_", "-"): value for key, value in notes.items()}
    service = svc(name, AUTO, on=[on], annotations=named)
    return replace(service, finalizers=(contract.FINALIZER,), deleting=True)


def test_a_busy_ip_holds_back_only_its_own_service() -> None:
    """Deleted Services in one plan, the first one's IP busy (locked): it keeps its finalizer
    until the next run, and the others are released all the same."""
    busy = leaving("a-busy", "n1", owned_address=CREATED)
    idle = leaving("b-idle", "n2", owned_address=IP_A)
    dropped = leaving("c-dropped", "n3", allocation="droplet 103")
    decided = plan(
        observe(
            busy,
            idle,
            dropped,
            nodes=nodes("n1", "n2", "n3"),
            ips=[rip(CREATED, on="n1", locked=True), rip(IP_A, on="n2"), rip(IP_B, on="n3")],
        )
    )
    assert [(r.service.name, r.ip) for r in decided.releases] == [
        ("b-idle", IP_A),
        ("c-dropped", IP_B),
    ]
    assert [p.service.name for p in decided.finalizers_removed] == ["b-idle", "c-dropped"]


@pytest.mark.parametrize("deleting", [False, True], ids=["opted-out", "deleted"])
@pytest.mark.parametrize(
    ("marker", "ips", "held"),
    [
        pytest.param(
            "droplet 101", [rip(CREATED, locked=True)], True, id="its-ip-may-still-be-assigning"
        ),
        pytest.param(
            "droplet 101",
            [rip(IP_A, locked=True)],
            False,
            id="the-assigning-ip-is-another-services",
        ),
        pytest.param(
            "droplet 101", [rip(CREATED, region="nyc3", locked=True)], False, id="another-region"
        ),
        pytest.param("droplet 101", [rip(CREATED)], False, id="an-unassigned-ip-at-rest"),
        pytest.param(
            "refused: 422 limit", [rip(CREATED, locked=True)], False, id="refused-created-none"
        ),
    ],
)
def test_a_creation_no_longer_waited_for_is_held_while_its_ip_may_be_assigning(
    deleting: bool, marker: str, ips: list[ReservedIP], held: bool
) -> None:
    """The Service opted out or was deleted after its creation call went out, and an
    unassigned, locked IP of the region that no Service names may be the one being assigned
    to the marked droplet: the Service keeps its marker and its finalizer until the IP lands
    (then it is released); with no such IP, or after a refusal, both go."""
    waiting = replace(
        auto(deleting=deleting, on=("n2",)), annotations=((contract.ALLOCATION, marker),)
    )
    others = (user("api", IP_A, "n2"),)
    decided = plan(observe(waiting, *others, nodes=nodes("n1", "n2"), ips=ips))
    assert decided.releases == ()
    finalizer_kept = waiting.ref not in {p.service for p in decided.finalizers_removed}
    marker_dropped = forget(waiting, contract.ALLOCATION) in decided.after_assign
    assert finalizer_kept is held
    assert marker_dropped is (not held and not deleting), "a deleted Service's goes with it"


def test_two_new_ips_in_one_plan_never_share_a_droplet() -> None:
    """One reserved IP per droplet holds for the creations of one plan too: with one fit free
    droplet, the first Service gets it and the second waits, naming the droplet as taken."""
    first = replace(svc("a-first", AUTO, on=["n1"], tcp=[80]), finalizers=(contract.FINALIZER,))
    second = replace(svc("b-second", AUTO, on=["n1"], tcp=[81]), finalizers=(contract.FINALIZER,))
    decided = plan(observe(first, second, nodes=nodes("n1")))
    assert [(a.service.name, a.node_name) for a in decided.allocations] == [("a-first", "n1")]
    [problem] = next(r for r in decided.reports if r.service.name == "b-second").problems
    assert problem.message == (
        "No reserved IP is created for this Service yet: every fit node (n1) already holds a "
        "reserved IP"
    )


def test_one_ip_two_leaving_creations_lost_is_released_once() -> None:
    """Two Services gone after lost creations, both droplets gone too, and one IP found:
    it is released once, by one of them; the other drops its marker."""
    first = leaving("a-gone", "n2", allocation="droplet 101; existing: none")
    second = leaving("b-gone", "n2", allocation="droplet 103; existing: none")
    decided = plan(observe(first, second, nodes=nodes("n2"), ips=[ReservedIP(CREATED, "ams3")]))
    assert [(r.service.name, r.ip) for r in decided.releases] == [("a-gone", CREATED)]


def test_an_ip_that_must_move_is_not_placed_on_a_droplet_a_creation_targets() -> None:
    """A creation in flight on n2 (its IP not yet seen there): the IP leaving unfit n1 waits
    rather than land on n2, where the created IP is about to be assigned."""
    creating = auto(on=("n2",), allocation="droplet 102; existing: " + IP_A)
    moving = replace(svc("api", IP_A, on=["n2"], tcp=[443]), finalizers=(contract.FINALIZER,))
    decided = plan(observe(creating, moving, nodes=nodes("n1", "n2"), ips=[rip(IP_A, "n1")]))
    assert decided.assignments == ()
