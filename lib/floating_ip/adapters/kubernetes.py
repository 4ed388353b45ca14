"""The function's thin Kubernetes client: raw JSON in and out, errors by kind.

Reads skip the client's model classes (``_preload_content=False``): the core wants a few
fields, and building typed models for every Pod would cost time on each cold start.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import urllib3
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from floating_ip import contract
from floating_ip.errors import ConflictError, PermanentError, TransientError
from floating_ip.retry_after import parse_retry_after

JSON = dict[str, Any]
MERGE_PATCH = "application/merge-patch+json"
REQUEST_TIMEOUT = (3.0, 10.0)
"""(connect, read) seconds for one call; retries and the overall deadline are ours."""


class Kubernetes:
    def __init__(self, url: str, token: str, ca_pem: bytes | None) -> None:
        config = k8s.Configuration(host=url, ca_cert_data=ca_pem.decode() if ca_pem else None)
        config.api_key = {"authorization": token}
        config.api_key_prefix = {"authorization": "Bearer"}
        config.retries = 0
        self._api = k8s.ApiClient(config)
        self._core = k8s.CoreV1Api(self._api)
        self._discovery = k8s.DiscoveryV1Api(self._api)

    def close(self) -> None:
        self._api.close()  # type: ignore[no-untyped-call]

    # --- reads --------------------------------------------------------------------------------

    def list_services(self, namespace: str | None) -> list[JSON]:
        if namespace is None:
            return self._items(self._core.list_service_for_all_namespaces)
        return self._items(self._core.list_namespaced_service, namespace)

    def list_endpoint_slices(self, namespace: str | None) -> list[JSON]:
        selector = contract.SERVICE_NAME_LABEL
        if namespace is None:
            return self._items(
                self._discovery.list_endpoint_slice_for_all_namespaces, label_selector=selector
            )
        return self._items(
            self._discovery.list_namespaced_endpoint_slice, namespace, label_selector=selector
        )

    def list_pods(self, namespace: str) -> list[JSON]:
        return self._items(self._core.list_namespaced_pod, namespace)

    def list_nodes(self) -> list[JSON]:
        return self._items(self._core.list_node)

    # --- writes -------------------------------------------------------------------------------

    def patch_service(self, namespace: str, name: str, patch: JSON) -> JSON:
        """A JSON merge patch; a ``metadata.resourceVersion`` in it makes it conditional."""
        return self._json(
            self._core.patch_namespaced_service,
            name,
            namespace,
            patch,
            _content_type=MERGE_PATCH,
            field_manager="floating-ip",
        )

    def create_event(self, namespace: str, event: JSON) -> JSON:
        return self._json(self._core.create_namespaced_event, namespace, event)

    # --- plumbing -----------------------------------------------------------------------------

    def _items(self, method: Callable[..., Any], *args: Any, **kwargs: Any) -> list[JSON]:
        return list(self._json(method, *args, **kwargs).get("items") or [])

    def _json(self, method: Callable[..., Any], *args: Any, **kwargs: Any) -> JSON:
        what = method.__name__
        try:
            reply = method(
                *args, _preload_content=False, _request_timeout=REQUEST_TIMEOUT, **kwargs
            )
            return dict(json.loads(reply.data))
        except ApiException as error:
            raise _classify(error, what) from None
        except (urllib3.exceptions.HTTPError, OSError) as error:
            raise TransientError(f"kubernetes {what}: {type(error).__name__}") from None


def _classify(error: ApiException, what: str) -> Exception:
    status = error.status or 0
    message = f"kubernetes {what}: {status} {_reason(error)}"
    if status == 409:
        return ConflictError(message)
    if status == 429 or status >= 500:
        return TransientError(message, parse_retry_after((error.headers or {}).get("Retry-After")))
    if status in (401, 403):
        return PermanentError(message + " (check KUBE_TOKEN and the function's RBAC)")
    return PermanentError(message)


def _reason(error: ApiException) -> str:
    try:
        return str(json.loads(error.body or "{}").get("message") or error.reason)
    except ValueError:
        return str(error.reason)
