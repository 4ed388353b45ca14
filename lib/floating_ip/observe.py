"""Observe: read the current state from Kubernetes and DigitalOcean into an ``Observation``.

Reads only, each retried inside the deadline. Which objects are read is decided here so that
an idle resync costs a fixed, small number of calls and a big cluster costs little more than a
small one: Services (paged, unannotated ones dropped page by page); EndpointSlices of the
annotated Services only and Pods only in the namespaces that hold annotated Services (no Pod
of any other namespace is read); Nodes once; reserved IPs and firewalls once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Protocol, TypeVar

from floating_ip import translate
from floating_ip.adapters.digitalocean import DigitalOcean
from floating_ip.adapters.kubernetes import JSON, KubernetesApi
from floating_ip.config import Config
from floating_ip.core.model import Cluster, Firewall, Node, Observation, ReservedIP, Suspicion
from floating_ip.deadline import Deadline
from floating_ip.retry import with_retries
from floating_ip_common import contract

T = TypeVar("T")

log = logging.getLogger("floating_ip")

_regions: dict[str, str] = {}
"""A cluster's region never changes: remembered for the life of a warm function instance."""


def observe(
    config: Config, kube: KubernetesApi, do: DigitalOcean, deadline: Deadline
) -> Observation:
    def read(what: str, call: Callable[[], T]) -> T:
        return with_retries(call, deadline, what)

    # Every read is a round trip to an API server: what does not depend on the Services runs
    # beside them, so an invocation waits for the longer of two lanes, not for every call.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="observe") as lane:
        beside = lane.submit(_independent_of_services, config, kube, do, read)
        raw_services = _services_of_ours(config, kube, read)
        names_by_namespace: dict[str, list[str]] = {}
        for service in filter(translate.is_managed, raw_services):
            meta = service["metadata"]
            names_by_namespace.setdefault(meta["namespace"], []).append(meta["name"])
        raw_slices: list[JSON] = []
        raw_pods: list[JSON] = []
        for namespace, names in sorted(names_by_namespace.items()):
            raw_slices += read(
                "list endpointslices", partial(kube.list_endpoint_slices, namespace, names)
            )
            raw_pods += read("list pods", partial(kube.list_pods, namespace))
        rest = beside.result()
    return Observation(
        cluster=rest.cluster,
        services=translate.services(raw_services, raw_slices),
        nodes=rest.nodes,
        pods=tuple(translate.pod(p) for p in raw_pods),
        reserved_ips=rest.reserved_ips,
        firewall=rest.firewall,
    )


@dataclass(frozen=True)
class _Rest:
    """What ``observe`` reads beside the Services."""

    cluster: Cluster
    nodes: tuple[Node, ...]
    reserved_ips: tuple[ReservedIP, ...]
    firewall: Firewall | None


class _Read(Protocol):
    def __call__(self, what: str, call: Callable[[], T]) -> T: ...


def _independent_of_services(
    config: Config, kube: KubernetesApi, do: DigitalOcean, read: _Read
) -> _Rest:
    raw_nodes = read("list nodes", kube.list_nodes)
    suspected = read("read suspicions", partial(_suspicions, kube))
    raw_ips = read("list reserved IPs", do.reserved_ips)
    cluster = Cluster(
        config.cluster_id,
        _region(config.cluster_id, do, read),
        unassign_unclaimed=config.unassign_unclaimed,
    )
    ours = [
        f for f in read("list firewalls", do.firewalls) if f.get("name") == cluster.firewall_name
    ]
    return _Rest(
        cluster=cluster,
        nodes=translate.with_suspicions((translate.node(n) for n in raw_nodes), suspected),
        reserved_ips=tuple(translate.reserved_ip(ip) for ip in raw_ips),
        firewall=translate.firewall(ours[0]) if ours else None,
    )


def _services_of_ours(
    config: Config, kube: KubernetesApi, read: Callable[[str, Callable[[], list[JSON]]], list[JSON]]
) -> list[JSON]:
    scopes: list[str | None] = list(config.namespaces) or [None]
    found: list[JSON] = []
    for scope in scopes:
        # Opted-in Services, and opted-out ones that still carry what we wrote (to be
        # cleaned; the core never places those, and their endpoints are not read).
        found += read("list services", partial(kube.list_services, scope, translate.is_ours))
    return found


def _region(
    cluster_id: str, do: DigitalOcean, read: Callable[[str, Callable[[], JSON]], JSON]
) -> str:
    if cluster_id not in _regions:
        cluster = read("get cluster", lambda: do.cluster(cluster_id))
        _regions[cluster_id] = str(cluster.get("region", ""))
    return _regions[cluster_id]


def _suspicions(kube: KubernetesApi) -> dict[str, Suspicion]:
    """The nodes the forwarder suspects are dead, read on every run (so a resync or a new
    forwarder never puts an IP back on one)."""
    data = kube.read_config_map_data(contract.SUSPICIONS_NAMESPACE, contract.SUSPICIONS_CONFIGMAP)
    if data is None:
        log.warning(
            "cannot read the forwarder's suspicions (ConfigMap %s/%s): forbidden; apply the "
            "shipped RBAC so dead nodes are left within seconds",
            contract.SUSPICIONS_NAMESPACE,
            contract.SUSPICIONS_CONFIGMAP,
        )
        return {}
    return translate.suspicions(data)
