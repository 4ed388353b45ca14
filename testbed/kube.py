"""Playing the parts a bare apiserver lacks: kubelet, scheduler, node lifecycle and the
EndpointSlice controller, faithfully enough for the project's watchers and planners.
"""

from __future__ import annotations

import contextlib
import itertools
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import urllib3
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

DOKS_REGION = "nyc3"
NODE_POOL = "pool-floating"
_pod_ips = itertools.count(2)

# What the node lifecycle controller taints a node with when its Ready condition changes.
NOT_READY_TAINTS = {
    "False": "node.kubernetes.io/not-ready",
    "Unknown": "node.kubernetes.io/unreachable",
}


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Port:
    port: int
    protocol: str = "TCP"
    name: str | None = None

    @property
    def port_name(self) -> str:
        return self.name or f"{self.protocol.lower()}-{self.port}"


class KubeBed:
    """Helpers over an admin client of the test control plane."""

    def __init__(self, api: k8s.ApiClient) -> None:
        self.api = api
        self.core = k8s.CoreV1Api(api)
        self.discovery = k8s.DiscoveryV1Api(api)
        self.rbac = k8s.RbacAuthorizationV1Api(api)

    # --- namespaces and identities -----------------------------------------------------------

    def create_namespace(self, prefix: str = "t") -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:8]}"
        self.core.create_namespace(k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=name)))
        return name

    def delete_services(self, namespace: str) -> None:
        """Best effort (a test may have left the apiserver stopped): the namespace's Services,
        gone at once: their finalizers are dropped first (no function cleans up after a test)."""
        with contextlib.suppress(ApiException, urllib3.exceptions.HTTPError):
            for service in self.core.list_namespaced_service(namespace).items:
                with contextlib.suppress(ApiException):
                    name = service.metadata.name
                    if service.metadata.finalizers:
                        self.core.patch_namespaced_service(
                            name, namespace, {"metadata": {"finalizers": None}}
                        )
                    self.core.delete_namespaced_service(name, namespace)

    def create_service_account(self, namespace: str, name: str) -> None:
        self.core.create_namespaced_service_account(
            namespace, k8s.V1ServiceAccount(metadata=k8s.V1ObjectMeta(name=name))
        )

    def mint_token(self, namespace: str, service_account: str, seconds: int = 3600) -> str:
        """A bound ServiceAccount token from the TokenRequest API (as a projected volume gets)."""
        request = k8s.AuthenticationV1TokenRequest(
            spec=k8s.V1TokenRequestSpec(audiences=[], expiration_seconds=seconds)
        )
        reply = self.core.create_namespaced_service_account_token(
            service_account, namespace, request
        )
        return str(reply.status.token)

    # --- nodes (kubelet + node lifecycle controller) ----------------------------------------

    def add_node(
        self,
        name: str,
        droplet_id: int,
        *,
        region: str = DOKS_REGION,
        ready: bool = True,
        anchor_ip: str | None = None,
        public_ip: str = "203.0.113.1",
        private_ip: str = "10.116.0.2",
    ) -> None:
        annotations = {"floating-ip.doks.dev/anchor-ipv4": anchor_ip} if anchor_ip else None
        node = k8s.V1Node(
            metadata=k8s.V1ObjectMeta(
                name=name,
                annotations=annotations,
                labels={
                    "kubernetes.io/hostname": name,
                    "kubernetes.io/os": "linux",
                    "node.kubernetes.io/instance-type": "s-2vcpu-4gb",
                    "topology.kubernetes.io/region": region,
                    "region": region,
                    "doks.digitalocean.com/node-pool": NODE_POOL,
                    "doks.digitalocean.com/node-pool-id": "6a1e0c4e-pool",
                    "doks.digitalocean.com/node-id": str(uuid.uuid4()),
                },
            ),
            spec=k8s.V1NodeSpec(provider_id=f"digitalocean://{droplet_id}"),
        )
        self.core.create_node(node)
        self.core.patch_node_status(
            name,
            {
                "status": {
                    "addresses": [
                        {"type": "InternalIP", "address": private_ip},
                        {"type": "ExternalIP", "address": public_ip},
                        {"type": "Hostname", "address": name},
                    ],
                    "conditions": [_node_ready_condition("True" if ready else "False")],
                }
            },
        )
        # The TaintNodesByCondition admission plugin taints every new Node not-ready; the
        # node lifecycle controller lifts it once the kubelet reports Ready.
        self.set_node_ready(name, "True" if ready else "False")

    def set_node_ready(self, name: str, status: str, *, taint: bool = True) -> None:
        """Set the Ready condition ("True", "False", "Unknown") and, like the node lifecycle
        controller, add or remove the matching NoSchedule/NoExecute taints."""
        self.core.patch_node_status(
            name, {"status": {"conditions": [_node_ready_condition(status)]}}
        )
        if not taint:
            return
        node = self.core.read_node(name)
        kept = [t for t in (node.spec.taints or []) if t.key not in NOT_READY_TAINTS.values()]
        if status in NOT_READY_TAINTS:
            key = NOT_READY_TAINTS[status]
            kept += [
                k8s.V1Taint(key=key, effect="NoSchedule"),
                k8s.V1Taint(key=key, effect="NoExecute", time_added=datetime.now(UTC)),
            ]
        self._set_taints(name, kept)

    def heartbeat(self, name: str) -> None:
        """What a kubelet does every few seconds: refresh the condition's heartbeat only."""
        node = self.core.read_node(name)
        conditions = [
            {
                "type": c.type,
                "status": c.status,
                "reason": c.reason,
                "message": c.message,
                "lastHeartbeatTime": now(),
                "lastTransitionTime": c.last_transition_time.strftime("%Y-%m-%dT%H:%M:%SZ"),
            }
            for c in node.status.conditions
        ]
        self.core.patch_node_status(name, {"status": {"conditions": conditions}})

    def cordon(self, name: str, unschedulable: bool = True) -> None:
        self.core.patch_node(name, {"spec": {"unschedulable": unschedulable}})

    def taint(self, name: str, key: str, effect: str, value: str | None = None) -> None:
        node = self.core.read_node(name)
        taints = [t for t in (node.spec.taints or []) if t.key != key]
        self._set_taints(name, [*taints, k8s.V1Taint(key=key, value=value, effect=effect)])

    def annotate_node(self, name: str, annotations: Mapping[str, str | None]) -> None:
        self.core.patch_node(name, {"metadata": {"annotations": dict(annotations)}})

    def set_kubelet_version(self, name: str, version: str) -> None:
        """What the kubelet reports in ``status.nodeInfo`` (a new node pool's is newer)."""
        info = {
            "machineID": name,
            "systemUUID": name,
            "bootID": name,
            "kernelVersion": "6.1.0",
            "osImage": "Debian GNU/Linux 12 (bookworm)",
            "containerRuntimeVersion": "containerd://1.7.0",
            "kubeletVersion": version,
            "kubeProxyVersion": version,
            "operatingSystem": "linux",
            "architecture": "amd64",
        }
        self.core.patch_node_status(name, {"status": {"nodeInfo": info}})

    def label_node(self, name: str, labels: Mapping[str, str | None]) -> None:
        self.core.patch_node(name, {"metadata": {"labels": dict(labels)}})

    def delete_node(self, name: str) -> None:
        self.core.delete_node(name)

    def _set_taints(self, name: str, taints: list[k8s.V1Taint]) -> None:
        body = [self.api.sanitize_for_serialization(t) for t in taints]
        self.core.patch_node(name, {"spec": {"taints": body or None}})

    # --- pods (scheduler + kubelet) ---------------------------------------------------------

    def create_pod(
        self,
        namespace: str,
        name: str,
        node: str,
        labels: Mapping[str, str],
        *,
        ready: bool = True,
        anchor_ip: str | None = None,
    ) -> str:
        """Create a Pod bound to ``node`` and, as its kubelet would, start it. Returns its IP."""
        annotations = {"floating-ip.doks.dev/anchor-ipv4": anchor_ip} if anchor_ip else None
        pod = k8s.V1Pod(
            metadata=k8s.V1ObjectMeta(
                name=name, namespace=namespace, labels=dict(labels), annotations=annotations
            ),
            spec=k8s.V1PodSpec(
                node_name=node,
                containers=[k8s.V1Container(name="app", image="traefik:v3")],
            ),
        )
        self.core.create_namespaced_pod(namespace, pod)
        n = next(_pod_ips)
        pod_ip = f"10.244.{n // 250}.{n % 250 + 2}"
        self.core.patch_namespaced_pod_status(
            name,
            namespace,
            {
                "status": {
                    "phase": "Running",
                    "podIP": pod_ip,
                    "podIPs": [{"ip": pod_ip}],
                    "startTime": now(),
                    "conditions": _pod_conditions(ready),
                }
            },
        )
        return pod_ip

    def set_pod_ready(self, namespace: str, name: str, ready: bool) -> None:
        self.core.patch_namespaced_pod_status(
            name, namespace, {"status": {"conditions": _pod_conditions(ready)}}
        )

    def annotate_pod(
        self, namespace: str, name: str, annotations: Mapping[str, str | None]
    ) -> None:
        self.core.patch_namespaced_pod(
            name, namespace, {"metadata": {"annotations": dict(annotations)}}
        )

    def delete_pod(self, namespace: str, name: str, *, grace_seconds: int = 0) -> None:
        """With a grace period the pod stays Terminating (no kubelet ends it): as in real life
        between SIGTERM and exit."""
        self.core.delete_namespaced_pod(name, namespace, grace_period_seconds=grace_seconds)

    # --- services and the EndpointSlice controller ------------------------------------------

    def create_service(
        self,
        namespace: str,
        name: str,
        ports: Iterable[Port],
        *,
        selector: Mapping[str, str] | None = None,
        annotations: Mapping[str, str] | None = None,
        external_ips: list[str] | None = None,
        external_traffic_policy: str | None = None,
        service_type: str = "ClusterIP",
        load_balancer_class: str | None = None,
        allocate_load_balancer_node_ports: bool | None = None,
    ) -> k8s.V1Service:
        service = k8s.V1Service(
            metadata=k8s.V1ObjectMeta(
                name=name, namespace=namespace, annotations=dict(annotations or {})
            ),
            spec=k8s.V1ServiceSpec(
                type=service_type,
                selector=dict(selector or {"app": name}),
                ports=[
                    k8s.V1ServicePort(
                        name=p.port_name, port=p.port, protocol=p.protocol, target_port=p.port
                    )
                    for p in ports
                ],
                external_ips=external_ips,
                external_traffic_policy=external_traffic_policy,
                load_balancer_class=load_balancer_class,
                allocate_load_balancer_node_ports=allocate_load_balancer_node_ports,
            ),
        )
        return self.core.create_namespaced_service(namespace, service)

    def annotate_service(
        self, namespace: str, name: str, annotations: Mapping[str, str | None]
    ) -> None:
        self.core.patch_namespaced_service(
            name, namespace, {"metadata": {"annotations": dict(annotations)}}
        )

    def sync_endpoint_slices(self, namespace: str, service_name: str) -> k8s.V1EndpointSlice:
        """Do what the EndpointSlice controller does for one Service: one IPv4 slice whose
        endpoints mirror the selected pods' readiness, termination and node."""
        service = self.core.read_namespaced_service(service_name, namespace)
        selector = ",".join(f"{k}={v}" for k, v in sorted((service.spec.selector or {}).items()))
        pods = self.core.list_namespaced_pod(namespace, label_selector=selector).items
        endpoints = [_endpoint(p) for p in pods if p.status and p.status.pod_ip]
        ports = [
            k8s.DiscoveryV1EndpointPort(name=p.name, port=int(p.target_port), protocol=p.protocol)
            for p in service.spec.ports
        ]
        slice_name = f"{service_name}-slice"
        body = k8s.V1EndpointSlice(
            metadata=k8s.V1ObjectMeta(
                name=slice_name,
                namespace=namespace,
                labels={
                    "kubernetes.io/service-name": service_name,
                    "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io",
                },
                owner_references=[
                    k8s.V1OwnerReference(
                        api_version="v1",
                        kind="Service",
                        name=service_name,
                        uid=service.metadata.uid,
                        controller=True,
                        block_owner_deletion=True,
                    )
                ],
            ),
            address_type="IPv4",
            endpoints=endpoints,
            ports=ports,
        )
        try:
            return self.discovery.replace_namespaced_endpoint_slice(slice_name, namespace, body)
        except ApiException as error:
            if error.status != 404:
                raise
            return self.discovery.create_namespaced_endpoint_slice(namespace, body)

    # --- RBAC ----------------------------------------------------------------------------

    def grant(
        self, namespace: str, service_account: str, rules: list[k8s.V1PolicyRule], name: str
    ) -> None:
        """A Role with ``rules`` bound to the ServiceAccount, in ``namespace``."""
        self.rbac.create_namespaced_role(
            namespace, k8s.V1Role(metadata=k8s.V1ObjectMeta(name=name), rules=rules)
        )
        self.rbac.create_namespaced_role_binding(
            namespace,
            k8s.V1RoleBinding(
                metadata=k8s.V1ObjectMeta(name=name),
                role_ref=k8s.V1RoleRef(
                    api_group="rbac.authorization.k8s.io", kind="Role", name=name
                ),
                subjects=[
                    k8s.RbacV1Subject(
                        kind="ServiceAccount", name=service_account, namespace=namespace
                    )
                ],
            ),
        )


def _node_ready_condition(status: str) -> dict[str, Any]:
    reasons = {"True": "KubeletReady", "False": "KubeletNotReady", "Unknown": "NodeStatusUnknown"}
    return {
        "type": "Ready",
        "status": status,
        "reason": reasons[status],
        "message": f"kubelet says {status}",
        "lastHeartbeatTime": now(),
        "lastTransitionTime": now(),
    }


def _pod_conditions(ready: bool) -> list[dict[str, str]]:
    status = "True" if ready else "False"
    return [
        {"type": "PodScheduled", "status": "True", "lastTransitionTime": now()},
        {"type": "Initialized", "status": "True", "lastTransitionTime": now()},
        {"type": "ContainersReady", "status": status, "lastTransitionTime": now()},
        {"type": "Ready", "status": status, "lastTransitionTime": now()},
    ]


def _endpoint(pod: k8s.V1Pod) -> k8s.V1Endpoint:
    terminating = pod.metadata.deletion_timestamp is not None
    ready = any(c.type == "Ready" and c.status == "True" for c in (pod.status.conditions or []))
    return k8s.V1Endpoint(
        addresses=[pod.status.pod_ip],
        conditions=k8s.V1EndpointConditions(
            ready=ready and not terminating, serving=ready, terminating=terminating
        ),
        node_name=pod.spec.node_name,
        target_ref=k8s.V1ObjectReference(
            kind="Pod",
            namespace=pod.metadata.namespace,
            name=pod.metadata.name,
            uid=pod.metadata.uid,
        ),
    )
