"""``address: auto`` on the real apiserver and the DigitalOcean imitation: a Service gets a
reserved IP it never named and gives it back; a lost answer never makes a second one; the
account's limit gives one Warning and no retry loop; a user's own address is never released."""

from __future__ import annotations

from typing import Any

from kubernetes.client.exceptions import ApiException

from floating_ip_common import contract
from testbed.doks import DoksWorld
from testbed.function_harness import TRAEFIK_PORTS, FunctionRunner
from testbed.kube import KubeBed

CREATE = "/v2/reserved_ips"
USER_IP = "192.0.2.60"


def auto_web(world: DoksWorld, namespace: str) -> None:
    world.kube.create_service(
        namespace, "web", TRAEFIK_PORTS, annotations={contract.ADDRESS: contract.AUTO}
    )
    world.kube.create_pod(namespace, "web-1", world.node("a"), {"app": "web"})
    world.kube.sync_endpoint_slices(namespace, "web")


def web(kube: KubeBed, namespace: str) -> Any:
    return kube.core.read_namespaced_service("web", namespace)


def notes(kube: KubeBed, namespace: str) -> dict[str, str]:
    return dict(web(kube, namespace).metadata.annotations or {})


def reasons(kube: KubeBed, namespace: str) -> list[str]:
    return [e.reason for e in kube.core.list_namespaced_event(namespace).items]


def warnings(kube: KubeBed, namespace: str) -> list[tuple[str, str]]:
    """``(reason, message)`` of every Warning Event in the namespace, oldest first."""
    events = kube.core.list_namespaced_event(namespace).items
    return [(e.reason, e.message) for e in events if e.type == "Warning"]


def settle(runner: FunctionRunner, rounds: int = 4) -> None:
    """Run as the forwarder would: again while the function asks to come back (503)."""
    for _ in range(rounds):
        if runner.run().status == 200:
            return
    raise AssertionError(f"still asking to come back after {rounds} runs")


def test_a_service_gets_an_ip_it_never_named_and_gives_it_back(
    runner: FunctionRunner, world: DoksWorld, kube: KubeBed, namespace: str
) -> None:
    auto_web(world, namespace)
    settle(runner)
    [ip] = world.do.reserved_ips()
    assert world.holder_of(ip) == "a"
    assert notes(kube, namespace)[contract.OWNED_ADDRESS] == ip
    assert contract.ALLOCATION not in notes(kube, namespace)
    assert web(kube, namespace).spec.external_ips == [world.droplets["a"].anchor_ip]
    assert ip in notes(kube, namespace)[contract.STATUS]
    assert "ReservedIPCreated" in reasons(kube, namespace)
    assert runner.ok()["changes"] == [], "settled: nothing more to write"
    assert world.do.count("POST", CREATE) == 1

    kube.core.delete_namespaced_service("web", namespace)
    settle(runner)
    assert world.do.reserved_ips() == {}, "released: unassigned and deleted"
    try:
        web(kube, namespace)
        raise AssertionError("the Service should be gone once its IP is released")
    except ApiException as error:
        assert error.status == 404


def test_a_lost_answer_never_creates_a_second_ip(
    runner: FunctionRunner, world: DoksWorld, kube: KubeBed, namespace: str
) -> None:
    auto_web(world, namespace)
    world.do.lose_answer_next("POST", CREATE)  # DigitalOcean creates it; the answer is lost
    settle(runner)
    [ip] = world.do.reserved_ips()
    assert notes(kube, namespace)[contract.OWNED_ADDRESS] == ip, "adopted, not created again"
    assert world.do.count("POST", CREATE) == 1
    assert world.holder_of(ip) == "a"


def test_a_lost_answer_then_its_droplet_deleted_never_creates_a_second_ip(
    runner: FunctionRunner, world: DoksWorld, kube: KubeBed, namespace: str
) -> None:
    """The create call's answer is lost, then the marked droplet is deleted before the next
    run (an upgrade, the autoscaler): DigitalOcean unassigns the new IP. The next run adopts
    it (one POST, one IP) and places it on the node the pod moved to; the user's own
    unassigned IP, there before, is neither taken nor released."""
    world.do.add_reserved_ip(USER_IP, region=world.region)
    auto_web(world, namespace)
    world.do.lose_answer_next("POST", CREATE)
    assert runner.run().status != 200, "the answer was lost: the sender is asked to retry"
    [created] = set(world.do.reserved_ips()) - {USER_IP}
    assert world.holder_of(created) == "a"
    assert contract.OWNED_ADDRESS not in notes(kube, namespace)

    world.do.remove_droplet(world.droplets["a"].droplet_id)
    kube.delete_node(world.node("a"))
    del world.droplets["a"]  # gone from the pool (the fixture removes the rest)
    kube.delete_pod(namespace, "web-1")
    kube.create_pod(namespace, "web-2", world.node("b"), {"app": "web"})
    kube.sync_endpoint_slices(namespace, "web")
    assert world.do.reserved_ips()[created] is None, "DigitalOcean unassigned it"
    settle(runner)
    assert world.do.count("POST", CREATE) == 1, "adopted, not created again"
    assert notes(kube, namespace)[contract.OWNED_ADDRESS] == created
    assert world.do.reserved_ips() == {created: world.droplets["b"].droplet_id, USER_IP: None}

    kube.core.delete_namespaced_service("web", namespace)
    settle(runner)
    assert world.do.reserved_ips() == {USER_IP: None}, "the created one released, not yours"


def test_the_accounts_limit_gives_one_warning_and_no_retry_loop(
    runner: FunctionRunner, world: DoksWorld, kube: KubeBed, namespace: str
) -> None:
    world.do.set_reserved_ip_limit(0)
    auto_web(world, namespace)
    for _ in range(4):  # the forwarder's retries and resyncs: nothing new to say or try
        settle(runner)
    assert world.do.count("POST", CREATE) == 1, "refused once, not tried again"
    assert [reason for reason, _ in warnings(kube, namespace)] == ["ReservedIPNotCreated"]
    status = notes(kube, namespace)[contract.STATUS]
    assert "free one (or raise the account's limit)" in status
    assert contract.ALLOCATION in status

    # The user frees room and removes the marker, as the status says: the IP comes.
    world.do.set_reserved_ip_limit(3)
    kube.annotate_service(namespace, "web", {contract.ALLOCATION: None})
    settle(runner)
    [ip] = world.do.reserved_ips()
    assert notes(kube, namespace)[contract.OWNED_ADDRESS] == ip


def test_a_token_without_the_create_scope_names_the_scope_not_the_limit(
    runner: FunctionRunner, world: DoksWorld, kube: KubeBed, namespace: str
) -> None:
    """DigitalOcean answers 403: the one Warning names the token's scope; the account's
    limit, which is not the problem, is not mentioned."""
    scoped = "dop_v1_without_reserved_ip_create"
    everything_else = [
        f"{resource}:{verb}"
        for resource in ("reserved_ip", "droplet", "firewall", "kubernetes", "tag", "actions")
        for verb in ("read", "create", "update", "delete")
        if f"{resource}:{verb}" != "reserved_ip:create"
    ]
    world.do.add_token(scoped, scopes=everything_else)
    scoped_runner = FunctionRunner(
        world, {**runner.env, "DIGITALOCEAN_TOKEN": scoped}, runner.kube_token, runner.courier
    )
    auto_web(world, namespace)
    for _ in range(3):
        settle(scoped_runner)
    assert world.do.count("POST", CREATE) == 1, "refused once, not tried again"
    [(reason, message)] = warnings(kube, namespace)
    assert reason == "ReservedIPNotCreated"
    assert "403" in message and "reserved_ip:create" in message
    assert "limit" not in message
    assert notes(kube, namespace)[contract.ALLOCATION].startswith("refused (token): ")


def test_switching_to_an_own_address_releases_the_created_one_only(
    runner: FunctionRunner, world: DoksWorld, kube: KubeBed, namespace: str
) -> None:
    auto_web(world, namespace)
    settle(runner)
    [created] = world.do.reserved_ips()
    world.do.add_reserved_ip(USER_IP, region=world.region)
    kube.annotate_service(namespace, "web", {contract.ADDRESS: USER_IP})
    settle(runner)
    assert world.do.reserved_ips() == {USER_IP: world.droplets["a"].droplet_id}
    assert created not in world.do.reserved_ips()
    assert contract.OWNED_ADDRESS not in notes(kube, namespace)
    assert "ReservedIPReleased" in reasons(kube, namespace)

    kube.core.delete_namespaced_service("web", namespace)
    settle(runner)
    assert USER_IP in world.do.reserved_ips(), "a user's own address is never released"


def test_a_load_balancer_of_our_class_gets_an_ip_without_asking(
    runner: FunctionRunner, world: DoksWorld, kube: KubeBed, namespace: str
) -> None:
    """As any LoadBalancer implementation does: no annotation, an address in the status."""
    world.kube.create_service(
        namespace,
        "web",
        TRAEFIK_PORTS,
        external_traffic_policy="Local",
        service_type="LoadBalancer",
        load_balancer_class=contract.LOAD_BALANCER_CLASS,
        allocate_load_balancer_node_ports=False,
    )
    world.kube.create_pod(namespace, "web-1", world.node("a"), {"app": "web"})
    world.kube.sync_endpoint_slices(namespace, "web")
    settle(runner)
    [ip] = world.do.reserved_ips()
    placed = web(kube, namespace)
    # The reserved IP, then the anchor it arrives on (``ipMode: Proxy``), as in class mode.
    entries = [entry.ip for entry in placed.status.load_balancer.ingress]
    assert entries == [ip, world.droplets["a"].anchor_ip]
    assert notes(kube, namespace)[contract.OWNED_ADDRESS] == ip
    assert contract.ADDRESS not in notes(kube, namespace), "nothing of the user's is written"

    kube.core.delete_namespaced_service("web", namespace)
    settle(runner)
    assert world.do.reserved_ips() == {}
