"""Names shared by every part of the project: annotations, CloudEvent types, headers.

The function, the event forwarder and the annotator all import this module, so it must stay
dependency-free (standard library only) and import nothing else from this project.
"""

from typing import Final

PREFIX: Final = "floating-ip.doks.dev/"

# --- Service annotations the user writes (inputs) ---
ADDRESS: Final = PREFIX + "address"
"""Required to opt in: the reserved IPv4 this Service should be reachable on, or ``AUTO``."""
AUTO: Final = "auto"
"""``ADDRESS`` value: create a reserved IP for this Service, and release it with the Service."""
FIREWALL: Final = PREFIX + "firewall"
"""``"true"`` (default) or ``"false"``: open the Service's ports in the project's firewall."""
FIREWALL_SOURCES: Final = PREFIX + "firewall-sources"
"""Comma-separated CIDRs allowed in; default ``0.0.0.0/0,::/0``."""
DEFAULT_FIREWALL_SOURCES: Final = ("0.0.0.0/0", "::/0")
NODE_SELECTOR: Final = PREFIX + "node-selector"
"""A label selector (``kubectl -l`` syntax) of the nodes that may hold the IP; default: all."""

INPUT_ANNOTATIONS: Final = (ADDRESS, FIREWALL, FIREWALL_SOURCES, NODE_SELECTOR)

# --- LoadBalancer-class mode ---
LOAD_BALANCER_CLASS: Final = PREFIX + "reserved-ip"
"""``spec.loadBalancerClass`` of a ``type: LoadBalancer`` Service whose reserved IP this project
publishes in ``status.loadBalancer.ingress`` instead of listing the anchor in
``spec.externalIPs``. Stable: the API server makes a Service's class immutable."""
EXTERNAL_DNS_TARGET: Final = "external-dns.alpha.kubernetes.io/target"
"""external-dns publishes every ingress IP unless this says otherwise: in LoadBalancer-class
mode the function sets it to the reserved IP (when absent) so the private anchor is never
published, and removes it again only while it still names the Service's reserved IP."""

# --- Service annotations the function writes (status; never read as input) ---
HOLDER_NODE: Final = PREFIX + "holder-node"
HOLDER_DROPLET: Final = PREFIX + "holder-droplet"
ANCHOR_IP: Final = PREFIX + "anchor-ip"
STATUS: Final = PREFIX + "status"

WRITTEN: Final = PREFIX + "written"
"""What the function wrote on the Service besides its annotations, as JSON:
``{"externalIPs": ["10.110.0.5"]}`` (and ``"ingress"`` for ``status.loadBalancer.ingress``
entries). Once the Service opts out, exactly these entries and our annotations are removed."""

OWNED_ADDRESS: Final = PREFIX + "owned-address"
"""The reserved IP the function created for this Service (``address: auto``): released
(unassigned and deleted) once the Service is deleted or stops asking for it."""
ALLOCATION: Final = PREFIX + "allocation"
"""A creation in flight, written before the create call (``droplet <id>; existing: <ips>``:
the droplet the new IP is created on, so a run after a crash finds it there and adopts it,
and the region's reserved IPs before the call, so one its droplet lost is still told from
the user's), or refused (``refused (limit): <DigitalOcean's answer>``, ``refused (token): …``
or ``refused: …``: no new attempt until the annotation is removed)."""
KEPT_UNTIL_RELEASED: Final = (OWNED_ADDRESS, ALLOCATION)
"""Status annotations an opt-out does not remove: they go once the IP is released."""

STATUS_ANNOTATIONS: Final = (
    HOLDER_NODE,
    HOLDER_DROPLET,
    ANCHOR_IP,
    STATUS,
    WRITTEN,
    OWNED_ADDRESS,
    ALLOCATION,
)

# --- The finalizer the function puts on every opted-in Service ---
FINALIZER: Final = PREFIX + "cleanup"
"""Added before the function's first cloud write for a Service, removed only once that
Service's cleanup is done (its firewall rules closed), so a Service deleted while the
function is down is still cleaned up later. The cloud provider's
``service.kubernetes.io/load-balancer-cleanup`` skips Services of a foreign class."""

# --- Pod / Node annotations the annotator writes ---
ANCHOR_IPV4: Final = PREFIX + "anchor-ipv4"
"""The droplet's anchor IPv4, on a Pod (init-container mode) or a Node (DaemonSet mode)."""
DROPLET_ID: Final = PREFIX + "droplet-id"

# --- CloudEvents ---
EVENT_SERVICE_CHANGED: Final = "dev.doks.floating-ip.service.changed"
"""Subject ``<namespace>/<name>``: look at this Service (and whatever shares its IP)."""
EVENT_RESYNC: Final = "dev.doks.floating-ip.resync"
"""Look at every annotated Service."""
EVENT_SOURCE: Final = "/doks-floating-ip/event-forwarder"
EVENT_SCHEMA_ATTRIBUTE: Final = "schemaversion"
"""CloudEvents extension attribute: the version of what the events mean (their types, subject
and attributes). An event without it is version 1 (every release before it)."""
EVENT_SCHEMA_VERSION: Final = 2
"""What this release's forwarder sends."""
ACCEPTED_EVENT_SCHEMAS: Final = (1, 2)
"""What this release's function accepts: the current version and the previous one, so the
forwarder and the function can be upgraded in either order."""
UNSUPPORTED_SCHEMA_STATUS: Final = 422
"""The function's answer to an event of a version it does not accept."""

# --- HTTP ---
AUTH_HEADER: Final = "X-Require-Whisk-Auth"
"""The shared secret DigitalOcean Functions checks for ``webSecure`` functions."""
KUBE_TOKEN_HEADER: Final = "X-Floating-Ip-Kube-Token"  # noqa: S105 (a header name)
"""A short-lived token of the function's ServiceAccount, minted by the forwarder (TokenRequest)
and sent with each event: the function's only Kubernetes credential in callback mode. A header,
not a CloudEvent extension attribute: it authenticates the call, like ``AUTH_HEADER``, and is
no part of the event (tools that store or print events never see it)."""
KUBE_TOKEN_SECONDS: Final = 600
"""The token's lifetime: the shortest the TokenRequest API allows."""
FUNCTION_ACCOUNT: Final = "floating-ip-function"
"""The function's ServiceAccount (in the forwarder's namespace) that the forwarder mints for."""

# --- Kubernetes objects ---
SERVICE_NAME_LABEL: Final = "kubernetes.io/service-name"
REGION_LABEL: Final = "topology.kubernetes.io/region"
"""A Node's region; a Node without it is in the cluster's region."""
PROVIDER_ID_PREFIX: Final = "digitalocean://"
CLUSTER_TAG_PREFIX: Final = "k8s:"
FIREWALL_NAME_PREFIX: Final = "floating-ip-"
"""The project's own firewall is named ``floating-ip-<cluster-id>``."""

# --- Node suspicion (forwarder writes, function reads) ---
SUSPICIONS_NAMESPACE: Final = "floating-ip"
"""The namespace the forwarder runs in (the shipped manifests' namespace)."""
SUSPICIONS_CONFIGMAP: Final = "floating-ip-suspicions"
"""One ConfigMap the forwarder's leader owns: one key per suspected node (its name), each a
JSON object ``{"probe": "tcp"|"lease", "since": RFC 3339 UTC, "detail": text}``."""
NODE_EVENTS_NAMESPACE: Final = "default"
"""Where the forwarder's Warnings about Nodes are (an Event about a cluster-scoped object
without ``eventTime`` is accepted only here); the doctor checks the right to write them."""
OBSERVATIONS_CONFIGMAP: Final = "floating-ip-observations"
"""The forwarder's replicas tell each other what their probes see, in its namespace: one key
per replica (its pod name), ``{"node": its node, "failing": [nodes], "cutOff": bool, "at":
RFC 3339 UTC}``. The leader suspects a node by TCP only when another replica confirms it."""
NODE_LEASE_NAMESPACE: Final = "kube-node-lease"
