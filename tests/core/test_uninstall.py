"""Planning an uninstall: from a settled world, nothing of ours is left, nothing of the user's
is lost."""

from __future__ import annotations

from dataclasses import replace

from floating_ip.core.annotations import owned_address
from floating_ip.core.model import ReservedIP, Service
from floating_ip.core.plan import plan
from floating_ip.core.uninstall import as_opted_out, uninstall_plan
from floating_ip_common import contract
from tests.core.builders import IP_A, USER_IP, lb, nodes, observe, rip, svc
from tests.core.simulator import apply

CREATED = "198.18.0.1"


def test_an_uninstall_leaves_every_service_as_the_user_wrote_it() -> None:
    web = svc("web", IP_A, on=["n1"], external_ips=[USER_IP], annotations={"team": "edge"})
    api = lb("api", None, on=["n2"], tcp=[443], annotations={contract.ADDRESS: contract.AUTO})
    api = replace(
        api,
        annotations=tuple(
            sorted({**dict(api.annotations), contract.OWNED_ADDRESS: CREATED}.items())
        ),
    )
    world = observe(web, api, nodes=nodes("n1", "n2"), ips=[rip(IP_A), rip(CREATED, on="n2")])
    for _ in range(3):  # settle as the function would
        world = apply(world, plan(world))
    assert world.firewall is not None
    assert all(s.finalizers == (contract.FINALIZER,) for s in world.services)

    removal = uninstall_plan(world)
    assert removal.events == ()
    assert [release.ip for release in removal.releases] == [CREATED]
    after = apply(world, replace(removal, releases=()))  # the simulator knows no releases
    after = replace(after, reserved_ips=tuple(ip for ip in after.reserved_ips if ip.ip != CREATED))
    for patch in removal.releases:
        assert patch.forget is not None
        after = replace(
            after,
            services=tuple(
                apply_forget(s, patch.forget.annotations) if s.ref == patch.service else s
                for s in after.services
            ),
        )
    assert after.firewall is None
    by_name = {s.name: s for s in after.services}
    assert by_name["web"].external_ips == (USER_IP,)
    assert dict(by_name["web"].annotations) == {contract.ADDRESS: IP_A, "team": "edge"}
    assert dict(by_name["api"].annotations) == {contract.ADDRESS: contract.AUTO}
    assert by_name["api"].ingress == ()
    assert all(s.finalizers == () for s in after.services)
    assert all(owned_address(s) is None for s in after.services)
    assert [ip.ip for ip in after.reserved_ips] == [IP_A], "the user's IP stays"
    assert uninstall_plan(after).is_empty


def apply_forget(service: Service, changes: tuple[tuple[str, str | None], ...]) -> Service:
    notes = dict(service.annotations)
    for key, value in changes:
        if value is None:
            notes.pop(key, None)
    return replace(service, annotations=tuple(sorted(notes.items())))


def test_nothing_to_uninstall_plans_nothing() -> None:
    user = ReservedIP(IP_A, "ams3")
    assert uninstall_plan(observe(nodes=nodes("n1"), ips=[user])).is_empty


def test_the_core_sees_every_service_opted_out_and_no_load_balancer_of_ours() -> None:
    ours = lb("api", IP_A, annotations={"team": "edge"})
    foreign = lb("shop", IP_A, lb_class=None)
    plain = svc("web", IP_A, service_type="ClusterIP")
    seen = {
        s.name: s for s in as_opted_out(observe(ours, foreign, plain, nodes=nodes("n1"))).services
    }
    assert (seen["api"].type, seen["api"].load_balancer_class) == ("ClusterIP", None)
    assert (seen["shop"].type, seen["shop"].load_balancer_class) == ("LoadBalancer", None)
    assert (seen["web"].type, seen["web"].load_balancer_class) == ("ClusterIP", None)
    assert dict(seen["api"].annotations) == {"team": "edge"}
    assert all(contract.ADDRESS not in dict(s.annotations) for s in seen.values())
