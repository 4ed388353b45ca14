"""Model-based histories of reserved IPs created on demand (``address: auto``), with crashes.

Hypothesis drives a small account and cluster through random steps: Services ask for an IP
(``auto``), switch to a user's own address, opt out, come back, move their pod, are deleted;
a node's droplet is deleted and replaced (an upgrade, the autoscaler: DigitalOcean unassigns
its IP, and an assign action aimed at it errors); the user reserves IPs of their own; the
account's limit shrinks and grows; DigitalOcean finishes its actions late. A reconcile
plans, then carries the plan out in the apply step's order, one call at a time (finalizer
patches, the allocation marker, the create call, the record, the other writes, unassign,
delete, forget, finalizer removal), and may CRASH after any call: the rest is never made.

The oracle tracks every IP ever created and the Service it was created for. Invariants:

1. **no double allocation**: a Service never has two created IPs in the account at once,
   and the core never plans a creation for a Service that has one recorded or in flight;
2. **no leak**: once settled (reconciles without crash until a plan is empty), every created
   IP that still exists is recorded by exactly one Service that asks for ``auto``, and no
   deleted Service is left waiting on its finalizer;
3. **a user's address is never deleted**, nor adopted (the ones there from the start and the
   ones reserved later, unassigned and named by no Service);
4. **no retry loop**: a refused creation is not attempted again until its marker is removed.

``make test`` replays the same 60 histories; ``make soak`` sets ``MODEL_SOAK_EXAMPLES`` for many
more, new each time, and prints the figures.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field, replace

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from floating_ip.core import allocation
from floating_ip.core.annotations import owned_address
from floating_ip.core.model import (
    Firewall,
    ObjectRef,
    Observation,
    Plan,
    ReservedIP,
    Service,
    ServicePatch,
)
from floating_ip.core.plan import plan
from floating_ip_common import contract
from tests.core.builders import CLUSTER, droplet, node, svc
from tests.core.simulator import apply, patch_service

NODE_NAMES = ("n1", "n2", "n3")
SERVICE_NAMES = ("s1", "s2", "s3")
USER_IPS = ("192.0.2.61", "192.0.2.62")
"""Reserved IPs the user made by hand: in the account from the start, never to be deleted."""

EXAMPLES = int(os.environ.get("MODEL_SOAK_EXAMPLES", os.environ.get("MODEL_EXAMPLES", "60")))
"""``make mutation`` replays fewer (``MODEL_EXAMPLES``), as for ``test_model_based.py``."""
STEPS = int(os.environ.get("MODEL_SOAK_STEPS", "40"))
FIGURES: Counter[str] = Counter()


class Crash(Exception):
    """The function's process died after its n-th write, before the write named."""

    def __init__(self, before: str) -> None:
        super().__init__(before)
        self.before = before


@dataclass
class Account:
    """The DigitalOcean side: reserved IPs, actions still assigning, the account's limit."""

    ips: dict[str, ReservedIP] = field(default_factory=dict)
    assigning: dict[str, int] = field(default_factory=dict)
    """Created IPs whose assign action has not completed yet: IP -> droplet."""
    limit: int = 4
    created_for: dict[str, str] = field(default_factory=dict)
    """Every IP ever created -> the uid of the Service whose marker it was created for."""
    sequence: int = 0

    def create(self, droplet_id: int, for_uid: str) -> str | None:
        """``None``: refused (the limit)."""
        if len(self.ips) >= self.limit:
            return None
        taken = {ip.droplet_id for ip in self.ips.values()} | set(self.assigning.values())
        assert droplet_id not in taken, "one reserved IP per droplet"
        self.sequence += 1
        ip = f"198.18.0.{self.sequence}"
        self.ips[ip] = ReservedIP(ip, CLUSTER.region, None, locked=True)
        self.assigning[ip] = droplet_id
        self.created_for[ip] = for_uid
        return ip

    def finish(self) -> None:
        for ip, droplet_id in self.assigning.items():
            self.ips[ip] = ReservedIP(ip, CLUSTER.region, droplet_id, locked=False)
        self.assigning.clear()

    def destroy(self, droplet_id: int) -> None:
        """A droplet is deleted (node pool upgrade, autoscaler): DigitalOcean unassigns its
        reserved IP, and an assign action still aimed at it ends errored."""
        for ip, reserved in self.ips.items():
            if reserved.droplet_id == droplet_id:
                self.ips[ip] = replace(reserved, droplet_id=None)
        for ip, target in list(self.assigning.items()):
            if target == droplet_id:
                del self.assigning[ip]
                self.ips[ip] = replace(self.ips[ip], locked=False)


class Writes:
    """Counts the apply step's writes, and crashes after the chosen one."""

    def __init__(self, crash_after: int | None) -> None:
        self.made = 0
        self.crash_after = crash_after

    def __call__(self, what: str) -> None:
        if self.crash_after is not None and self.made >= self.crash_after:
            raise Crash(what)
        self.made += 1


class AllocationHistory(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.services: dict[str, Service] = {}
        self.account = Account()
        self.firewall: Firewall | None = None
        self.generation = 0
        self.user_ips = set(USER_IPS)
        """Every IP the user made by hand: never to be deleted."""
        self.replaced: Counter[str] = Counter()
        """Node name -> how often its droplet was replaced (each time a new droplet id)."""

    @initialize()
    def start(self) -> None:
        FIGURES["histories"] += 1
        for ip in USER_IPS:
            self.account.ips[ip] = ReservedIP(ip, CLUSTER.region)

    # --- the world ------------------------------------------------------------------------

    def observation(self) -> Observation:
        return Observation(
            cluster=CLUSTER,
            services=tuple(self.services.values()),
            nodes=tuple(
                replace(node(name), droplet_id=self.droplet_of(name)) for name in NODE_NAMES
            ),
            reserved_ips=tuple(self.account.ips.values()),
            firewall=self.firewall,
        )

    def droplet_of(self, name: str) -> int:
        return droplet(name) + 1000 * self.replaced[name]

    def patched(self, patch: ServicePatch) -> None:
        found = next((s for s in self.services.values() if s.ref == patch.service), None)
        if found is not None:
            self.services[found.name] = patch_service(found, patch)

    def annotate(self, name: str, changes: dict[str, str | None]) -> None:
        service = self.services[name]
        notes = dict(service.annotations)
        for key, value in changes.items():
            if value is None:
                notes.pop(key, None)
            else:
                notes[key] = value
        self.services[name] = replace(service, annotations=tuple(sorted(notes.items())))

    # --- what users and DigitalOcean do ---------------------------------------------------

    @rule(name=st.sampled_from(SERVICE_NAMES), on=st.sampled_from(NODE_NAMES))
    def ask_for_an_ip(self, name: str, on: str) -> None:
        if name in self.services:
            return
        self.generation += 1
        created = svc(name, contract.AUTO, on=[on], tcp=[80 + self.generation])
        self.services[name] = replace(created, uid=f"uid-{name}-{self.generation}")

    @rule(name=st.sampled_from(SERVICE_NAMES))
    def delete(self, name: str) -> None:
        if name in self.services:
            self.services[name] = replace(self.services[name], deleting=True)
            self.forget_deleted()

    @rule(name=st.sampled_from(SERVICE_NAMES), ip=st.sampled_from(USER_IPS))
    def switch_to_own_address(self, name: str, ip: str) -> None:
        if name in self.services and not self.services[name].deleting:
            self.annotate(name, {contract.ADDRESS: ip})

    @rule(name=st.sampled_from(SERVICE_NAMES))
    def opt_out(self, name: str) -> None:
        if name in self.services and not self.services[name].deleting:
            self.annotate(name, {contract.ADDRESS: None})

    @rule(name=st.sampled_from(SERVICE_NAMES))
    def back_to_auto(self, name: str) -> None:
        if name in self.services and not self.services[name].deleting:
            self.annotate(name, {contract.ADDRESS: contract.AUTO})

    @rule(name=st.sampled_from(SERVICE_NAMES), to=st.sampled_from(NODE_NAMES))
    def move_pod(self, name: str, to: str) -> None:
        if name in self.services:
            moved = svc(name, on=[to])
            self.services[name] = replace(self.services[name], endpoints=moved.endpoints)

    @rule(limit=st.integers(min_value=2, max_value=5))
    def set_limit(self, limit: int) -> None:
        self.account.limit = limit

    @rule(name=st.sampled_from(SERVICE_NAMES))
    def user_retries_a_refused_creation(self, name: str) -> None:
        service = self.services.get(name)
        if (
            service is not None
            and allocation.read_marker(service.annotation(contract.ALLOCATION)).refused
        ):
            self.annotate(name, {contract.ALLOCATION: None})

    @rule(name=st.sampled_from(NODE_NAMES))
    def replace_a_node(self, name: str) -> None:
        """An upgrade or the autoscaler deletes the node's droplet; a new one takes its place
        (same node name, new droplet): whatever IP the old droplet held is now unassigned."""
        self.account.destroy(self.droplet_of(name))
        self.replaced[name] += 1
        FIGURES["droplets deleted"] += 1

    @rule()
    def user_reserves_an_ip(self) -> None:
        """The user reserves an IP of their own, unassigned, named by no Service. Not while a
        creation is unresolved (a marker without a record): then no rule can tell it from the
        one the creation may have made, whose droplet lost it (``core/allocation.py``)."""
        unresolved = any(
            allocation.read_marker(s.annotation(contract.ALLOCATION)).droplet_id is not None
            and owned_address(s) is None
            for s in self.services.values()
        )
        if unresolved or len(self.account.ips) >= self.account.limit:
            return
        ip = f"192.0.2.{70 + len(self.user_ips)}"
        self.account.ips[ip] = ReservedIP(ip, CLUSTER.region)
        self.user_ips.add(ip)
        FIGURES["ips the user reserved"] += 1

    @rule()
    def digitalocean_finishes_its_actions(self) -> None:
        self.account.finish()

    def forget_deleted(self) -> None:
        """Kubernetes removes a deleted Service once its last finalizer is gone."""
        self.services = {
            name: s for name, s in self.services.items() if not (s.deleting and not s.finalizers)
        }

    # --- the function -----------------------------------------------------------------------

    @rule(crash_after=st.one_of(st.none(), st.integers(min_value=0, max_value=5)))
    def reconcile(self, crash_after: int | None) -> None:
        decided = plan(self.observation())
        self.check_plan(decided)
        self.count_adoptions(decided)
        try:
            self.carry_out(decided, Writes(crash_after))
        except Crash as crash:
            FIGURES[f"crash point: before the {crash.before}"] += 1
        self.forget_deleted()

    def count_adoptions(self, decided: Plan) -> None:
        for patch in decided.after_assign:
            adopted = dict(patch.annotations).get(contract.OWNED_ADDRESS)
            if adopted is not None:
                unassigned = self.account.ips[adopted].droplet_id is None
                FIGURES[
                    "IPs adopted after a crash, found unassigned"
                    if unassigned
                    else "IPs adopted after a crash, on their droplet"
                ] += 1

    def check_plan(self, decided: Plan) -> None:
        for planned in decided.allocations:
            service = next(s for s in self.services.values() if s.ref == planned.service)
            assert owned_address(service) is None, "a creation for a Service that owns an IP"
            marker = allocation.read_marker(service.annotation(contract.ALLOCATION))
            assert marker.refused is None, "a refused creation tried again by itself"
            in_flight = [
                ip
                for ip, uid in self.account.created_for.items()
                if uid == service.uid and ip in self.account.ips
            ]
            assert not in_flight, f"a second IP for {service.ref}: {in_flight} exists"
            FIGURES["creations planned"] += 1

    def carry_out(self, decided: Plan, write: Writes) -> None:
        """The apply step's order, one write at a time (``apply.py``)."""
        for patch in decided.finalizers_added:
            write("finalizer patch")
            self.patched(patch)
        for planned in decided.allocations:
            service = next(s for s in self.services.values() if s.ref == planned.service)
            write("marker")
            marker = allocation.in_flight(planned.droplet_id, planned.existing)
            self.patched(replace_patch(planned.service, service.uid, contract.ALLOCATION, marker))
            write("create call")
            ip = self.account.create(planned.droplet_id, service.uid)
            write("record (or the refusal)")
            if ip is None:
                FIGURES["refused"] += 1
                answer = allocation.refused(
                    "422 You have reached the limit of reserved IPs", allocation.Refusal.LIMIT
                )
                self.patched(
                    replace_patch(planned.service, service.uid, contract.ALLOCATION, answer)
                )
                continue
            # The record; the marker stays until the IP is seen assigned.
            self.patched(replace_patch(planned.service, service.uid, contract.OWNED_ADDRESS, ip))
        rest = replace(
            decided, finalizers_added=(), finalizers_removed=(), allocations=(), releases=()
        )
        if not rest.is_empty:
            write("other writes")
            after = apply(self.observation(), rest)
            self.services = {s.name: s for s in after.services}
            self.account.ips = {ip.ip: ip for ip in after.reserved_ips}
            self.firewall = after.firewall
        for release in decided.releases:
            if release.delete:
                if release.unassign_from is not None:
                    write("unassign")
                    current = self.account.ips[release.ip]
                    self.account.ips[release.ip] = replace(current, droplet_id=None)
                write("delete")
                assert release.ip not in self.user_ips, "a user's own address deleted"
                del self.account.ips[release.ip]
                FIGURES["released"] += 1
            if release.forget is not None:
                write("forget")
                self.patched(release.forget)
        for patch in decided.finalizers_removed:
            write("finalizer removal")
            self.patched(patch)

    # --- invariants -----------------------------------------------------------------------

    @invariant()
    def never_two_created_ips_for_one_service(self) -> None:
        FIGURES["steps"] += 1
        alive = Counter(
            uid for ip, uid in self.account.created_for.items() if ip in self.account.ips
        )
        assert all(count <= 1 for count in alive.values()), alive

    @invariant()
    def user_addresses_stay(self) -> None:
        assert all(ip in self.account.ips for ip in self.user_ips)
        adopted = {owned_address(s) for s in self.services.values()} & self.user_ips
        assert not adopted, f"a user's own address recorded as created: {adopted}"

    @invariant()
    def settled_nothing_leaks(self) -> None:
        """Settle a copy of the world and check nothing is left behind."""
        copy = AllocationHistory.__new__(AllocationHistory)
        copy.services = dict(self.services)
        copy.firewall = self.firewall
        copy.replaced = Counter(self.replaced)
        copy.user_ips = set(self.user_ips)
        copy.account = Account(
            dict(self.account.ips),
            dict(self.account.assigning),
            self.account.limit,
            dict(self.account.created_for),
            self.account.sequence,
        )
        for _ in range(8):
            copy.account.finish()
            decided = plan(copy.observation())
            if decided.is_empty:
                break
            copy.check_plan(decided)
            copy.carry_out(decided, Writes(None))
            copy.forget_deleted()
        else:
            raise AssertionError(f"no empty plan after 8 reconciles: {decided}")
        FIGURES["settled"] += 1
        owners: Counter[str] = Counter()
        for service in copy.services.values():
            assert not service.deleting, f"{service.ref} still waits on its finalizer"
            ip = owned_address(service)
            if ip is not None:
                asks = service.annotation(contract.ADDRESS) == contract.AUTO
                assert asks, f"{service.ref} records {ip} but no longer asks for it"
                owners[ip] += 1
        for ip in copy.account.created_for:
            if ip in copy.account.ips:
                assert owners[ip] == 1, f"created IP {ip} leaked (recorded {owners[ip]} times)"
                FIGURES["created IPs checked for a leak once settled"] += 1
        for service in copy.services.values():
            marker = allocation.read_marker(service.annotation(contract.ALLOCATION))
            if service.annotation(contract.ADDRESS) == contract.AUTO and marker.refused is None:
                assert owned_address(service) is not None or fit_droplets_taken(copy, service), (
                    f"{service.ref} asks for an IP and has none"
                )


def replace_patch(ref: ObjectRef, uid: str, key: str, value: str) -> ServicePatch:
    return ServicePatch(ref, uid, annotations=((key, value),))


def fit_droplets_taken(world: AllocationHistory, service: Service) -> bool:
    """The droplet of every node running the Service's pod holds a reserved IP: a new IP
    has nowhere to go (one per droplet)."""
    held = {ip.droplet_id for ip in world.account.ips.values()}
    return all(world.droplet_of(str(e.node_name)) in held for e in service.endpoints)


AllocationHistory.TestCase.settings = settings(
    max_examples=EXAMPLES,
    stateful_step_count=STEPS,
    deadline=None,
    database=None,
    # make test replays the same histories on every machine (a red run is reproducible);
    # make soak draws new ones each time, to find what the fixed ones miss.
    derandomize="MODEL_SOAK_EXAMPLES" not in os.environ,
    suppress_health_check=[HealthCheck.too_slow],
)
TestAllocationHistories = AllocationHistory.TestCase


@pytest.fixture(scope="module", autouse=True)
def report_figures() -> Iterator[None]:
    """``make soak`` runs with ``-s``: the counts of what the histories went through. Any
    leak, double allocation or user's address lost fails the run, so a printed report means
    none was found."""
    yield
    if "MODEL_SOAK_EXAMPLES" in os.environ:
        print(f"\nallocation histories: {EXAMPLES} histories of up to {STEPS} steps")
        for name, count in sorted(FIGURES.items()):
            print(f"{count:>10}  {name}")


@pytest.mark.parametrize("deleted", [False, True], ids=["still-asking", "deleted-meanwhile"])
def test_a_lost_creation_whose_droplet_is_deleted_leaks_nothing(deleted: bool) -> None:
    """A history random ones reach only now and then, checked by the same oracle: the create
    call went out, the process died before the record, then the marked droplet was deleted
    (DigitalOcean unassigns its IP). The next runs adopt that IP (or release it, once its
    Service is gone) instead of creating a second one."""
    history = AllocationHistory()
    history.start()
    history.ask_for_an_ip("s1", "n1")
    history.reconcile(crash_after=3)  # finalizer, marker, create: then the crash
    assert list(history.account.created_for) == ["198.18.0.1"]
    if deleted:
        history.delete("s1")
    history.replace_a_node("n1")
    history.settled_nothing_leaks()
    history.reconcile(crash_after=None)
    history.never_two_created_ips_for_one_service()
    history.teardown()
