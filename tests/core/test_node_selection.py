"""The node-selector annotation: its parser, which nodes it selects, and what a plan does."""

from __future__ import annotations

from dataclasses import replace

import pytest

from floating_ip.core.fitness import verdict
from floating_ip.core.model import Node, Reason, Unfit
from floating_ip.core.node_selector import SelectorError, parse_node_selector
from floating_ip.core.plan import plan
from floating_ip_common import contract
from tests.core.builders import IP_A, droplet, node, observe, rip, svc
from tests.core.simulator import converge

POOL = "doks.digitalocean.com/node-pool"
LABELS = ((POOL, "ingress"), ("kubernetes.io/os", "linux"), ("tier", "edge"))


@pytest.mark.parametrize(
    ("selector", "selected"),
    [
        pytest.param("", True, id="empty-selects-all"),
        pytest.param(f"{POOL}=ingress", True, id="equals"),
        pytest.param(f"{POOL}==ingress", True, id="double-equals"),
        pytest.param(f"{POOL} = ingress", True, id="spaces-around"),
        pytest.param(f"{POOL}=web", False, id="equals-other"),
        pytest.param(f"{POOL}!=web", True, id="not-equals"),
        pytest.param(f"{POOL}!=ingress", False, id="not-equals-same"),
        pytest.param("missing!=x", True, id="not-equals-absent-key"),
        pytest.param(f"{POOL} in (web, ingress)", True, id="in"),
        pytest.param(f"{POOL} in (web)", False, id="in-other"),
        pytest.param(f"{POOL} notin (web,db)", True, id="notin"),
        pytest.param(f"{POOL} notin (ingress)", False, id="notin-same"),
        pytest.param("missing notin (x)", True, id="notin-absent-key"),
        pytest.param("tier", True, id="exists"),
        pytest.param("missing", False, id="exists-absent"),
        pytest.param("!missing", True, id="does-not-exist"),
        pytest.param("!tier", False, id="does-not-exist-present"),
        pytest.param(f"{POOL}=ingress,tier=edge", True, id="and-both"),
        pytest.param(f"{POOL}=ingress,tier=core", False, id="and-one-fails"),
        pytest.param(f"{POOL} in (ingress,web),!missing", True, id="set-then-more"),
        pytest.param("missing=", False, id="equals-empty-needs-the-key"),
    ],
)
def test_a_selector_selects_the_nodes_whose_labels_match(selector: str, selected: bool) -> None:
    assert parse_node_selector(selector).matches(LABELS) is selected


@pytest.mark.parametrize(
    ("selector", "named"),
    [
        pytest.param("pool=", None, id="no-error-for-empty-value"),
        pytest.param("a=b=c", "'a=b=c'", id="two-equals"),
        pytest.param("a in b", "'a in b'", id="set-without-parentheses"),
        pytest.param("a in (b", "unbalanced", id="open-parenthesis"),
        pytest.param("a in (b))", "unbalanced", id="extra-parenthesis"),
        pytest.param("a in (b,,c)", "empty value", id="empty-set-member"),
        pytest.param("a=b,", "empty requirement", id="trailing-comma"),
        pytest.param("-bad=x", "'-bad'", id="key-starting-with-dash"),
        pytest.param("Bad_Prefix.io/x=y", "prefix", id="prefix-not-a-subdomain"),
        pytest.param("a=-b", "'-b'", id="value-starting-with-dash"),
        pytest.param("a=" + "v" * 64, "not a label value", id="value-too-long"),
        pytest.param("a b", "'a b'", id="two-words"),
    ],
)
def test_a_bad_selector_is_refused_naming_the_annotation(selector: str, named: str | None) -> None:
    if named is None:
        parse_node_selector(selector)
        return
    with pytest.raises(SelectorError) as raised:
        parse_node_selector(selector)
    assert contract.NODE_SELECTOR in str(raised.value)
    assert named in str(raised.value)


def labelled(name: str, pool: str, **attributes: object) -> Node:
    return replace(node(name, **attributes), labels=((POOL, pool),))


@pytest.mark.parametrize(
    ("pool", "selector", "expected"),
    [
        pytest.param("ingress", None, [], id="no-selector"),
        pytest.param("ingress", f"{POOL}=ingress", [], id="inside"),
        pytest.param("web", f"{POOL}=ingress", [Unfit.OUTSIDE_NODE_SELECTOR], id="outside"),
        pytest.param("web", "a in (b", [Unfit.OUTSIDE_NODE_SELECTOR], id="invalid-selects-none"),
    ],
)
def test_a_node_outside_the_selector_is_unfit(
    pool: str, selector: str | None, expected: list[Unfit]
) -> None:
    annotations = {contract.NODE_SELECTOR: selector} if selector is not None else {}
    service = svc("web", on=["n1"], annotations=annotations)
    assert verdict(labelled("n1", pool), (service,), "ams3", "ams3", {}).reasons == tuple(expected)


def test_every_service_sharing_the_ip_must_select_the_node() -> None:
    web = svc("web", on=["n1"], tcp=[80], annotations={contract.NODE_SELECTOR: f"{POOL}=ingress"})
    dns = svc("dns", on=["n1"], tcp=[53], annotations={contract.NODE_SELECTOR: f"{POOL}=dns"})
    reasons = verdict(labelled("n1", "ingress"), (web, dns), "ams3", "ams3", {}).reasons
    assert reasons == (Unfit.OUTSIDE_NODE_SELECTOR,)


def test_the_ip_goes_to_a_selected_node_only() -> None:
    service = svc("web", on=["n1", "n2"], annotations={contract.NODE_SELECTOR: f"{POOL}=ingress"})
    decided = plan(
        observe(service, nodes=[labelled("n1", "web"), labelled("n2", "ingress")], ips=[rip()])
    )
    [assignment] = decided.assignments
    assert assignment.node_name == "n2"


def test_the_ip_leaves_a_node_that_is_no_longer_selected() -> None:
    service = svc("web", on=["n1", "n2"], annotations={contract.NODE_SELECTOR: f"{POOL}=ingress"})
    decided = plan(
        observe(
            service,
            nodes=[labelled("n1", "web"), labelled("n2", "ingress")],
            ips=[rip(IP_A, on="n1")],
        )
    )
    [assignment] = decided.assignments
    assert (assignment.from_droplet_id, assignment.droplet_id) == (droplet("n1"), droplet("n2"))
    [moved] = [event for event in decided.events if event.reason is Reason.IP_MOVED]
    assert "from node n1 (droplet 101) (OutsideNodeSelector) to node n2" in moved.message


def test_no_selected_node_keeps_the_ip_and_says_why() -> None:
    service = svc("web", on=["n1"], annotations={contract.NODE_SELECTOR: f"{POOL}=ingress"})
    decided = plan(observe(service, nodes=[labelled("n1", "web")], ips=[rip(IP_A, on="n1")]))
    assert decided.assignments == ()
    [report] = decided.reports
    assert report.status == (
        f"Reserved IP {IP_A} stays on node n1 (droplet 101): no node is fit "
        "(n1: OutsideNodeSelector)."
    )
    assert [p.reason for p in report.problems] == [Reason.NO_FIT_NODE]


def test_an_invalid_selector_keeps_the_ip_and_names_the_annotation() -> None:
    settled, _ = converge(
        observe(svc("web", on=["n1"]), nodes=[labelled("n1", "web")], ips=[rip()])
    )
    [service] = settled.services
    annotations = (*service.annotations, (contract.NODE_SELECTOR, "pool in (a"))
    typo = replace(service, annotations=tuple(sorted(annotations)))
    decided = plan(replace(settled, services=(typo,)))
    assert decided.assignments == ()
    [report] = decided.reports
    assert [p.reason for p in report.problems] == [Reason.NO_FIT_NODE, Reason.INVALID_ANNOTATION]
    assert f"Annotation {contract.NODE_SELECTOR}: 'pool in (a' has unbalanced" in report.status
    assert "no node is selected until it is fixed" in report.status
    # The anchor stays listed: a typo must not take the Service off the air.
    assert all(patch.external_ips is None for patch in decided.after_assign)


def test_a_selector_plan_is_idempotent() -> None:
    """Once the plan is applied, the next one writes nothing."""
    service = svc("web", on=["n1", "n2"], annotations={contract.NODE_SELECTOR: f"{POOL}=ingress"})
    first = observe(service, nodes=[labelled("n1", "web"), labelled("n2", "ingress")], ips=[rip()])
    _, plans = converge(first)
    assert plans[-1].is_empty
    assert [r.holder_node for r in plans[-1].reports] == ["n2"]
