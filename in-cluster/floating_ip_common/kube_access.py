"""Where the apiserver is and how this process proves who it is (plain data)."""

from __future__ import annotations

from dataclasses import dataclass

SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
"""Where the kubelet mounts a pod's ServiceAccount token and the cluster's CA."""


@dataclass(frozen=True, slots=True)
class KubeAccess:
    """How to reach the apiserver: in a pod, from the ServiceAccount mount and the
    ``KUBERNETES_SERVICE_*`` variables; elsewhere, from ``KUBE_*`` overrides."""

    api_url: str
    token_file: str
    """Read again for every connection: projected tokens are rotated by the kubelet."""
    ca_file: str | None
    """``None``: the system's trust store."""
