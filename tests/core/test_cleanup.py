"""No leftovers: a Service that opts out gets exactly what the function wrote removed, and a
reserved IP no Service names is released only when the user opted in."""

from __future__ import annotations

from dataclasses import replace

import pytest

from floating_ip.core import own_writes
from floating_ip.core.model import Reason, ReservedIP, Unclaimed
from floating_ip.core.plan import plan
from floating_ip_common import contract
from tests.core.builders import (
    CLUSTER,
    IP_A,
    IP_B,
    USER_IP,
    anchor,
    droplet,
    nodes,
    observe,
    rip,
    svc,
)
from tests.core.simulator import apply, converge

OURS = {
    contract.HOLDER_NODE: "n1",
    contract.HOLDER_DROPLET: str(droplet("n1")),
    contract.ANCHOR_IP: anchor("n1"),
    contract.STATUS: "Reserved IP is on node n1.",
    contract.WRITTEN: own_writes.render([anchor("n1")]),
}


@pytest.mark.parametrize(
    ("annotations", "external_ips", "kept_ips", "removed"),
    [
        pytest.param(OURS, [USER_IP, anchor("n1")], (USER_IP,), set(OURS), id="marker-and-status"),
        pytest.param(
            {k: v for k, v in OURS.items() if k != contract.WRITTEN},
            [anchor("n1"), USER_IP],
            (USER_IP,),
            set(OURS) - {contract.WRITTEN},
            id="written-before-the-marker-existed",
        ),
        pytest.param(
            {contract.STATUS: "no node is fit", contract.WRITTEN: own_writes.render([])},
            [USER_IP],
            None,
            {contract.STATUS, contract.WRITTEN},
            id="status-only-user-ips-untouched",
        ),
        pytest.param(
            {contract.WRITTEN: "{garbled", contract.STATUS: "x"},
            [USER_IP, anchor("n1")],
            None,
            {contract.WRITTEN, contract.STATUS},
            id="garbled-marker-removes-no-entry",
        ),
        pytest.param(
            {contract.WRITTEN: own_writes.render([anchor("n1"), anchor("n2")])},
            [anchor("n2"), USER_IP, anchor("n1")],
            (USER_IP,),
            {contract.WRITTEN},
            id="mid-move-both-anchors",
        ),
    ],
)
def test_an_opted_out_service_is_cleaned(
    annotations: dict[str, str],
    external_ips: list[str],
    kept_ips: tuple[str, ...] | None,
    removed: set[str],
) -> None:
    service = svc("web", None, annotations={**annotations, "team": "a"}, external_ips=external_ips)
    the_plan = plan(observe(service, nodes=nodes("n1", "n2"), ips=[rip(IP_A, "n1")]))
    [patch] = the_plan.after_assign
    assert patch.external_ips == kept_ips
    assert dict(patch.annotations) == dict.fromkeys(removed)
    assert patch.resource_version == service.resource_version
    assert the_plan.assignments == () and the_plan.before_assign == ()
    [event] = the_plan.events
    assert event.reason is Reason.CLEANED_UP
    assert the_plan.reports == (), "an opted-out Service is never placed"


@pytest.mark.parametrize(
    ("external_ips", "message"),
    [
        pytest.param(
            [USER_IP, anchor("n1")],
            f"Removed anchor IP {anchor('n1')} from externalIPs and the floating-ip annotations: "
            f"the {contract.ADDRESS} annotation is gone.",
            id="entry-removed",
        ),
        pytest.param(
            [USER_IP],
            f"Removed the floating-ip annotations: the {contract.ADDRESS} annotation is gone.",
            id="only-annotations-the-users-ip-not-named",
        ),
    ],
)
def test_the_clean_up_event_names_what_went(external_ips: list[str], message: str) -> None:
    service = svc("web", None, annotations=OURS, external_ips=external_ips)
    [event] = plan(observe(service, nodes=nodes("n1"))).events
    assert event.message == message


def test_a_service_never_written_to_is_left_alone() -> None:
    service = svc("web", None, annotations={"team": "a"}, external_ips=[anchor("n1")])
    assert plan(observe(service, nodes=nodes("n1"))).is_empty


def test_opting_out_after_placement_leaves_nothing_and_settles() -> None:
    placed, _ = converge(
        observe(svc("web", on=["n1"], external_ips=[USER_IP]), nodes=nodes("n1"), ips=[rip()])
    )
    [web] = placed.services
    assert web.annotation(contract.WRITTEN) == own_writes.render([anchor("n1")])
    without = dict(web.annotations)
    del without[contract.ADDRESS]
    opted_out = replace(placed, services=(replace(web, annotations=tuple(without.items())),))
    settled, plans = converge(opted_out)
    [web] = settled.services
    assert web.external_ips == (USER_IP,)
    assert not own_writes.has_traces(key for key, _ in web.annotations)
    assert len(plans) == 2 and plans[-1].is_empty
    assert settled.firewall is None, "its ports close with it"


@pytest.mark.parametrize(
    ("release", "ips", "named", "expected"),
    [
        pytest.param(False, [rip(IP_B, "n2")], [], [(IP_B, False)], id="default-left-assigned"),
        pytest.param(True, [rip(IP_B, "n2")], [], [(IP_B, True)], id="opted-in-unassigned"),
        pytest.param(True, [rip(IP_B)], [], [], id="unassigned-ip-is-not-unclaimed"),
        pytest.param(True, [rip(IP_B, "n9")], [], [], id="droplet-outside-the-cluster"),
        pytest.param(True, [rip(IP_B, "n2", locked=True)], [], [], id="locked-left-alone"),
        pytest.param(True, [rip(IP_B, "n2")], [IP_B], [], id="named-by-a-service"),
        pytest.param(True, [rip(IP_B, "n2")], [" 203.0.113.11 "], [], id="named-with-spaces"),
        pytest.param(
            True, [rip(IP_B, "n2")], ["not-an-ip"], [(IP_B, True)], id="other-text-names-nothing"
        ),
    ],
)
def test_unclaimed_ips(
    release: bool, ips: list[ReservedIP], named: list[str], expected: list[tuple[str, bool]]
) -> None:
    services = [svc(f"s{i}", address, on=["n1"], tcp=[1000 + i]) for i, address in enumerate(named)]
    observation = replace(
        observe(*services, nodes=nodes("n1", "n2"), ips=ips),
        cluster=replace(CLUSTER, unassign_unclaimed=release),
    )
    the_plan = plan(observation)
    assert [(u.ip, u.unassign) for u in the_plan.unclaimed] == expected
    assert the_plan.unassignments == tuple(u for u in the_plan.unclaimed if u.unassign)


def test_an_unclaimed_ip_says_what_happens_to_it() -> None:
    kept = Unclaimed(IP_B, droplet("n2"), "n2", unassign=False)
    assert "left assigned" in kept.message and "UNASSIGN_UNCLAIMED" in kept.message
    assert "unassigning" in replace(kept, unassign=True).message


def test_a_released_ip_frees_its_droplet_for_the_next_run() -> None:
    observation = replace(
        observe(nodes=nodes("n1"), ips=[rip(IP_B, "n1")]),
        cluster=replace(CLUSTER, unassign_unclaimed=True),
    )
    after = apply(observation, plan(observation))
    assert after.reserved_ips == (rip(IP_B),)
    assert plan(after).is_empty
