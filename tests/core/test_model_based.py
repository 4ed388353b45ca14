"""Model-based histories of a cluster, checked against the decision core's invariants.

Hypothesis drives a small world (up to six nodes, four Services, three reserved IPs of ours
and one that is not) through random changes: nodes join, leave, go NotReady, are cordoned,
tainted, deleted or replaced (new droplet, new anchor); pods move and flip readiness;
Services appear, disappear, change or drop their address and share IPs (clashing on ports
or not); someone else moves or locks an IP; the apply step fails half-way (the assignment
errored, or its answer was lost after DigitalOcean acted). After every step the plan for
the current state is checked, and a reconcile step applies it the way the apply step would
(``tests.core.simulator``) until a plan is empty.

The oracle is written here, independently of the core: which nodes are fit for an IP and
which Services share it follow the README's rules, not the core's code.

Invariants:

1. **placed when possible**: once settled, each IP with a Service is on a node fit for all
   its Services whenever one exists, unless every such node's droplet holds another
   reserved IP, or the IP is locked by a pending action;
2. **one IP per droplet**: no plan assigns an IP to a droplet that holds one (checked by the
   simulator at each assignment) and no two IPs ever share a droplet;
3. **sticky**: no plan moves an IP away from a droplet whose node is fit for it;
4. **convergence**: applying a plan and planning again gives an empty plan, except when the
   plan freed a droplet another IP needs (then one more pass settles it: the first pass never
   frees and fills a droplet at once);
5. **the user's own externalIPs** are never removed or reordered, managed or not;
6. **no leftovers**: once settled, a Service without the address annotation carries none of
   our annotations and no anchor IP of ours; it is never placed.

``make test`` runs a few thousand steps; ``make soak`` sets ``MODEL_SOAK_EXAMPLES`` for many
more, and prints the figures.
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

from floating_ip.core import own_writes
from floating_ip.core.model import (
    ConditionStatus,
    Endpoint,
    Firewall,
    Node,
    ObjectRef,
    Observation,
    Plan,
    ReservedIP,
    Service,
    ServicePort,
    Taint,
    annotations_from,
)
from floating_ip.core.plan import plan
from floating_ip_common import contract
from tests.core.builders import CLUSTER, IP_A, IP_B, IP_C
from tests.core.simulator import apply, patch_service

NODE_NAMES = ("n1", "n2", "n3", "n4", "n5", "n6")
SERVICE_NAMES = ("s1", "s2", "s3", "s4")
OUR_IPS = (IP_A, IP_B, IP_C)
FOREIGN_IP = "192.0.2.99"
"""A reserved IP of the account that no Service names (someone else's, or an old one)."""
PORT_SETS = ((80,), (443,), (80, 443), (53,))
GOING_AWAY = "ToBeDeletedByClusterAutoscaler"

EXAMPLES = int(os.environ.get("MODEL_SOAK_EXAMPLES", "100"))
STEPS = int(os.environ.get("MODEL_SOAK_STEPS", "60"))
FIGURES: Counter[str] = Counter()
"""Steps, settles and faults seen, for the soak's printed report."""


@dataclass
class NodeState:
    ready: ConditionStatus = ConditionStatus.TRUE
    cordoned: bool = False
    deleting: bool = False
    tainted: bool = False
    anchor_known: bool = True
    generation: int = 0
    """Bumped when the node is replaced: a new droplet and a new anchor IP."""

    def droplet(self, name: str) -> int:
        return 1000 * self.generation + 100 + int(name[1:])

    def anchor(self, name: str) -> str:
        return f"10.{10 + self.generation}.0.{int(name[1:])}"


@dataclass
class ServiceState:
    address: str | None
    ports: tuple[int, ...]
    created: str
    user_ips: tuple[str, ...]
    endpoints: dict[str, bool] = field(default_factory=dict)
    """Node name → ready."""


def user_ips_of(name: str) -> tuple[str, ...]:
    number = int(name[1:])
    return (f"198.51.100.{number}",) if number % 2 else ()


class ClusterHistory(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.nodes: dict[str, NodeState] = {}
        self.ips: dict[str, ReservedIP] = {
            ip: ReservedIP(ip, CLUSTER.region) for ip in (*OUR_IPS, FOREIGN_IP)
        }
        # What the function wrote lives on the Service objects, kept across model changes.
        self.services: dict[str, Service] = {}
        self.states: dict[str, ServiceState] = {}
        self.unassign_unclaimed = False
        self.firewall: Firewall | None = None
        self.clock = 0

    @initialize(
        node_count=st.integers(min_value=1, max_value=len(NODE_NAMES)),
        shared=st.booleans(),
    )
    def a_running_cluster(self, node_count: int, shared: bool) -> None:
        """Start where users are: a few nodes, two Services with pods, maybe sharing an IP."""
        self.nodes = {name: NodeState() for name in NODE_NAMES[:node_count]}
        self.add_service("s1", IP_A, (80, 443), ["n1", "n2"])
        self.add_service("s2", IP_A if shared else IP_B, (53,), ["n2", "n3"])
        self.reconcile()

    # --- the world as the core observes it ---------------------------------------------------

    def node(self, name: str) -> Node:
        state = self.nodes[name]
        taints = (Taint(GOING_AWAY, "NoSchedule"),) if state.tainted else ()
        return Node(
            name=name,
            droplet_id=state.droplet(name),
            ready=state.ready,
            unschedulable=state.cordoned,
            deleting=state.deleting,
            taints=taints,
            region=CLUSTER.region,
            anchor_ipv4=state.anchor(name) if state.anchor_known else None,
        )

    def service(self, name: str) -> Service:
        state = self.states[name]
        current = self.services[name]
        annotations = dict(current.annotations)
        annotations.pop(contract.ADDRESS, None)
        if state.address is not None:
            annotations[contract.ADDRESS] = state.address
        endpoints = tuple(
            Endpoint(node, ready, pod=ObjectRef("default", f"{name}-{node}"))
            for node, ready in sorted(state.endpoints.items())
            if node in self.nodes
        )
        return replace(
            current,
            annotations=annotations_from(annotations),
            ports=tuple(ServicePort(port) for port in state.ports),
            endpoints=endpoints,
        )

    def observation(self) -> Observation:
        return Observation(
            cluster=replace(CLUSTER, unassign_unclaimed=self.unassign_unclaimed),
            services=tuple(self.service(name) for name in sorted(self.services)),
            nodes=tuple(self.node(name) for name in sorted(self.nodes)),
            reserved_ips=tuple(self.ips[ip] for ip in sorted(self.ips)),
            firewall=self.firewall,
        )

    def absorb(self, observation: Observation) -> None:
        """Take over what applying a plan changed: Services, reserved IPs, the firewall."""
        for service in observation.services:
            self.services[service.name] = service
        self.ips = {ip.ip: ip for ip in observation.reserved_ips}
        self.firewall = observation.firewall

    # --- the oracle --------------------------------------------------------------------------

    def sharing(self, ip: str) -> list[str]:
        """Services that get ``ip``: oldest first, each only if its ports clash with none."""
        taken: set[int] = set()
        accepted = []
        named = [n for n, s in self.states.items() if s.address == ip]
        for name in sorted(named, key=lambda n: (self.states[n].created, n)):
            ports = set(self.states[name].ports)
            if ports & taken:
                continue
            accepted.append(name)
            taken |= ports
        return accepted

    def fit(self, node: str, ip: str) -> bool:
        state = self.nodes[node]
        healthy = (
            state.ready is ConditionStatus.TRUE
            and not state.cordoned
            and not state.deleting
            and not state.tainted
            and state.anchor_known
        )
        users = self.sharing(ip)
        return healthy and all(self.states[s].endpoints.get(node) for s in users)

    def node_of_droplet(self, droplet: int | None) -> str | None:
        return next((n for n, s in self.nodes.items() if s.droplet(n) == droplet), None)

    # --- changes to the cluster --------------------------------------------------------------

    @rule(name=st.sampled_from(NODE_NAMES))
    def add_node(self, name: str) -> None:
        self.nodes.setdefault(name, NodeState())

    @rule(name=st.sampled_from(NODE_NAMES))
    def remove_node(self, name: str) -> None:
        state = self.nodes.pop(name, None)
        if state is None:
            return
        for ip, reserved in self.ips.items():  # the droplet is gone: its IP is unassigned
            if reserved.droplet_id == state.droplet(name):
                self.ips[ip] = replace(reserved, droplet_id=None, locked=False)

    @rule(name=st.sampled_from(NODE_NAMES))
    def replace_node(self, name: str) -> None:
        """Recycled: same name, a new droplet and anchor; the old droplet's IP falls off."""
        if name in self.nodes:
            self.remove_node(name)
            self.nodes[name] = NodeState(generation=1)

    @rule(
        name=st.sampled_from(NODE_NAMES),
        ready=st.sampled_from(list(ConditionStatus)),
    )
    def set_ready(self, name: str, ready: ConditionStatus) -> None:
        if name in self.nodes:
            self.nodes[name].ready = ready

    @rule(
        name=st.sampled_from(NODE_NAMES),
        flag=st.sampled_from(["cordoned", "deleting", "tainted", "anchor_known"]),
    )
    def toggle(self, name: str, flag: str) -> None:
        if name in self.nodes:
            state = self.nodes[name]
            setattr(state, flag, not getattr(state, flag))

    # --- Services and pods -------------------------------------------------------------------

    @rule(
        name=st.sampled_from(SERVICE_NAMES),
        address=st.sampled_from([*OUR_IPS, None, "not-an-ip", "203.0.113.250"]),
        ports=st.sampled_from(PORT_SETS),
        on=st.lists(st.sampled_from(NODE_NAMES), max_size=3, unique=True),
    )
    def add_service(
        self, name: str, address: str | None, ports: tuple[int, ...], on: list[str]
    ) -> None:
        if name in self.services:
            return
        self.clock += 1
        created = f"2025-01-01T00:{self.clock // 60 % 60:02}:{self.clock % 60:02}Z"
        user_ips = user_ips_of(name)
        self.states[name] = ServiceState(address, ports, created, user_ips, dict.fromkeys(on, True))
        self.services[name] = Service(
            namespace="default",
            name=name,
            uid=f"uid-{name}-{self.clock}",
            external_ips=user_ips,
            resource_version="1",
            creation_timestamp=created,
        )

    @rule(name=st.sampled_from(SERVICE_NAMES))
    def delete_service(self, name: str) -> None:
        self.services.pop(name, None)
        self.states.pop(name, None)

    @rule(
        name=st.sampled_from(SERVICE_NAMES),
        address=st.sampled_from([*OUR_IPS, None, "not-an-ip"]),
    )
    def edit_address(self, name: str, address: str | None) -> None:
        if name in self.states:
            self.states[name].address = address

    @rule(name=st.sampled_from(SERVICE_NAMES), ports=st.sampled_from(PORT_SETS))
    def edit_ports(self, name: str, ports: tuple[int, ...]) -> None:
        if name in self.states:
            self.states[name].ports = ports

    @rule(
        name=st.sampled_from(SERVICE_NAMES),
        source=st.sampled_from(NODE_NAMES),
        to=st.sampled_from(NODE_NAMES),
    )
    def move_pod(self, name: str, source: str, to: str) -> None:
        if name in self.states:
            endpoints = self.states[name].endpoints
            endpoints.pop(source, None)
            endpoints[to] = True

    @rule(name=st.sampled_from(SERVICE_NAMES), node=st.sampled_from(NODE_NAMES))
    def flip_readiness(self, name: str, node: str) -> None:
        if name in self.states and node in self.states[name].endpoints:
            endpoints = self.states[name].endpoints
            endpoints[node] = not endpoints[node]

    # --- someone else, and DigitalOcean ------------------------------------------------------

    @rule(ip=st.sampled_from([*OUR_IPS, FOREIGN_IP]), node=st.sampled_from([*NODE_NAMES, None]))
    def someone_moves_an_ip(self, ip: str, node: str | None) -> None:
        target = self.nodes[node].droplet(node) if node in self.nodes and node else None
        if target is not None and any(r.droplet_id == target for r in self.ips.values()):
            return  # DigitalOcean refuses a second IP on a droplet
        self.ips[ip] = replace(self.ips[ip], droplet_id=target)
        FIGURES["ips moved by someone else"] += 1

    @rule(ip=st.sampled_from(OUR_IPS))
    def toggle_lock(self, ip: str) -> None:
        self.ips[ip] = replace(self.ips[ip], locked=not self.ips[ip].locked)

    @rule()
    def toggle_unassign_unclaimed(self) -> None:
        self.unassign_unclaimed = not self.unassign_unclaimed

    # --- the function ------------------------------------------------------------------------

    @rule(stage=st.sampled_from(["assignment failed", "answer lost"]))
    def reconcile_fails_half_way(self, stage: str) -> None:
        """The apply step stops part-way: the Service patches that depend on it never come."""
        observation = self.observation()
        the_plan = plan(observation)
        services = {s.ref: s for s in observation.services}
        for patch in the_plan.before_assign:
            services[patch.service] = patch_service(services[patch.service], patch)
        if stage == "answer lost":  # DigitalOcean acted; we never heard
            for assignment in the_plan.assignments:
                self.ips[assignment.ip] = replace(
                    self.ips[assignment.ip], droplet_id=assignment.droplet_id
                )
        self.services.update({ref.name: service for ref, service in services.items()})
        FIGURES[f"fault: {stage}"] += bool(the_plan.assignments)

    @rule()
    def reconcile(self) -> None:
        """Apply plans until one is empty, checking each pass; then the settled invariants."""
        observation = self.observation()
        passes = 0
        freed = False
        while True:
            the_plan = plan(observation)
            self.check_plan(observation, the_plan)
            if the_plan.is_empty:
                break
            passes += 1
            assert passes == 1 or (passes == 2 and freed), (
                f"pass {passes} still plans {the_plan} (a second pass may only fill a droplet "
                "the first one freed)"
            )
            freed = frees_a_droplet(the_plan)
            observation = apply(observation, the_plan)
        FIGURES[f"settled in {passes} pass{'es' * (passes != 1)}"] += 1
        self.absorb(observation)
        self.check_settled(observation)

    # --- invariants --------------------------------------------------------------------------

    @invariant()
    def every_plan_keeps_the_rules(self) -> None:
        FIGURES["steps"] += 1
        observation = self.observation()
        self.check_plan(observation, plan(observation))
        held = [ip.droplet_id for ip in self.ips.values() if ip.droplet_id is not None]
        assert len(held) == len(set(held)), "two reserved IPs on one droplet"

    def check_plan(self, observation: Observation, the_plan: Plan) -> None:
        targets = [a.droplet_id for a in the_plan.assignments]
        assert len(targets) == len(set(targets)), "two IPs assigned to one droplet"
        for assignment in the_plan.assignments:
            node = self.node_of_droplet(assignment.droplet_id)
            assert node is not None and self.fit(node, assignment.ip), "moved to an unfit node"
            holder = self.node_of_droplet(assignment.from_droplet_id)
            assert holder is None or not self.fit(holder, assignment.ip), (
                f"{assignment.ip} moved away from {holder}, which is fit for it"
            )
            assert not self.ips[assignment.ip].locked
        for released in the_plan.unassignments:
            assert self.unassign_unclaimed
            assert not any(s.address == released.ip for s in self.states.values())
        for patch in (*the_plan.before_assign, *the_plan.after_assign):
            name = patch.service.name
            if patch.external_ips is not None:
                mine = self.states[name].user_ips
                assert tuple(ip for ip in patch.external_ips if ip in mine) == mine, (
                    f"the user's own externalIPs of {name} were touched: {patch.external_ips}"
                )
            if self.states[name].address is None:
                assert not [key for key, value in patch.annotations if value is not None], (
                    "an opted-out Service is only ever cleaned"
                )
                assert patch.external_ips is None or set(patch.external_ips) <= set(
                    self.states[name].user_ips
                )
        assert not [r for r in the_plan.reports if self.states[r.service.name].address is None]

    def check_settled(self, observation: Observation) -> None:
        for ip in OUR_IPS:
            reserved = self.ips[ip]
            if not self.sharing(ip) or reserved.locked:
                continue
            fit = [n for n in sorted(self.nodes) if self.fit(n, ip)]
            holder = self.node_of_droplet(reserved.droplet_id)
            if not fit or holder in fit:
                FIGURES["ips placed" if fit else "ips with no fit node"] += 1
                continue
            others = {r.droplet_id for r in self.ips.values() if r.ip != ip}
            free = [n for n in fit if self.nodes[n].droplet(n) not in others]
            assert not free, f"{ip} is on {holder}, not on fit node(s) {free} with free droplets"
            FIGURES["ips with every fit droplet taken"] += 1
        for service in observation.services:
            state = self.states[service.name]
            mine = tuple(ip for ip in service.external_ips if ip in state.user_ips)
            assert mine == state.user_ips
            if state.address is None:
                assert not own_writes.has_traces(key for key, _ in service.annotations)
                assert service.external_ips == state.user_ips
            elif service.name in self.sharing(state.address) and state.address in OUR_IPS:
                holder = self.node_of_droplet(self.ips[state.address].droplet_id)
                if holder is not None and self.fit(holder, state.address):
                    anchor = self.nodes[holder].anchor(holder)
                    assert anchor in service.external_ips, "the holder's anchor is listed"
                    assert service.annotation(contract.HOLDER_NODE) == holder


def frees_a_droplet(the_plan: Plan) -> bool:
    return any(a.from_droplet_id is not None for a in the_plan.assignments) or bool(
        the_plan.unassignments
    )


ClusterHistory.TestCase.settings = settings(
    max_examples=EXAMPLES,
    stateful_step_count=STEPS,
    deadline=None,
    database=None,
    # make test replays the same histories on every machine (a red run is reproducible);
    # make soak draws new ones each time, to find what the fixed ones miss.
    derandomize="MODEL_SOAK_EXAMPLES" not in os.environ,
    suppress_health_check=[HealthCheck.too_slow],
)
TestClusterHistory = ClusterHistory.TestCase


@pytest.fixture(scope="module", autouse=True)
def report_figures() -> Iterator[None]:
    """``make soak`` runs with ``-s``: the counts of what the histories went through."""
    yield
    if "MODEL_SOAK_EXAMPLES" in os.environ:
        print(f"\nmodel-based histories: {EXAMPLES} histories of up to {STEPS} steps")
        for name, count in sorted(FIGURES.items()):
            print(f"{count:>10}  {name}")
