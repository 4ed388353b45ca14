"""Where the apiserver is and how this process proves who it is: from the environment, the
ServiceAccount token and the cluster's CA, checked so that a mistake is named at start-up
rather than found "unreachable" after every retry."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
"""Where the kubelet mounts a pod's ServiceAccount token and the cluster's CA."""
TOKEN_FILE = f"{SERVICE_ACCOUNT_DIR}/token"
CA_FILE = f"{SERVICE_ACCOUNT_DIR}/ca.crt"
MAX_TOKEN_BYTES = 64 * 1024
"""A projected ServiceAccount token is about 1 KiB; a larger "token" is the wrong file."""

ACCESS_VARIABLES = (
    "KUBE_API_URL",
    "KUBE_TOKEN_FILE",
    "KUBE_CA_FILE",
    "KUBERNETES_SERVICE_HOST",
    "KUBERNETES_SERVICE_PORT",
)
"""The environment variables :func:`locate` reads."""

_HOSTNAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?")


class KubeAccessError(ValueError):
    """The token or the CA cannot be used; ``str()`` says which file and why (never the
    token itself). A ``ValueError``, as a malformed answer is: callers retry both later."""


@dataclass(frozen=True, slots=True)
class KubeAccess:
    """How to reach the apiserver: in a pod, from the ServiceAccount mount and the
    ``KUBERNETES_SERVICE_*`` variables; elsewhere, from ``KUBE_*`` overrides."""

    api_url: str
    token_file: str
    """Read again for every request: projected tokens are rotated by the kubelet."""
    ca_file: str | None
    """``None``: the system's trust store."""


def in_pod_url(environ: Mapping[str, str]) -> tuple[str | None, list[str]]:
    """The apiserver's URL from ``KUBERNETES_SERVICE_HOST`` and ``_PORT`` (``None`` when they
    are not set: not a pod), and the problems with them."""
    host = environ.get("KUBERNETES_SERVICE_HOST", "")
    port = environ.get("KUBERNETES_SERVICE_PORT", "")
    if not host or not port:
        return None, []
    problems = []
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if not _HOSTNAME.fullmatch(host):
            problems.append(
                f"KUBERNETES_SERVICE_HOST: {host[:200]!r} is not an IP address or host name"
            )
    if not (port.isascii() and port.isdigit()) or not 1 <= int(port) <= 65535:
        problems.append(f"KUBERNETES_SERVICE_PORT: {port[:200]!r} is not a port (1-65535)")
    url = f"https://[{host}]:{port}" if ":" in host else f"https://{host}:{port}"
    return url, problems


def https_url_problems(name: str, url: str) -> list[str]:
    """What is wrong with ``url`` as an https URL that a secret is sent to, as it is given."""
    if not url.isprintable() or any(char.isspace() for char in url):
        return [f"{name}: {url[:200]!r} contains whitespace or control characters"]
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as error:
        return [f"{name}: not a URL ({error})"]
    problems = []
    if parts.scheme != "https" or not parts.hostname:
        problems.append(f"{name} must be an https:// URL (the secret travels with it)")
    if parts.username or parts.password:
        problems.append(f"{name} must not carry credentials; they come from their own settings")
    return problems


def locate(environ: Mapping[str, str]) -> tuple[KubeAccess, list[str]]:
    """``KUBE_API_URL``, ``KUBE_TOKEN_FILE`` and ``KUBE_CA_FILE`` when set (outside a pod),
    else the pod's own; and every problem found, each naming its variable."""
    api_url = environ.get("KUBE_API_URL", "")
    problems: list[str] = []
    if api_url:
        problems += https_url_problems("KUBE_API_URL", api_url)
    else:
        in_pod, problems = in_pod_url(environ)
        if in_pod is None:
            problems.append(
                "KUBE_API_URL is not set and this is not a pod (no KUBERNETES_SERVICE_HOST):"
                " set KUBE_API_URL, KUBE_TOKEN_FILE and KUBE_CA_FILE"
            )
        api_url = in_pod or ""
    token_file = environ.get("KUBE_TOKEN_FILE") or TOKEN_FILE
    ca_file = environ.get("KUBE_CA_FILE", "")
    if not ca_file and not environ.get("KUBE_API_URL"):
        ca_file = CA_FILE
    return KubeAccess(api_url.rstrip("/"), token_file, ca_file or None), problems


def read_token(token_file: str) -> str:
    """The token, checked without ever quoting it: it goes into a header as it is, and a line
    break would make http.client raise with the whole header in a message bound for the log."""
    try:
        with open(token_file, "rb") as file:  # noqa: PTH123 - a path string, as the kubelet mounts it
            raw = file.read(MAX_TOKEN_BYTES + 1)
    except OSError as error:
        raise KubeAccessError(
            f"cannot read the ServiceAccount token at {token_file}: {error.strerror} "
            "(is automountServiceAccountToken false?)"
        ) from None
    if len(raw) > MAX_TOKEN_BYTES:
        raise KubeAccessError(
            f"the ServiceAccount token file {token_file} is larger than {MAX_TOKEN_BYTES} bytes: "
            "not a token"
        )
    token = raw.strip()
    if not token:
        raise KubeAccessError(f"the ServiceAccount token file {token_file} is empty")
    if not all(0x21 <= byte <= 0x7E for byte in token):
        raise KubeAccessError(
            f"the ServiceAccount token in {token_file} contains bytes a token never has "
            "(spaces, line breaks, control or non-ASCII characters)"
        )
    return token.decode("ascii")
