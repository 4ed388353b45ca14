"""The imitation's records: plain data, no behaviour beyond small derived views."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

ActionStatus = Literal["in-progress", "completed", "errored"]
Direction = Literal["inbound", "outbound"]

TARGET_KEYS = ("addresses", "droplet_ids", "load_balancer_uids", "kubernetes_ids", "tags")


class ApiError(Exception):
    """An answer of the API other than success: HTTP status, error id and message."""

    def __init__(
        self, status: int, error_id: str, message: str, body: dict[str, Any] | None = None
    ) -> None:
        super().__init__(f"{status} {error_id}: {message}")
        self.status = status
        self.error_id = error_id
        self.message = message
        self.body = body  # an answer whose shape differs from {id, message, request_id}


def not_found() -> ApiError:
    return ApiError(404, "not_found", "The resource you were accessing could not be found.")


def bad_request(message: str) -> ApiError:
    return ApiError(400, "bad_request", message)


def unprocessable(message: str) -> ApiError:
    return ApiError(422, "unprocessable_entity", message)


@dataclass
class Droplet:
    id: int
    name: str
    region: str
    tags: list[str]
    public_ipv4: str
    private_ipv4: str
    created_at: str
    vpc_uuid: str
    size_slug: str = "s-2vcpu-4gb"


@dataclass
class ReservedIp:
    ip: str
    region: str
    project_id: str
    droplet_id: int | None = None


@dataclass
class Action:
    id: int
    type: Literal["assign_ip", "unassign_ip"]
    ip: str
    region: str
    project_id: str
    started_at: str
    created_seq: int
    due: float | None  # monotonic time it finishes; None = only when told to
    will_fail: bool
    target_droplet: int | None  # the droplet the IP goes to (assign)
    source_droplet: int | None  # the droplet the IP leaves (move or unassign)
    status: ActionStatus = "in-progress"
    completed_at: str | None = None

    def involves(self, droplet_id: int) -> bool:
        return droplet_id in (self.target_droplet, self.source_droplet)


@dataclass(frozen=True)
class Targets:
    """A rule's sources or destinations; tuples keep rules hashable and comparable."""

    addresses: tuple[str, ...] = ()
    droplet_ids: tuple[int, ...] = ()
    load_balancer_uids: tuple[str, ...] = ()
    kubernetes_ids: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()

    def same_as(self, other: Targets) -> bool:
        return all(set(getattr(self, key)) == set(getattr(other, key)) for key in TARGET_KEYS)


@dataclass(frozen=True)
class Rule:
    protocol: Literal["tcp", "udp", "icmp"]
    ports: str  # normalised: "0" for all ports, "80", "8000-9000"
    targets: Targets

    def same_as(self, other: Rule) -> bool:
        return (
            self.protocol == other.protocol
            and self.ports == other.ports
            and self.targets.same_as(other.targets)
        )


@dataclass
class Firewall:
    id: str
    name: str
    created_at: str
    inbound_rules: list[Rule] = field(default_factory=list)
    outbound_rules: list[Rule] = field(default_factory=list)
    droplet_ids: list[int] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)


@dataclass
class Node:
    id: str
    name: str
    droplet_id: int
    created_at: str


@dataclass
class NodePool:
    id: str
    name: str
    size: str
    nodes: list[Node] = field(default_factory=list)


@dataclass
class Cluster:
    id: str
    name: str
    region: str
    version: str
    vpc_uuid: str
    created_at: str
    node_pools: list[NodePool] = field(default_factory=list)

    @property
    def tag(self) -> str:
        """The tag DOKS puts on every worker droplet of the cluster."""
        return f"k8s:{self.id}"
