"""The Kubernetes API as an in-cluster client sees it: read one object, merge-patch it, with
the shared client (``floating_ip_common``); its answers mapped to the annotator's failures."""

from __future__ import annotations

import http.client
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from floating_ip_annotator.errors import (
    AnnotatorConfigError,
    KubeRejected,
    PermissionDenied,
    Transient,
)
from floating_ip_common import kube_access
from floating_ip_common.kube_access import KubeAccess, KubeAccessError
from floating_ip_common.kube_client import (
    MERGE_PATCH_TYPE,
    AnswerTooLarge,
    ApiError,
    KubeClient,
    NotAnObject,
)
from floating_ip_common.kube_errors import Failure, describe

TOKEN_FILE = Path(kube_access.TOKEN_FILE)
CA_FILE = Path(kube_access.CA_FILE)
# A Node with many cached images is a few hundred KiB of JSON; stop well above that.
MAX_OBJECT_BYTES = 8 * 1024 * 1024
USER_AGENT = "floating-ip-annotator"


@dataclass(frozen=True)
class Target:
    """The object to annotate: this container's own Pod, or the Node it runs on."""

    kind: str  # "pod" or "node"
    name: str
    namespace: str | None = None

    @property
    def path(self) -> str:
        name = urllib.parse.quote(self.name, safe="")
        if self.namespace is None:
            return f"/api/v1/nodes/{name}"
        namespace = urllib.parse.quote(self.namespace, safe="")
        return f"/api/v1/namespaces/{namespace}/pods/{name}"

    def __str__(self) -> str:
        if self.namespace is None:
            return f"{self.kind} {self.name}"
        return f"{self.kind} {self.namespace}/{self.name}"


def in_cluster(environ: Mapping[str, str], token_file: Path, ca_file: Path) -> KubeClient:
    """What every in-cluster client uses: the service env vars, the mounted token and CA,
    all checked now, so that a mistake is named before any network call."""
    url, problems = kube_access.in_pod_url(environ)
    if url is None:
        raise AnnotatorConfigError(
            "KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set: "
            "not running in a Kubernetes pod?"
        )
    if problems:
        raise AnnotatorConfigError("; ".join(problems))
    try:
        kube_access.read_token(str(token_file))
        return KubeClient(KubeAccess(url, str(token_file), str(ca_file)), user_agent=USER_AGENT)
    except KubeAccessError as error:
        raise AnnotatorConfigError(str(error)) from None


class KubeApi:
    """GET and PATCH of single objects; statuses mapped to the annotator's errors."""

    def __init__(self, client: KubeClient) -> None:
        self._client = client

    @property
    def server(self) -> str:
        return self._client.api_url

    def get(self, target: Target, timeout: float) -> dict[str, Any]:
        return self._call("GET", target, None, timeout)

    def patch(self, target: Target, body: Mapping[str, Any], timeout: float) -> dict[str, Any]:
        return self._call("PATCH", target, body, timeout)

    def _call(
        self, method: str, target: Target, body: Mapping[str, Any] | None, timeout: float
    ) -> dict[str, Any]:
        connection = self._client.connection(read_timeout=timeout)
        try:
            return connection.request(
                method,
                target.path,
                body,
                content_type=MERGE_PATCH_TYPE,
                max_bytes=MAX_OBJECT_BYTES,
            )
        except ApiError as error:
            raise failure(error, method, target) from None
        except AnswerTooLarge:
            raise KubeRejected(
                f"the Kubernetes API answered more than {MAX_OBJECT_BYTES} bytes for {target}: "
                "not a single object"
            ) from None
        except KubeAccessError as error:
            raise AnnotatorConfigError(str(error)) from None
        except (OSError, http.client.HTTPException) as error:
            # Before ValueError: a certificate that fails verification is both.
            raise Transient(describe(error, timeout)) from None
        except NotAnObject:
            raise KubeRejected(f"the Kubernetes API answered a non-object for {target}") from None
        except (ValueError, RecursionError):
            raise KubeRejected(f"the Kubernetes API answered non-JSON for {target}") from None
        finally:
            connection.close()


def failure(error: ApiError, method: str, target: Target) -> Exception:
    """The annotator's failure for a refused request: retried, or named with what to fix."""
    doing = "reading" if method == "GET" else "patching"
    kind = error.failure
    if kind is Failure.UNAUTHORIZED:
        return PermissionDenied(
            f"the Kubernetes API rejected the ServiceAccount token (401) {doing} {target}: "
            f"{error.message}"
        )
    if kind is Failure.FORBIDDEN:
        return PermissionDenied(
            f"permission denied {doing} {target}: {error.message}; {_needed_role(target)}"
        )
    if kind in (Failure.CONFLICT, Failure.TRANSIENT):
        # A conflict: the object changed between the read and the patch; read again.
        return Transient(f"HTTP {error.status} {doing} {target}: {error.message}")
    if kind is Failure.NOT_FOUND:
        return KubeRejected(f"{target} not found (404): {error.message}")
    if kind is Failure.REDIRECTED:
        return KubeRejected(
            f"the Kubernetes API redirected {doing} {target} (HTTP {error.status}) to "
            f"{error.location or 'nowhere'}, not followed: "
            "the API server does not redirect, is KUBERNETES_SERVICE_HOST right?"
        )
    return KubeRejected(f"HTTP {error.status} {doing} {target}: {error.message}")


def _needed_role(target: Target) -> str:
    if target.namespace is None:
        return (
            "the ServiceAccount needs the floating-ip-node-annotator ClusterRole "
            "(get and patch nodes)"
        )
    return "the ServiceAccount needs the floating-ip-annotator Role (get and patch pods)"
