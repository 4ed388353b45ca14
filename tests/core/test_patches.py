"""The Service writes of a plan, call by call: what each patch carries and when none is
needed (a write too many is a conflict risk and a watch event the forwarder must absorb)."""

from __future__ import annotations

from floating_ip.core import own_writes
from floating_ip.core.model import ConditionStatus, EventType, Reason
from floating_ip.core.plan import plan
from floating_ip_common import contract
from tests.core.builders import IP_A, anchor, node, observe, rip, svc, vip

MINE = {
    contract.ANCHOR_IP: anchor("n1"),
    contract.HOLDER_NODE: "n1",
    contract.HOLDER_DROPLET: "101",
}


def test_a_first_placement_records_the_anchor_once_before_the_assignment() -> None:
    the_plan = plan(observe(svc("web", on=["n1"]), nodes=[node("n1")], ips=[rip(IP_A)]))
    [before] = the_plan.before_assign
    assert before.external_ips == (anchor("n1"),)
    assert before.resource_version == "1"
    [after] = the_plan.after_assign
    assert sorted(dict(after.annotations)) == sorted(
        [contract.HOLDER_DROPLET, contract.HOLDER_NODE, contract.STATUS]
    ), "the anchor's record is not written twice"
    assert after.resource_version == "", "the first patch changed the version: none to check"


def test_a_retried_move_whose_bridge_is_in_place_writes_nothing_before_it() -> None:
    """The last run listed both anchors and recorded them, then the assignment failed."""
    bridged = svc(
        "web",
        on=["n2"],
        external_ips=[anchor("n1"), anchor("n2")],
        annotations={**MINE, contract.ANCHOR_IP: f"{anchor('n1')},{anchor('n2')}"},
    )
    the_plan = plan(
        observe(
            bridged,
            nodes=[node("n1", ready=ConditionStatus.FALSE), node("n2")],
            ips=[rip(IP_A, "n1")],
        )
    )
    assert [a.node_name for a in the_plan.assignments] == ["n2"]
    assert the_plan.before_assign == ()


def test_a_status_change_alone_is_one_patch_checked_against_the_version_read() -> None:
    web = svc("web", on=["n1"], external_ips=[anchor("n1")], annotations={**MINE})
    the_plan = plan(observe(web, nodes=[node("n1")], ips=[rip(IP_A, "n1")]))
    assert the_plan.before_assign == ()
    [after] = the_plan.after_assign
    assert after.resource_version == web.resource_version


def test_a_users_own_dns_target_is_left_alone_in_external_ips_mode() -> None:
    web = svc("web", on=["n1"], annotations={contract.EXTERNAL_DNS_TARGET: "www.example.com"})
    the_plan = plan(observe(web, nodes=[node("n1")], ips=[rip(IP_A)]))
    for patch in (*the_plan.before_assign, *the_plan.after_assign):
        assert contract.EXTERNAL_DNS_TARGET not in dict(patch.annotations)


def test_the_report_and_the_events_name_the_service_and_its_problems() -> None:
    web = svc("web", on=["n1"], annotations={contract.FIREWALL: "perhaps"})
    the_plan = plan(observe(web, nodes=[node("n1")], ips=[rip(IP_A)]))
    [report] = the_plan.reports
    assert report.uid == web.uid
    assert [p.reason for p in report.problems] == [Reason.INVALID_ANNOTATION]
    for event in the_plan.events:
        if event.service == web.ref:
            assert event.uid == web.uid
    assert {e.type for e in the_plan.events if e.service == web.ref} == {
        EventType.NORMAL,
        EventType.WARNING,
    }


def test_someone_elses_ingress_entries_are_never_recorded_as_ours() -> None:
    web = svc("web", on=["n1"], ingress=vip("198.51.100.50"))
    the_plan = plan(observe(web, nodes=[node("n1")], ips=[rip(IP_A)]))
    for patch in (*the_plan.before_assign, *the_plan.after_assign):
        marker = dict(patch.annotations).get(contract.WRITTEN)
        assert marker is None or "198.51.100.50" not in marker


def test_every_opted_out_service_is_cleaned_whatever_comes_before_it() -> None:
    placed = svc("a-web", on=["n1"])
    gone = svc("b-old", None, annotations={contract.STATUS: "x"})
    the_plan = plan(observe(placed, gone, nodes=[node("n1")], ips=[rip(IP_A)]))
    cleaned = [p for p in the_plan.after_assign if p.service == gone.ref]
    assert [dict(p.annotations) for p in cleaned] == [{contract.STATUS: None}]


def test_a_node_without_a_region_label_is_taken_to_be_in_the_clusters_region() -> None:
    the_plan = plan(observe(svc("web", on=["n1"]), nodes=[node("n1", region=None)], ips=[rip()]))
    assert [a.node_name for a in the_plan.assignments] == ["n1"]


def test_a_service_sharing_an_ip_records_a_remembered_anchor_as_its_own() -> None:
    """n1's anchor is unknown now; web recorded it, api joins the IP: api lists that anchor
    and its marker says the entry is ours, so a later clean-up can remove it."""
    web = svc("web", on=["n1"], tcp=[80], external_ips=[anchor("n1")], annotations={**MINE})
    api = svc("api", on=["n1"], tcp=[443])
    the_plan = plan(observe(web, api, nodes=[node("n1", with_anchor=False)], ips=[rip(IP_A, "n1")]))
    [api_patch] = [
        p for p in (*the_plan.before_assign, *the_plan.after_assign) if p.service == api.ref
    ]
    assert api_patch.external_ips == (anchor("n1"),)
    assert dict(api_patch.annotations)[contract.WRITTEN] == own_writes.render([anchor("n1")])
