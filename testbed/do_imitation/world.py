"""The imitated account: droplets, reserved IPs and their actions, firewalls, tags, clusters.

Pure state and DigitalOcean's rules, no I/O: every operation returns records or raises
``ApiError``. Time comes from the clocks given, so tests control action latency.

Actions: a reserved-IP action is answered ``in-progress`` and finishes ``action_latency``
seconds later, but never within the request that created it; with latency 0 it has finished
by the next request. ``None`` keeps it pending until ``complete_pending_actions``. While it
is pending the IP is ``locked`` and the IP's and the droplets' state is unchanged.
"""

from __future__ import annotations

import ipaddress
import re
import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from testbed.do_imitation import firewall_rules
from testbed.do_imitation.model import (
    Action,
    ApiError,
    Cluster,
    Droplet,
    Firewall,
    Node,
    NodePool,
    ReservedIp,
    Rule,
    not_found,
    unprocessable,
)
from testbed.do_imitation.regions import check_region
from testbed.do_imitation.render import DROPLET_SIZES

TAG_PATTERN = re.compile(r"^[a-zA-Z0-9_\-\:]+$")
IP_PENDING = "The floating IP already has a pending event"
RESERVED_IP_LIMIT = 3
"""Reserved IPs per account by default (DigitalOcean's documented default)."""
DROPLET_PENDING = "Droplet already has a pending event"


def _addresses(*networks: str) -> Iterator[str]:
    for network in networks:
        yield from (str(host) for host in ipaddress.IPv4Network(network).hosts())


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class World:
    def __init__(self, monotonic: Callable[[], float], wall: Callable[[], datetime]) -> None:
        self._monotonic = monotonic
        self._wall = wall
        self.action_latency: float | None = 0.0
        self.reserved_ip_limit = RESERVED_IP_LIMIT
        self.actions_to_fail = 0
        self.project_id = str(uuid.uuid4())
        self.droplets: dict[int, Droplet] = {}
        self.reserved_ips: dict[str, ReservedIp] = {}
        self.actions: dict[int, Action] = {}
        self.firewalls: dict[str, Firewall] = {}
        self.clusters: dict[str, Cluster] = {}
        self.created_tags: list[str] = []
        self._seq = 0
        self._next_droplet_id = 510000001
        self._next_action_id = 2300000001
        # Documentation ranges (RFC 5737) and a VPC range: data only, never contacted.
        self._public_pool = _addresses("203.0.113.0/24", "198.51.100.0/24")
        self._reserved_pool = _addresses("192.0.2.0/24")
        # Created on demand (POST /v2/reserved_ips): a range apart from the one tests name,
        # and from the data-path bed's clients (198.18.0.0/24, testbed/dataplane/network.py).
        self._created_pool = _addresses("198.19.0.0/16")
        self._private_pool = _addresses("10.110.0.0/20")

    # -- time ---------------------------------------------------------------------------

    def tick(self) -> None:
        """A request arrives (or a test looks): finish the actions that are due."""
        self._seq += 1
        now = self._monotonic()
        for action in self.actions.values():
            due = action.due
            # Never within the request that created it: the POST answers in-progress.
            settled = action.created_seq < self._seq
            if action.status == "in-progress" and due is not None and now >= due and settled:
                self._finish(action)

    def complete_pending_actions(self) -> int:
        pending = [a for a in self.actions.values() if a.status == "in-progress"]
        for action in pending:
            self._finish(action)
        return len(pending)

    def _finish(self, action: Action) -> None:
        action.completed_at = iso(self._wall())
        if action.will_fail:
            action.status = "errored"
            return
        action.status = "completed"
        reserved = self.reserved_ips.get(action.ip)
        if reserved is not None:
            if action.target_droplet is not None and action.target_droplet not in self.droplets:
                action.status = "errored"  # the droplet went away meanwhile
                return
            reserved.droplet_id = action.target_droplet

    # -- seeding ------------------------------------------------------------------------

    def add_droplet(
        self,
        *,
        id: int | None = None,
        name: str | None = None,
        region: str = "nyc3",
        tags: Sequence[str] = (),
        public_ipv4: str | None = None,
        private_ipv4: str | None = None,
        size_slug: str = "s-2vcpu-4gb",
    ) -> Droplet:
        droplet_id = self._take_droplet_id(id)
        if size_slug not in DROPLET_SIZES:
            raise ValueError(f"unknown size {size_slug!r}; known: {sorted(DROPLET_SIZES)}")
        droplet = Droplet(
            id=droplet_id,
            name=name or f"droplet-{droplet_id}",
            region=check_region(region),
            tags=list(dict.fromkeys(tags)),
            public_ipv4=_ipv4(public_ipv4) if public_ipv4 else next(self._public_pool),
            private_ipv4=_ipv4(private_ipv4) if private_ipv4 else next(self._private_pool),
            created_at=iso(self._wall()),
            vpc_uuid=_vpc_uuid(region),
            size_slug=size_slug,
        )
        self.droplets[droplet_id] = droplet
        return droplet

    def remove_droplet(self, droplet_id: int) -> None:
        """The droplet is destroyed: its reserved IP is freed, pools and firewalls forget it."""
        if self.droplets.pop(droplet_id, None) is None:
            raise KeyError(f"no droplet {droplet_id}")
        for reserved in self.reserved_ips.values():
            if reserved.droplet_id == droplet_id:
                reserved.droplet_id = None
        for firewall in self.firewalls.values():
            if droplet_id in firewall.droplet_ids:
                firewall.droplet_ids.remove(droplet_id)
        for cluster in self.clusters.values():
            for pool in cluster.node_pools:
                pool.nodes = [node for node in pool.nodes if node.droplet_id != droplet_id]

    def add_reserved_ip(
        self, *, ip: str | None = None, region: str = "nyc3", droplet_id: int | None = None
    ) -> ReservedIp:
        address = _ipv4(ip) if ip else next(self._reserved_pool)
        if address in self.reserved_ips:
            raise ValueError(f"reserved IP {address} exists already")
        reserved = ReservedIp(address, check_region(region), self.project_id)
        if droplet_id is not None:
            droplet = self.droplets.get(droplet_id)
            if droplet is None:
                raise ValueError(f"no droplet {droplet_id} to hold {address}")
            if droplet.region != reserved.region or self.ip_of(droplet_id) is not None:
                raise ValueError(f"droplet {droplet_id} cannot hold {address} (region or IP)")
            reserved.droplet_id = droplet_id
        self.reserved_ips[address] = reserved
        return reserved

    def add_cluster(
        self,
        *,
        id: str | None = None,
        name: str = "k8s-cluster",
        region: str = "nyc3",
        version: str = "1.33.1-do.0",
    ) -> Cluster:
        cluster_id = str(uuid.UUID(id)) if id else str(uuid.uuid4())
        if cluster_id in self.clusters:
            raise ValueError(f"cluster {cluster_id} exists already")
        cluster = Cluster(
            cluster_id, name, check_region(region), version, _vpc_uuid(region), iso(self._wall())
        )
        self.clusters[cluster_id] = cluster
        return cluster

    def add_doks_node(
        self,
        cluster_id: str,
        *,
        pool: str = "pool-1",
        id: int | None = None,
        name: str | None = None,
        public_ipv4: str | None = None,
        private_ipv4: str | None = None,
        size_slug: str = "s-2vcpu-4gb",
    ) -> Droplet:
        """A worker droplet of the cluster, tagged as DOKS tags its workers."""
        cluster = self.clusters[cluster_id]
        node_pool = next((p for p in cluster.node_pools if p.name == pool), None)
        if node_pool is None:
            node_pool = NodePool(str(uuid.uuid4()), pool, size_slug)
            cluster.node_pools.append(node_pool)
        node_id = str(uuid.uuid4())
        droplet = self.add_droplet(
            id=id,
            name=name or f"{pool}-{node_id[:5]}",
            region=cluster.region,
            tags=["k8s", cluster.tag, "k8s:worker"],
            public_ipv4=public_ipv4,
            private_ipv4=private_ipv4,
            size_slug=size_slug,
        )
        node_pool.nodes.append(Node(node_id, droplet.name, droplet.id, droplet.created_at))
        return droplet

    def add_tag(self, name: str) -> None:
        if not TAG_PATTERN.fullmatch(name) or len(name) > 255:
            raise ValueError(f"invalid tag name {name!r}")
        if name not in self.created_tags:
            self.created_tags.append(name)

    def _take_droplet_id(self, wanted: int | None) -> int:
        if wanted is None:
            while self._next_droplet_id in self.droplets:
                self._next_droplet_id += 1
            wanted = self._next_droplet_id
            self._next_droplet_id += 1
        if wanted in self.droplets:
            raise ValueError(f"droplet {wanted} exists already")
        return wanted

    # -- droplets, tags, clusters -------------------------------------------------------

    def list_droplets(self, tag_name: str | None = None, name: str | None = None) -> list[Droplet]:
        found = list(self.droplets.values())
        if tag_name is not None:
            found = [d for d in found if tag_name in d.tags]
        if name is not None:
            found = [d for d in found if d.name.lower() == name.lower()]
        return found

    def get_droplet(self, droplet_id: int) -> Droplet:
        droplet = self.droplets.get(droplet_id)
        if droplet is None:
            raise not_found()
        return droplet

    def tag_exists(self, name: str) -> bool:
        return name in self.created_tags or any(name in d.tags for d in self.droplets.values())

    def get_tag(self, name: str) -> list[int]:
        """The ids of the droplets that carry the tag."""
        if not self.tag_exists(name):
            raise not_found()
        return [d.id for d in self.droplets.values() if name in d.tags]

    def create_tag(self, body: Any) -> str:
        name = body.get("name") if isinstance(body, dict) else None
        if not isinstance(name, str) or not TAG_PATTERN.fullmatch(name) or len(name) > 255:
            # Tag creation answers 400 in a shape of its own (the spec's example).
            message = (
                f'Error validating resource tag: "tag-name {name!r} contains invalid characters"'
            )
            raise ApiError(
                400,
                "bad_request",
                message,
                {"error": message, "messages": None, "root_causes": [message]},
            )
        if not self.tag_exists(name):
            self.created_tags.append(name)
        return name

    def get_cluster(self, cluster_id: str) -> Cluster:
        cluster = self.clusters.get(cluster_id)
        if cluster is None:
            raise not_found()
        return cluster

    # -- reserved IPs -------------------------------------------------------------------

    def get_reserved_ip(self, ip: str) -> ReservedIp:
        reserved = self.reserved_ips.get(ip)
        if reserved is None:
            raise not_found()
        return reserved

    def holder(self, reserved: ReservedIp) -> Droplet | None:
        return None if reserved.droplet_id is None else self.droplets.get(reserved.droplet_id)

    def is_locked(self, ip: str) -> bool:
        return any(a.ip == ip and a.status == "in-progress" for a in self.actions.values())

    def ip_of(self, droplet_id: int) -> str | None:
        return next((r.ip for r in self.reserved_ips.values() if r.droplet_id == droplet_id), None)

    def _droplet_busy(self, droplet_id: int) -> bool:
        return any(
            a.status == "in-progress" and a.involves(droplet_id) for a in self.actions.values()
        )

    def post_reserved_ip_action(self, ip: str, body: Any) -> Action:
        reserved = self.get_reserved_ip(ip)
        kind = body.get("type") if isinstance(body, dict) else None
        if kind not in ("assign", "unassign"):
            raise unprocessable("type must be 'assign' or 'unassign'")
        if self.is_locked(ip):
            raise unprocessable(IP_PENDING)
        if kind == "unassign":
            if reserved.droplet_id is None:
                raise unprocessable("The reserved IP is not assigned to a Droplet.")
            if self._droplet_busy(reserved.droplet_id):
                raise unprocessable(DROPLET_PENDING)
            return self._start_action(reserved, "unassign_ip", None)
        droplet_id = body.get("droplet_id")
        if not isinstance(droplet_id, int) or isinstance(droplet_id, bool):
            raise unprocessable("droplet_id (an integer) is required to assign a reserved IP")
        droplet = self.get_droplet(droplet_id)
        if droplet.region != reserved.region:
            raise unprocessable(
                f"The reserved IP {ip} is in region {reserved.region} and Droplet "
                f"{droplet_id} is in region {droplet.region}: they must be in the same region."
            )
        if self._droplet_busy(droplet_id):
            raise unprocessable(DROPLET_PENDING)
        if reserved.droplet_id == droplet_id:
            raise unprocessable(f"The reserved IP {ip} is already assigned to this Droplet.")
        if self.ip_of(droplet_id) is not None:
            raise unprocessable("The Droplet already has a reserved IP assigned to it.")
        return self._start_action(reserved, "assign_ip", droplet_id)

    def create_reserved_ip(self, body: Any) -> tuple[ReservedIp, Action | None]:
        """``POST /v2/reserved_ips``: reserved to a region (unassigned), or for a Droplet: then
        created unassigned and locked, with an ``assign_ip`` action in progress (as the spec's
        example answers), assigned once that action completes."""
        if not isinstance(body, dict):
            raise unprocessable("droplet_id or region is required")
        if len(self.reserved_ips) >= self.reserved_ip_limit:
            # The text of DigitalOcean's answer is UNCONFIRMED; its status and id are the
            # ones the API gives for a refused request.
            raise unprocessable(
                f"You have reached the limit of {self.reserved_ip_limit} reserved IPs for "
                "your account; contact support to raise it."
            )
        droplet_id = body.get("droplet_id")
        if droplet_id is not None:
            if not isinstance(droplet_id, int) or isinstance(droplet_id, bool):
                raise unprocessable("droplet_id must be an integer")
            droplet = self.get_droplet(droplet_id)
            if self.ip_of(droplet_id) is not None:
                raise unprocessable("The Droplet already has a reserved IP assigned to it.")
            if self._droplet_busy(droplet_id):
                raise unprocessable(DROPLET_PENDING)
            reserved = self.add_reserved_ip(ip=next(self._created_pool), region=droplet.region)
            return reserved, self._start_action(reserved, "assign_ip", droplet_id)
        region = body.get("region")
        if not isinstance(region, str):
            raise unprocessable("droplet_id or region is required")
        return self.add_reserved_ip(ip=next(self._created_pool), region=region), None

    def delete_reserved_ip(self, ip: str) -> None:
        """``DELETE /v2/reserved_ips/{ip}``. Whether DigitalOcean deletes an assigned IP is
        UNCONFIRMED: the imitation refuses, so the function must unassign first."""
        reserved = self.get_reserved_ip(ip)
        if self.is_locked(ip):
            raise unprocessable(IP_PENDING)
        if reserved.droplet_id is not None:
            raise unprocessable("The reserved IP is assigned to a Droplet: unassign it first.")
        del self.reserved_ips[ip]

    def _start_action(self, reserved: ReservedIp, kind: Any, target: int | None) -> Action:
        will_fail = self.actions_to_fail > 0
        self.actions_to_fail -= int(will_fail)
        latency = self.action_latency
        action = Action(
            id=self._next_action_id,
            type=kind,
            ip=reserved.ip,
            region=reserved.region,
            project_id=reserved.project_id,
            started_at=iso(self._wall()),
            created_seq=self._seq,
            due=None if latency is None else self._monotonic() + latency,
            will_fail=will_fail,
            target_droplet=target,
            source_droplet=reserved.droplet_id,
        )
        self._next_action_id += 1
        self.actions[action.id] = action
        return action

    def get_action(self, action_id: int, ip: str | None = None) -> Action:
        action = self.actions.get(action_id)
        if action is None or (ip is not None and action.ip != ip):
            raise not_found()
        return action

    def list_ip_actions(self, ip: str) -> list[Action]:
        self.get_reserved_ip(ip)
        return [a for a in self.actions.values() if a.ip == ip]

    # -- firewalls ----------------------------------------------------------------------

    def create_firewall(self, body: Any) -> Firewall:
        spec = firewall_rules.parse_firewall(body, creating=True)
        self._check_firewall(spec, None)
        firewall = Firewall(str(uuid.uuid4()), spec.name, iso(self._wall()))
        self._apply(firewall, spec)
        self.firewalls[firewall.id] = firewall
        return firewall

    def get_firewall(self, firewall_id: str) -> Firewall:
        firewall = self.firewalls.get(firewall_id)
        if firewall is None:
            raise not_found()
        return firewall

    def replace_firewall(self, firewall_id: str, body: Any) -> Firewall:
        """PUT replaces the whole firewall: what the body leaves out is gone."""
        firewall = self.get_firewall(firewall_id)
        spec = firewall_rules.parse_firewall(body, creating=False)
        self._check_firewall(spec, firewall_id)
        self._apply(firewall, spec)
        return firewall

    def delete_firewall(self, firewall_id: str) -> None:
        self.get_firewall(firewall_id)
        del self.firewalls[firewall_id]

    def add_firewall_rules(self, firewall_id: str, body: Any) -> None:
        firewall = self.get_firewall(firewall_id)
        inbound, outbound = firewall_rules.parse_rules_body(body)
        new_in = [r for r in inbound if not _has(firewall.inbound_rules, r)]
        new_out = [r for r in outbound if not _has(firewall.outbound_rules, r)]
        firewall_rules.check_rule_count(
            len(firewall.inbound_rules) + len(firewall.outbound_rules) + len(new_in) + len(new_out)
        )
        self._check_references(inbound + outbound, [], [])
        firewall.inbound_rules.extend(new_in)
        firewall.outbound_rules.extend(new_out)

    def delete_firewall_rules(self, firewall_id: str, body: Any) -> None:
        """Rules equal to a given one go; a rule that is not there is ignored."""
        firewall = self.get_firewall(firewall_id)
        inbound, outbound = firewall_rules.parse_rules_body(body)
        firewall.inbound_rules = [r for r in firewall.inbound_rules if not _has(inbound, r)]
        firewall.outbound_rules = [r for r in firewall.outbound_rules if not _has(outbound, r)]

    def add_firewall_tags(self, firewall_id: str, body: Any) -> None:
        firewall = self.get_firewall(firewall_id)
        tags = [t for t in firewall_rules.parse_tags_body(body) if t not in firewall.tags]
        firewall_rules.check_tag_count(len(firewall.tags) + len(tags))
        self._check_references([], [], tags)
        firewall.tags.extend(tags)

    def delete_firewall_tags(self, firewall_id: str, body: Any) -> None:
        firewall = self.get_firewall(firewall_id)
        gone = set(firewall_rules.parse_tags_body(body))
        firewall.tags = [t for t in firewall.tags if t not in gone]

    def _check_firewall(self, spec: firewall_rules.FirewallSpec, own_id: str | None) -> None:
        if any(f.name == spec.name and f.id != own_id for f in self.firewalls.values()):
            raise ApiError(409, "conflict", "duplicate name")
        self._check_references(
            spec.inbound_rules + spec.outbound_rules, spec.droplet_ids, spec.tags
        )

    def _check_references(self, rules: list[Rule], droplet_ids: list[int], tags: list[str]) -> None:
        wanted_droplets = set(droplet_ids)
        wanted_tags = set(tags)
        for rule in rules:
            wanted_droplets.update(rule.targets.droplet_ids)
            wanted_tags.update(rule.targets.tags)
        missing_droplets = sorted(d for d in wanted_droplets if d not in self.droplets)
        if missing_droplets:
            raise unprocessable(f"droplet(s) not found: {missing_droplets}")
        missing_tags = sorted(t for t in wanted_tags if not self.tag_exists(t))
        if missing_tags:
            raise unprocessable(f"tag(s) not found: {missing_tags}; create a tag before use")

    @staticmethod
    def _apply(firewall: Firewall, spec: firewall_rules.FirewallSpec) -> None:
        firewall.name = spec.name
        firewall.inbound_rules = _unique(spec.inbound_rules)
        firewall.outbound_rules = _unique(spec.outbound_rules)
        firewall.droplet_ids = list(spec.droplet_ids)
        firewall.tags = list(spec.tags)


def _has(rules: list[Rule], rule: Rule) -> bool:
    return any(existing.same_as(rule) for existing in rules)


def _unique(rules: list[Rule]) -> list[Rule]:
    kept: list[Rule] = []
    for rule in rules:
        if not _has(kept, rule):
            kept.append(rule)
    return kept


def _ipv4(text: str) -> str:
    return str(ipaddress.IPv4Address(text))


def _vpc_uuid(region: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"imitation:vpc:{region}"))
