"""The cleanup finalizer: on every opted-in Service, off once a deleted or opted-out Service
is cleaned up, and a deleted Service is never placed."""

from __future__ import annotations

from dataclasses import replace

import pytest

from floating_ip.core.model import Service, ServicePatch
from floating_ip.core.plan import plan
from floating_ip_common import contract
from tests.core.builders import IP_A, lb, node, nodes, observe, rip, svc
from tests.core.simulator import converge

OURS = contract.FINALIZER
OTHER = "example.com/keep"


def service(
    *, opted_in: bool = True, finalizers: tuple[str, ...] = (), deleting: bool = False
) -> Service:
    return replace(svc("web", IP_A if opted_in else None), finalizers=finalizers, deleting=deleting)


def finalizer_patch(finalizers: tuple[str, ...]) -> ServicePatch:
    the = service()
    return ServicePatch(the.ref, the.uid, the.resource_version, finalizers=finalizers)


@pytest.mark.parametrize(
    ("situation", "added", "removed"),
    [
        pytest.param(service(), [finalizer_patch((OURS,))], [], id="opted-in-gets-it"),
        pytest.param(
            service(finalizers=(OTHER,)),
            [finalizer_patch((OTHER, OURS))],
            [],
            id="another-controllers-finalizer-kept",
        ),
        pytest.param(service(finalizers=(OURS,)), [], [], id="already-there"),
        pytest.param(
            service(finalizers=(OURS,), deleting=True), [], [finalizer_patch(())], id="deleted"
        ),
        pytest.param(
            service(finalizers=(OTHER, OURS), deleting=True),
            [],
            [finalizer_patch((OTHER,))],
            id="deleted-keeps-the-others",
        ),
        pytest.param(
            service(opted_in=False, finalizers=(OURS,)),
            [],
            [finalizer_patch(())],
            id="opted-out",
        ),
        pytest.param(service(deleting=True), [], [], id="deleted-without-ours"),
        pytest.param(service(opted_in=False), [], [], id="never-ours"),
    ],
)
def test_which_services_carry_the_finalizer(
    situation: Service, added: list[ServicePatch], removed: list[ServicePatch]
) -> None:
    decided = plan(observe(situation, nodes=nodes("n1"), ips=[rip(IP_A, on="n1")]))
    assert list(decided.finalizers_added) == added
    assert list(decided.finalizers_removed) == removed


def test_a_deleted_service_is_not_placed_and_its_ports_close() -> None:
    settled, _ = converge(observe(svc("web"), nodes=nodes("n1"), ips=[rip()]))
    [placed] = settled.services
    assert placed.finalizers == (OURS,)
    assert settled.firewall is not None and settled.firewall.inbound_rules

    deleted = replace(placed, deleting=True)
    decided = plan(replace(settled, services=(deleted,)))
    assert decided.assignments == ()
    assert decided.before_assign == decided.after_assign == ()  # a dying Service is not patched
    assert decided.reports == ()
    assert decided.firewall is not None  # its rules go (with no rule left: the firewall)
    assert decided.finalizers_removed == (
        ServicePatch(placed.ref, placed.uid, placed.resource_version, finalizers=()),
    )


def test_a_deleted_service_converges_to_gone_and_the_ip_stays_with_the_user() -> None:
    settled, _ = converge(observe(svc("web"), nodes=nodes("n1"), ips=[rip()]))
    [placed] = settled.services
    gone, plans = converge(replace(settled, services=(replace(placed, deleting=True),)))
    assert gone.services == ()
    assert gone.firewall is None
    assert [ip.droplet_id for ip in gone.reserved_ips] == [101], "the user's IP is never released"
    assert plans[-1].is_empty


def test_a_shared_ip_stays_with_the_service_that_is_not_deleted() -> None:
    web = svc("web", tcp=[80], on=["n1", "n2"])
    dns = svc("dns", tcp=[53], on=["n1", "n2"])
    settled, _ = converge(observe(web, dns, nodes=nodes("n1", "n2"), ips=[rip()]))
    by_name = {s.name: s for s in settled.services}
    deleted = replace(by_name["web"], deleting=True)
    after, plans = converge(replace(settled, services=(deleted, by_name["dns"])))
    assert [s.name for s in after.services] == ["dns"]
    assert [r.holder_node for r in plans[-1].reports] == [
        by_name["dns"].annotation(contract.HOLDER_NODE)
    ]
    assert after.firewall is not None
    assert {rule.ports for rule in after.firewall.inbound_rules} == {"53"}


def test_an_opted_out_service_is_cleaned_then_loses_the_finalizer() -> None:
    settled, _ = converge(observe(svc("web"), nodes=nodes("n1"), ips=[rip()]))
    [placed] = settled.services
    opted_out = replace(
        placed, annotations=tuple((k, v) for k, v in placed.annotations if k != contract.ADDRESS)
    )
    after, plans = converge(replace(settled, services=(opted_out,)))
    [cleaned] = after.services
    assert cleaned.finalizers == ()
    assert not any(key.startswith(contract.PREFIX) for key, _ in cleaned.annotations)
    assert plans[0].after_assign and plans[0].finalizers_removed


def test_a_deleted_service_that_never_had_an_ip_only_loses_the_finalizer() -> None:
    deleted = service(finalizers=(OURS,), deleting=True)
    decided = plan(observe(deleted, nodes=[node("n1")], ips=[]))
    assert decided.firewall is None
    assert decided.finalizers_removed == (finalizer_patch(()),)


def test_a_load_balancer_of_another_class_never_gets_it() -> None:
    foreign = replace(lb("web", lb_class="example.com/other"), finalizers=())
    assert plan(observe(foreign, nodes=nodes("n1"), ips=[rip()])).finalizers_added == ()
