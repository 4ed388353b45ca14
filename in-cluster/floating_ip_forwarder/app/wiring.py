"""Wiring and lifecycle: watchers feed the index, the index names Services, the dispatcher
sends while this replica holds the Lease; SIGTERM stops it all cleanly."""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable, Iterable
from types import FrameType
from urllib.parse import urlsplit

from floating_ip_common import contract
from floating_ip_common.kube_client import KubeClient
from floating_ip_forwarder.app.settings import ForwarderSettings
from floating_ip_forwarder.dead_nodes.kubelet_leases import NodeLeaseClock
from floating_ip_forwarder.dead_nodes.monitor import Monitor, ProbeSettings
from floating_ip_forwarder.dead_nodes.node_events import NodeEvents
from floating_ip_forwarder.dead_nodes.observations import (
    ObservationBoard,
    ObservationWatch,
    PeerBook,
)
from floating_ip_forwarder.dead_nodes.suspicion import Limits
from floating_ip_forwarder.dead_nodes.suspicions_configmap import Board
from floating_ip_forwarder.election.lease_keeper import LeaseKeeper
from floating_ip_forwarder.forwarding import cloudevent, watched_kinds
from floating_ip_forwarder.forwarding.coalescer import Coalescer
from floating_ip_forwarder.forwarding.dispatcher import Dispatcher
from floating_ip_forwarder.forwarding.function_token import FunctionToken
from floating_ip_forwarder.forwarding.index import ClusterIndex
from floating_ip_forwarder.forwarding.projections import Kind, NodeLeaseView, ServiceKey, View
from floating_ip_forwarder.forwarding.relay import Relay
from floating_ip_forwarder.forwarding.sender import Sender, function_context
from floating_ip_forwarder.forwarding.watched_kinds import Resource
from floating_ip_forwarder.forwarding.watcher import Watcher
from floating_ip_forwarder.ops.http_server import OpsServer
from floating_ip_forwarder.ops.metrics import ForwarderMetrics

# Probes reach the pod on its own IP, so the ops port listens on every interface.
OPS_ADDRESS = "0.0.0.0"  # noqa: S104
SHUTDOWN_SECONDS = 5.0

USER_AGENT = "doks-floating-ip-event-forwarder"

log = logging.getLogger(__name__)


class Forwarding:
    """The watchers' sink: apply each change to the index, hand affected Services on.

    Kubelet Leases only set the clock of when each last changed (for suspicion)."""

    def __init__(
        self,
        index: ClusterIndex,
        dispatcher: Dispatcher,
        metrics: ForwarderMetrics,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.index = index
        self.leases = NodeLeaseClock()
        self.dispatcher = dispatcher
        self.metrics = metrics
        self.clock = clock
        self.lock = threading.Lock()

    def listed(
        self, resource: Resource, namespace: str | None, views: list[View], initial: bool
    ) -> None:
        if resource.kind is Kind.NODE_LEASE:
            with self.lock:
                self.leases.relisted(_leases(views), self.clock())
            return
        with self.lock:
            affected, changes = self.index.replace(
                resource.kind, namespace, [v for v in views if not isinstance(v, NodeLeaseView)]
            )
            self.metrics.index_objects.set(sum(self.index.size().values()))
        # The first list only fills the index: leadership begins with a resync, which covers
        # whatever the objects looked like before.
        if not initial and affected:
            self.metrics.changes.inc(changes, kind=resource.kind.value)
            self.dispatcher.touch(_subjects(affected))

    def changed(self, resource: Resource, event_type: str, view: View) -> None:
        self.metrics.watch_events.inc(kind=resource.kind.value)
        if isinstance(view, NodeLeaseView):
            with self.lock:
                if event_type == "DELETED":
                    self.leases.forget(view.key)
                else:
                    self.leases.saw(view, self.clock())
            return
        with self.lock:
            if event_type == "DELETED":
                affected = self.index.remove(resource.kind, view.key)
            else:
                affected = self.index.upsert(view)
        if affected:
            self.metrics.changes.inc(kind=resource.kind.value)
            log.debug(
                "change",
                extra={"kind": resource.kind.value, "services": sorted(_subjects(affected))},
            )
            self.dispatcher.touch(_subjects(affected))


def _leases(views: Iterable[View]) -> list[NodeLeaseView]:
    return [v for v in views if isinstance(v, NodeLeaseView)]


def _subjects(keys: Iterable[ServiceKey]) -> list[str]:
    return [cloudevent.subject_of(namespace, name) for namespace, name in keys]


def run(settings: ForwarderSettings) -> int:
    stopping = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("stopping", extra={"signal": signal.Signals(signum).name})
        stopping.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    metrics = ForwarderMetrics()
    client = KubeClient(settings.kube, user_agent=USER_AGENT)
    context = function_context(settings.function_ca_file)
    relayed = settings.cluster_access == "relay"
    # Relay mode: the function never calls the cluster, so no token of it is minted.
    token = None
    if not relayed:
        token = FunctionToken(
            client,
            settings.lease_namespace,
            settings.function_account,
            on_mint=metrics.token_mints.inc,
        )
    senders = [
        Sender(
            settings.function_url,
            settings.web_secret,
            context,
            settings.function_timeout,
            token=token,
            relay=Relay(client.connection(), settings.namespaces) if relayed else None,
        )
        for _ in range(settings.max_in_flight)
    ]
    coalescer = Coalescer(
        quiet=settings.quiet_window,
        ceiling=settings.max_delay,
        rate=settings.rate_per_minute / 60.0,
        burst=settings.burst,
        resync_key=cloudevent.RESYNC_KEY,
        collapse_at=settings.resync_threshold,
        now=time.monotonic(),
    )
    dispatcher = Dispatcher(
        coalescer,
        senders,
        cluster_id=settings.cluster_id,
        resync_period=settings.resync_period,
        metrics=metrics,
    )
    forwarding = Forwarding(ClusterIndex(), dispatcher, metrics)
    watchers = [
        Watcher(
            client,
            resource,
            namespace=namespace,
            sink=forwarding,
            metrics=metrics,
            stopping=stopping,
        )
        for resource, namespace in watched_kinds.streams(settings.namespaces)
    ]
    # Not among ``watchers``: without it (no RBAC for Leases yet) only suspicion by Lease
    # is lost, so neither readiness nor the election waits for it.
    lease_watcher = Watcher(
        client,
        watched_kinds.NODE_LEASES,
        namespace=contract.NODE_LEASE_NAMESPACE,
        sink=forwarding,
        metrics=metrics,
        stopping=stopping,
    )
    monitor = _dead_nodes(settings, client, forwarding, dispatcher.touch, metrics, stopping)

    def on_leadership(leading: bool) -> None:
        dispatcher.set_leading(leading)
        monitor.set_leading(leading)

    lease = LeaseKeeper(
        client,
        namespace=settings.lease_namespace,
        name=settings.lease_name,
        identity=settings.identity,
        on_change=on_leadership,
        stopping=stopping,
    )

    def synced() -> bool:
        return all(w.synced.is_set() for w in watchers)

    def healthy() -> bool:
        threads = [w.thread for w in (*watchers, lease_watcher)] + monitor.threads()
        if lease.thread.ident is not None:
            threads.append(lease.thread)
        return dispatcher.alive() and all(t.is_alive() for t in threads)

    ops = OpsServer(
        OPS_ADDRESS, settings.http_port, healthy=healthy, ready=synced, metrics=metrics.render
    )
    _log_start(settings)
    ops.start()
    dispatcher.start()
    for watcher in watchers:
        watcher.start()
    lease_watcher.start()
    monitor.start()
    # Campaign only once every list is in: the first resync must not precede what the index
    # will treat as already known.
    while not stopping.wait(0.05):
        if synced():
            log.info("synced", extra=forwarding.index.size())
            lease.start()
            break
    stopping.wait()

    for stop in [w.stop for w in (*watchers, lease_watcher)] + [monitor.stop]:
        stop()
    dispatcher.stop(SHUTDOWN_SECONDS)
    if lease.thread.ident is not None:
        lease.release()
    ops.stop()
    if token is not None:
        token.close()
    log.info("stopped")
    return 0


def _dead_nodes(  # noqa: PLR0917 - the parts it joins
    settings: ForwarderSettings,
    client: KubeClient,
    forwarding: Forwarding,
    touch: Callable[[list[str]], None],
    metrics: ForwarderMetrics,
    stopping: threading.Event,
) -> Monitor:
    """The probe loop, with the watch of the other replicas' observations that feeds it."""
    monitor = Monitor(
        settings=ProbeSettings(
            tcp=settings.node_probes,
            period=settings.probe_period,
            timeout=settings.probe_timeout,
            limits=Limits(
                settings.probe_failures,
                settings.node_lease_stale,
                settings.hold_down,
                settings.confirm_wait,
            ),
        ),
        index=forwarding.index,
        leases=forwarding.leases,
        lock=forwarding.lock,
        board=Board(client, settings.lease_namespace, contract.SUSPICIONS_CONFIGMAP),
        touch=touch,
        metrics=metrics,
        stopping=stopping,
        own_node=settings.node_name or None,
        peers=PeerBook(settings.identity),
        observation_board=ObservationBoard(
            client, settings.lease_namespace, contract.OBSERVATIONS_CONFIGMAP
        ),
        node_events=NodeEvents(
            client,
            vantage=settings.node_name or None,
            instance=settings.identity,
            metrics=metrics,
            stopping=stopping,
        ),
    )
    # The other replicas' observations: the second vantage point (see dead_nodes/observations).
    monitor.observation_watch = ObservationWatch(
        client,
        settings.lease_namespace,
        contract.OBSERVATIONS_CONFIGMAP,
        monitor.peer_data,
        stopping,
    )
    return monitor


def _log_start(settings: ForwarderSettings) -> None:
    url = urlsplit(settings.function_url)
    log.info(
        "starting",
        extra={
            "function": f"{url.scheme}://{url.netloc}{url.path}",
            "cluster_id": settings.cluster_id,
            "namespaces": list(settings.namespaces) or "all",
            "lease": f"{settings.lease_namespace}/{settings.lease_name}",
            "identity": settings.identity,
            "node": settings.node_name or "unknown (NODE_NAME not set)",
            "cluster_access": settings.cluster_access,
            "function_account": f"{settings.lease_namespace}/{settings.function_account}",
            "quiet_window": settings.quiet_window,
            "max_delay": settings.max_delay,
            "resync_period": settings.resync_period,
            "rate_per_minute": settings.rate_per_minute,
        },
    )
