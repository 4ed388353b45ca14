"""The plain data the decision core reads (``Observation``) and writes (``Plan``).

Adapters build the inputs from Kubernetes and DigitalOcean objects, already reduced to what
the decisions need; the apply step executes the outputs. Everything is a frozen dataclass of
strings, numbers, tuples and frozensets, so values compare by content and can be hashed,
logged or written to JSON without surprises.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from floating_ip_common import contract

# ---------------------------------------------------------------------------------------------
# Shared small types
# ---------------------------------------------------------------------------------------------

Annotations = tuple[tuple[str, str], ...]
"""Annotations as sorted ``(key, value)`` pairs (hashable, unlike a dict)."""


def annotations_from(mapping: Mapping[str, str] | None) -> Annotations:
    """Turn a Kubernetes annotation mapping into the sorted pairs the model stores."""
    return tuple(sorted((mapping or {}).items()))


def annotation(pairs: Annotations, key: str) -> str | None:
    """The value of ``key`` in ``pairs``, or ``None`` when absent."""
    for candidate, value in pairs:
        if candidate == key:
            return value
    return None


@dataclass(frozen=True, slots=True, order=True)
class ObjectRef:
    """A namespaced Kubernetes object (a Service or a Pod)."""

    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


class Protocol(StrEnum):
    """A Service port's protocol, as Kubernetes spells it."""

    TCP = "TCP"
    UDP = "UDP"
    SCTP = "SCTP"


class ConditionStatus(StrEnum):
    """A Node condition's status, as Kubernetes spells it."""

    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


# ---------------------------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ServicePort:
    port: int
    protocol: Protocol = Protocol.TCP


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One address of an EndpointSlice belonging to the Service."""

    node_name: str | None
    """``endpoint.nodeName``; an endpoint without one cannot make a node fit."""
    ready: bool
    """``conditions.ready`` (a missing condition counts as ready, as Kubernetes says)."""
    serving: bool = True
    terminating: bool = False
    pod: ObjectRef | None = None
    """``targetRef`` when it is a Pod; used to read the anchor IP the Pod carries."""
    address: str = ""


class IPMode(StrEnum):
    """``status.loadBalancer.ingress[].ipMode`` (KEP-1860), as Kubernetes spells it."""

    VIP = "VIP"
    """Delivered with the destination still the ingress IP: proxies program it."""
    PROXY = "Proxy"
    """Delivered to the node or pod: proxies skip it."""


@dataclass(frozen=True, slots=True)
class Ingress:
    """One ``status.loadBalancer.ingress`` entry (an IP one; hostnames are not ours)."""

    ip: str
    ip_mode: IPMode | None = None
    """``None``: unset, which kube-proxy and Cilium treat as ``VIP``."""


LOAD_BALANCER = "LoadBalancer"
"""``spec.type`` of a LoadBalancer Service."""


@dataclass(frozen=True, slots=True)
class Service:
    """A Service as the core needs it. Only Services with ``contract.ADDRESS`` are managed."""

    namespace: str
    name: str
    uid: str
    annotations: Annotations = ()
    """ALL of the Service's annotations (inputs and the status ones this project writes)."""
    ports: tuple[ServicePort, ...] = ()
    external_ips: tuple[str, ...] = ()
    """``spec.externalIPs`` as it is now, in order."""
    type: str = "ClusterIP"
    """``spec.type``."""
    load_balancer_class: str | None = None
    """``spec.loadBalancerClass``; ``contract.LOAD_BALANCER_CLASS`` selects status mode."""
    ingress: tuple[Ingress, ...] = ()
    """``status.loadBalancer.ingress`` entries that carry an IP, in order."""
    source_ranges: tuple[str, ...] = ()
    """``spec.loadBalancerSourceRanges``: kube-proxy and Cilium enforce them for ingress IPs."""
    external_traffic_policy: str = "Cluster"
    """``spec.externalTrafficPolicy`` (absent: ``Cluster``; a ClusterIP Service has none)."""
    endpoints: tuple[Endpoint, ...] = ()
    """Every endpoint of every EndpointSlice labelled with this Service's name."""
    resource_version: str = ""
    creation_timestamp: str = ""
    """RFC 3339 (``2025-01-31T12:00:00Z``); the older Service wins an IP conflict."""
    finalizers: tuple[str, ...] = ()
    """``metadata.finalizers``, in order."""
    deleting: bool = False
    """``metadata.deletionTimestamp`` is set: the Service is only cleaned up, never placed."""

    @property
    def ref(self) -> ObjectRef:
        return ObjectRef(self.namespace, self.name)

    def annotation(self, key: str) -> str | None:
        return annotation(self.annotations, key)


@dataclass(frozen=True, slots=True)
class Pod:
    """A Pod an endpoint targets; only its placement and anchor annotation matter."""

    namespace: str
    name: str
    node_name: str | None = None
    anchor_ipv4: str | None = None
    """``contract.ANCHOR_IPV4`` on the Pod (init-container mode), if present."""

    @property
    def ref(self) -> ObjectRef:
        return ObjectRef(self.namespace, self.name)


@dataclass(frozen=True, slots=True)
class Taint:
    key: str
    effect: str
    """``NoSchedule``, ``PreferNoSchedule`` or ``NoExecute``."""
    value: str = ""


@dataclass(frozen=True, slots=True)
class Suspicion:
    """The event forwarder's leader suspects the node is dead (it publishes this)."""

    probe: str
    """Which probe failed: ``tcp`` (its endpoints refused or timed out) or ``lease`` (its
    kubelet stopped renewing its Lease)."""
    since: str
    """RFC 3339 UTC, when the suspicion began."""
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Node:
    name: str
    droplet_id: int | None = None
    """From ``spec.providerID`` (``digitalocean://<id>``); ``None`` when absent or malformed."""
    ready: ConditionStatus = ConditionStatus.UNKNOWN
    """The ``Ready`` condition; a Node without one is ``Unknown``."""
    unschedulable: bool = False
    """``spec.unschedulable`` (cordoned)."""
    deleting: bool = False
    """``metadata.deletionTimestamp`` is set."""
    taints: tuple[Taint, ...] = ()
    region: str | None = None
    """``topology.kubernetes.io/region``; ``None`` means the cluster's region."""
    anchor_ipv4: str | None = None
    """``contract.ANCHOR_IPV4`` on the Node (DaemonSet mode), if present."""
    suspicion: Suspicion | None = None
    """Set while the forwarder suspects the node is dead, before Kubernetes notices."""
    labels: Annotations = ()
    """The Node's labels, as sorted pairs: what a Service's node selector matches."""
    kubelet_version: str | None = None
    """``status.nodeInfo.kubeletVersion``: during a node-pool upgrade, the new nodes' is newer."""


@dataclass(frozen=True, slots=True)
class ReservedIP:
    """A reserved IP that exists in the DigitalOcean account.

    A Service's address that is absent from ``Observation.reserved_ips`` is "not in the
    account": the adapter leaves out every address whose lookup answered 404.
    """

    ip: str
    region: str
    droplet_id: int | None = None
    locked: bool = False
    """Pending actions: DigitalOcean refuses new ones, so the core plans none for this IP."""


@dataclass(frozen=True, slots=True)
class Sources:
    """A firewall rule's ``sources`` (inbound) or ``destinations`` (outbound)."""

    addresses: tuple[str, ...] = ()
    droplet_ids: tuple[int, ...] = ()
    load_balancer_uids: tuple[str, ...] = ()
    kubernetes_ids: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class FirewallRule:
    """One firewall rule as the API returns or accepts it (``ports`` is a string)."""

    protocol: str
    """``tcp``, ``udp`` or ``icmp``."""
    ports: str
    """``"443"``, ``"8000-9000"``, ``"0"`` (all); the API may also answer ``"all"``."""
    sources: Sources = field(default_factory=Sources)
    """``sources`` for inbound rules, ``destinations`` for outbound ones."""


@dataclass(frozen=True, slots=True)
class Firewall:
    """The project's own firewall as it exists now (found by name)."""

    id: str
    name: str
    inbound_rules: tuple[FirewallRule, ...] = ()
    outbound_rules: tuple[FirewallRule, ...] = ()
    tags: tuple[str, ...] = ()
    droplet_ids: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class Cluster:
    """The cluster the function manages: its id and its region."""

    cluster_id: str
    region: str
    """The cluster's region slug (``ams3``); a Node without a region label is in it."""

    unassign_unclaimed: bool = False
    """Unassign a reserved IP on a node of this cluster that no Service names any more (off
    by default: the IP may serve something this function does not know about)."""

    @property
    def firewall_name(self) -> str:
        return contract.FIREWALL_NAME_PREFIX + self.cluster_id

    @property
    def cluster_tag(self) -> str:
        return contract.CLUSTER_TAG_PREFIX + self.cluster_id


@dataclass(frozen=True, slots=True)
class Observation:
    """Everything the core decides from. The core always plans the whole observation."""

    cluster: Cluster
    services: tuple[Service, ...] = ()
    """Every Service the adapter saw (managed or not; the core ignores the unmanaged)."""
    nodes: tuple[Node, ...] = ()
    pods: tuple[Pod, ...] = ()
    """The Pods the managed Services' endpoints target (others are harmless)."""
    reserved_ips: tuple[ReservedIP, ...] = ()
    """Every reserved IP of the account: those the Services name, and the others too, so a
    droplet that already holds one (one per droplet) is never chosen for another."""
    firewall: Firewall | None = None
    """The firewall named ``cluster.firewall_name``, or ``None`` when it does not exist."""


# ---------------------------------------------------------------------------------------------
# Outputs
# ---------------------------------------------------------------------------------------------


class EventType(StrEnum):
    NORMAL = "Normal"
    WARNING = "Warning"


class Reason(StrEnum):
    """Kubernetes Event reasons (and report problem codes)."""

    IP_ASSIGNED = "IPAssigned"
    IP_MOVED = "IPMoved"
    FIREWALL_UPDATED = "FirewallUpdated"
    INVALID_ANNOTATION = "InvalidAnnotation"
    IP_NOT_IN_ACCOUNT = "IPNotInAccount"
    WRONG_REGION = "WrongRegion"
    IP_CONFLICT = "IPConflict"
    NO_FIT_NODE = "NoFitNode"
    MISSING_ANCHOR_IP = "MissingAnchorIP"
    FIREWALL_LIMIT = "FirewallLimit"
    UNSUPPORTED_PROTOCOL = "UnsupportedProtocol"
    CLEANED_UP = "CleanedUp"
    CHANGE_FAILED = "ChangeFailed"
    UNREACHABLE = "Unreachable"
    WRONG_LOAD_BALANCER_CLASS = "WrongLoadBalancerClass"
    FIREWALL_WIDENED = "FirewallWidenedByDigitalOcean"
    CLIENT_ADDRESS_MASQUERADED = "ClientAddressMasqueraded"
    CLEANUP_FAILED = "CleanupFailed"
    IP_NOT_CREATED = "ReservedIPNotCreated"
    IP_CREATED = "ReservedIPCreated"
    IP_RELEASED = "ReservedIPReleased"


class Unfit(StrEnum):
    """Why a node may not hold a Service's reserved IP (one node may have several)."""

    NOT_READY = "NotReady"
    CORDONED = "Cordoned"
    DELETING = "Deleting"
    TAINTED = "Tainted"
    NO_READY_ENDPOINT = "NoReadyEndpoint"
    NO_DROPLET = "NoDropletID"
    WRONG_REGION = "WrongRegion"
    NO_ANCHOR_IP = "NoAnchorIP"
    UNREACHABLE = "Unreachable"
    """The forwarder suspects the node is dead (probes failed or its Lease went stale)."""
    OUTSIDE_NODE_SELECTOR = "OutsideNodeSelector"
    """A Service sharing the IP names a node selector this node's labels do not match."""


@dataclass(frozen=True, slots=True)
class ServicePatch:
    """A merge patch of one Service: only the fields that are not ``None`` change."""

    service: ObjectRef
    uid: str
    resource_version: str = ""
    """Precondition for the write; ``""`` when the patch follows another patch of the same
    Service in this plan (use the version that patch returned, or none)."""
    external_ips: tuple[str, ...] | None = None
    """The complete new ``spec.externalIPs`` (``None``: leave as is)."""
    annotations: tuple[tuple[str, str | None], ...] = ()
    """Status annotations to set; a ``None`` value removes the annotation."""
    ingress: tuple[Ingress, ...] | None = None
    """The complete new ``status.loadBalancer.ingress`` (``None``: leave as is), written
    through the ``services/status`` subresource."""
    after_ip: str | None = None
    """Apply only once the assignment of this reserved IP (in the same plan) has completed."""
    finalizers: tuple[str, ...] | None = None
    """The complete new ``metadata.finalizers`` (``None``: leave as is)."""


@dataclass(frozen=True, slots=True)
class Assignment:
    """Assign ``ip`` to ``droplet_id`` (DigitalOcean moves it from its current droplet)."""

    ip: str
    droplet_id: int
    node_name: str
    from_droplet_id: int | None = None


@dataclass(frozen=True, slots=True)
class Allocation:
    """Create a reserved IP for an ``address: auto`` Service, on a fit droplet of its region.

    The apply step first records ``contract.ALLOCATION`` (``droplet <id>; existing: <ips>``)
    on the Service, then creates the IP already assigned to that droplet, then records
    ``contract.OWNED_ADDRESS``; a crash in between leaves the IP where the next run adopts it
    (on the droplet, or unassigned and not among ``existing`` once the droplet is gone).
    """

    service: ObjectRef
    uid: str
    resource_version: str
    droplet_id: int
    node_name: str
    existing: tuple[str, ...]
    """The region's reserved IPs before the create call, sorted: none of them is the new one."""
    marked: bool = False
    """The Service already carries this allocation's marker (a relayed run may create)."""


@dataclass(frozen=True, slots=True)
class Release:
    """Give back a reserved IP the function created for a Service that is deleted or no
    longer asks for it: unassign it, delete it, then forget it on the Service."""

    service: ObjectRef
    uid: str
    ip: str
    unassign_from: int | None
    """The droplet holding it now (``None``: unassigned)."""
    delete: bool
    """``False`` when it is gone already, or another Service names it (never released)."""
    forget: ServicePatch | None
    """Removes the record from the Service (``None`` for a Service being deleted)."""


@dataclass(frozen=True, slots=True)
class Unclaimed:
    """A reserved IP on a node of this cluster that no Service names."""

    ip: str
    droplet_id: int
    node_name: str
    unassign: bool
    """Whether this plan unassigns it (``Cluster.unassign_unclaimed``)."""

    @property
    def message(self) -> str:
        where = f"reserved IP {self.ip} on node {self.node_name} (droplet {self.droplet_id})"
        if self.unassign:
            return f"{where} is named by no Service: unassigning it"
        return (
            f"{where} is named by no Service: left assigned "
            "(UNASSIGN_UNCLAIMED=true releases such IPs)"
        )


class FirewallAction(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"


@dataclass(frozen=True, slots=True)
class FirewallBody:
    """The complete firewall as a create or full-replace (PUT) request sends it."""

    name: str
    inbound_rules: tuple[FirewallRule, ...]
    outbound_rules: tuple[FirewallRule, ...] = ()
    tags: tuple[str, ...] = ()
    droplet_ids: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class FirewallChange:
    action: FirewallAction
    firewall_id: str | None = None
    """``None`` for a create."""
    body: FirewallBody | None = None
    """``None`` for a delete."""


@dataclass(frozen=True, slots=True)
class Event:
    """A Kubernetes Event about a Service."""

    service: ObjectRef
    uid: str
    type: EventType
    reason: Reason
    message: str
    after_ip: str | None = None
    """Emit only once the assignment of this reserved IP (in the same plan) has completed."""


@dataclass(frozen=True, slots=True)
class NodeVerdict:
    node_name: str
    reasons: tuple[Unfit, ...]
    """Empty when the node is fit."""
    suspicion: Suspicion | None = None
    """Why it is ``Unreachable``, when it is."""


@dataclass(frozen=True, slots=True)
class Problem:
    reason: Reason
    message: str


@dataclass(frozen=True, slots=True)
class ServiceReport:
    """What the core decided for one managed Service, for logs and the JSON report."""

    service: ObjectRef
    address: str | None
    holder_node: str | None
    holder_droplet: int | None
    anchor_ip: str | None
    status: str
    """The one-line sentence written to ``contract.STATUS``."""
    nodes: tuple[NodeVerdict, ...] = ()
    problems: tuple[Problem, ...] = ()
    uid: str = ""
    """The Service's uid, for a Warning about a change that could not be made."""


@dataclass(frozen=True, slots=True)
class Plan:
    """What to do, in the order the apply step must do it.

    0. ``finalizers_added`` (``contract.FINALIZER`` on every opted-in Service, before any
       cloud write for it), then ``allocations`` (reserved IPs created for ``address: auto``
       Services that have none);
    1. ``firewall`` (ports open before traffic can arrive);
    2. ``before_assign`` patches (add the new holder's anchor IP, keep the old one:
       make-before-break);
    3. ``assignments``, each waited for until its action completes;
    4. ``after_assign`` patches (drop old anchors, write status); a patch with ``after_ip``
       is skipped when that assignment failed, so the old anchor stays until a later run;
    5. ``events``;
    6. ``unassignments``: unclaimed IPs released (only when the user opted in), then
       ``releases``: the IPs the function created and no Service asks for any more;
    7. ``finalizers_removed``: of deleted or opted-out Services, only when every cloud write
       above succeeded (their cleanup is done), else a ``CleanupFailed`` Warning.

    ``after_assign`` also holds the clean-up patches of Services that opted out.
    """

    finalizers_added: tuple[ServicePatch, ...] = ()
    allocations: tuple[Allocation, ...] = ()
    firewall: FirewallChange | None = None
    before_assign: tuple[ServicePatch, ...] = ()
    assignments: tuple[Assignment, ...] = ()
    after_assign: tuple[ServicePatch, ...] = ()
    events: tuple[Event, ...] = ()
    reports: tuple[ServiceReport, ...] = ()
    unclaimed: tuple[Unclaimed, ...] = ()
    """Every unclaimed IP, released or not (for the log line either way)."""
    releases: tuple[Release, ...] = ()
    finalizers_removed: tuple[ServicePatch, ...] = ()

    @property
    def unassignments(self) -> tuple[Unclaimed, ...]:
        return tuple(ip for ip in self.unclaimed if ip.unassign)

    @property
    def is_empty(self) -> bool:
        """True when nothing is to be written (reports do not count)."""
        return not (
            self.finalizers_added
            or self.finalizers_removed
            or self.allocations
            or self.releases
            or self.firewall
            or self.before_assign
            or self.assignments
            or self.after_assign
            or self.events
            or self.unassignments
        )
