"""The function's settings, read from the environment and checked before any call is made.

Every problem names the variable, so a user can fix ``.env`` without reading the source.
"""

from __future__ import annotations

import base64
import binascii
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlparse

from floating_ip.errors import FunctionConfigError

SETTINGS = (
    "DIGITALOCEAN_TOKEN",
    "DIGITALOCEAN_API_URL",
    "CLUSTER_ID",
    "KUBE_API_URL",
    "KUBE_CA_DATA",
    "WEB_SECRET",
    "DRY_RUN",
    "NAMESPACES",
    "UNASSIGN_UNCLAIMED",
    "CLUSTER_ACCESS",
)
"""Every environment variable the function reads (project.yml passes each of them)."""
DEFAULT_DIGITALOCEAN_API_URL = "https://api.digitalocean.com"
MIN_SECRET_LENGTH = 16
_NAMESPACE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
CALLBACK = "callback"
RELAY = "relay"
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off", ""}


@dataclass(frozen=True)
class Config:
    digitalocean_token: str
    """``DIGITALOCEAN_TOKEN``: a token scoped to reserved_ip, firewall, droplet, kubernetes read."""
    digitalocean_api_url: str
    """``DIGITALOCEAN_API_URL``: the API's base URL (an imitation's, in tests)."""
    cluster_id: str
    """``CLUSTER_ID``: the DOKS cluster's UUID; names the firewall and its target tag."""
    kube_api_url: str
    """``KUBE_API_URL``: the cluster's API server URL. No token beside it: the forwarder sends
    a short-lived one with each call (``contract.KUBE_TOKEN_HEADER``)."""
    kube_ca_pem: bytes | None
    """``KUBE_CA_DATA``: the API server's CA, base64 PEM; absent means the system's CAs."""
    web_secret: str
    """``WEB_SECRET``: the shared secret callers send in ``X-Require-Whisk-Auth``."""
    dry_run: bool
    """``DRY_RUN``: plan and report, write nothing."""
    namespaces: tuple[str, ...]
    """``NAMESPACES``: comma-separated namespaces to manage; empty or ``*`` means all."""
    unassign_unclaimed: bool = False
    """``UNASSIGN_UNCLAIMED``: unassign reserved IPs on our nodes that no Service names."""
    cluster_access: str = CALLBACK
    """``CLUSTER_ACCESS``: ``callback`` (default) calls the cluster's API with the token each
    event brings; ``relay`` never calls it: the event brings the state, the answer carries
    the Kubernetes writes (``KUBE_API_URL`` and ``KUBE_CA_DATA`` are then not needed)."""

    def __repr__(self) -> str:
        # Never let a secret reach a log line through a repr.
        return (
            f"Config(cluster_id={self.cluster_id!r}, digitalocean_api_url="
            f"{self.digitalocean_api_url!r}, kube_api_url={self.kube_api_url!r}, "
            f"dry_run={self.dry_run}, namespaces={self.namespaces!r}, "
            f"unassign_unclaimed={self.unassign_unclaimed}, "
            f"cluster_access={self.cluster_access!r})"
        )

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Config:
        problems: list[str] = []

        def required(name: str) -> str:
            value = env.get(name, "").strip()
            if not value:
                problems.append(f"{name} is not set")
            return value

        def https_url(name: str, value: str) -> str:
            parsed = urlparse(value)
            if value and (parsed.scheme != "https" or not parsed.hostname):
                problems.append(f"{name} must be an https:// URL, got {value!r}")
            return value.rstrip("/")

        token = required("DIGITALOCEAN_TOKEN")
        api_url = https_url(
            "DIGITALOCEAN_API_URL",
            env.get("DIGITALOCEAN_API_URL", "").strip() or DEFAULT_DIGITALOCEAN_API_URL,
        )
        cluster_id = required("CLUSTER_ID").lower()
        if cluster_id and not _is_uuid(cluster_id):
            problems.append(f"CLUSTER_ID must be the cluster's UUID, got {cluster_id!r}")
        access = cluster_access_of(env)
        if access not in (CALLBACK, RELAY):
            problems.append(f"CLUSTER_ACCESS must be {CALLBACK} or {RELAY}, got {access[:40]!r}")
        if access == RELAY:
            # Never called: whatever is set is not read.
            kube_url, ca_pem = "", None
        else:
            kube_url = https_url("KUBE_API_URL", required("KUBE_API_URL"))
            ca_pem = _ca_pem(env.get("KUBE_CA_DATA", "").strip(), problems)
        secret = required("WEB_SECRET")
        if secret and len(secret) < MIN_SECRET_LENGTH:
            problems.append(f"WEB_SECRET must be at least {MIN_SECRET_LENGTH} characters long")
        dry_run = _flag("DRY_RUN", env.get("DRY_RUN", ""), problems)
        unassign = _flag("UNASSIGN_UNCLAIMED", env.get("UNASSIGN_UNCLAIMED", ""), problems)
        namespaces = namespaces_of(env)
        problems.extend(
            f"NAMESPACES: {n!r} is not a valid namespace name"
            for n in namespaces
            if not _NAMESPACE.match(n)
        )
        if problems:
            raise FunctionConfigError("invalid configuration: " + "; ".join(problems))
        return cls(
            token,
            api_url,
            cluster_id,
            kube_url,
            ca_pem,
            secret,
            dry_run,
            namespaces,
            unassign,
            access,
        )


def cluster_access_of(env: Mapping[str, str]) -> str:
    """``CLUSTER_ACCESS`` as written (lower-cased; ``callback`` when unset), unchecked."""
    return env.get("CLUSTER_ACCESS", "").strip().lower() or CALLBACK


def namespaces_of(env: Mapping[str, str]) -> tuple[str, ...]:
    """The namespaces ``NAMESPACES`` names (none: all), unchecked."""
    return tuple(
        n.strip() for n in env.get("NAMESPACES", "").split(",") if n.strip() not in ("", "*")
    )


def _is_uuid(value: str) -> bool:
    try:
        return str(uuid.UUID(value)) == value
    except ValueError:
        return False


def _ca_pem(value: str, problems: list[str]) -> bytes | None:
    if not value:
        return None
    try:
        pem = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        problems.append(
            "KUBE_CA_DATA must be base64 (as in a kubeconfig's certificate-authority-data)"
        )
        return None
    if b"-----BEGIN CERTIFICATE-----" not in pem:
        problems.append("KUBE_CA_DATA does not decode to a PEM certificate")
        return None
    return pem


def _flag(name: str, value: str, problems: list[str]) -> bool:
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered not in _FALSE:
        problems.append(f"{name} must be true or false, got {value!r}")
    return False
