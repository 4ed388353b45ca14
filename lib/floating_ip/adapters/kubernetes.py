"""The function's thin Kubernetes client: raw JSON in and out, errors by kind.

The official client brings the configuration, the TLS setup and the transport (``ApiClient``
and its REST client); the requests are built here, on the API's own paths. The generated
API classes (``CoreV1Api``...) are not used: building them loads their model classes, which
cost more than half a second of every cold start, for typed objects the function never reads.

Lists are read in pages of ``PAGE_SIZE`` (``limit`` and ``continue``), and a ``keep`` filter
drops unwanted objects page by page, so a big cluster never sits in memory all at once.

Every request asks for gzip: the kube-apiserver compresses a response whose body is over
128 KiB (its APIResponseCompression, on by default), which big lists are: a page of Nodes,
mostly the kubelets' image lists, comes about five times smaller, one of Services more than
ten. A smaller body comes as it is. urllib3 decodes.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from typing import Any, Protocol
from urllib.parse import quote

import urllib3
from kubernetes.client.api_client import ApiClient
from kubernetes.client.configuration import Configuration
from kubernetes.client.exceptions import ApiException

from floating_ip.errors import ConflictError, PermanentError, TransientError
from floating_ip_common import contract
from floating_ip_common.retry_after import parse_retry_after

JSON = dict[str, Any]
MERGE_PATCH = "application/merge-patch+json"
REQUEST_TIMEOUT = (3.0, 10.0)
"""(connect, read) seconds for one call; retries and the overall deadline are ours."""
PAGE_SIZE = 500
"""Objects per list request: the kube-apiserver's own pagers use 500 too."""
FIELD_MANAGER = "floating-ip"
GONE = 410
"""A list's ``continue`` token expired: the list must start over."""


class KubernetesApi(Protocol):
    """What observe and apply call: ``Kubernetes`` (the API itself, callback mode) or
    ``relayed_kubernetes.RelayedKubernetes`` (the caller's snapshot; writes carried by it)."""

    defers_writes: bool
    bytes_read: int
    bytes_decoded: int

    def close(self) -> None: ...
    def list_services(
        self, namespace: str | None, keep: Callable[[JSON], bool] | None = None
    ) -> list[JSON]: ...
    def list_endpoint_slices(
        self, namespace: str | None, services: list[str] | None = None
    ) -> list[JSON]: ...
    def list_pods(self, namespace: str) -> list[JSON]: ...
    def list_nodes(self) -> list[JSON]: ...
    def read_config_map_data(self, namespace: str, name: str) -> dict[str, str] | None: ...
    def patch_service(self, namespace: str, name: str, patch: JSON) -> JSON: ...
    def patch_service_status(self, namespace: str, name: str, patch: JSON) -> JSON: ...
    def create_event(self, namespace: str, event: JSON) -> JSON: ...


class Kubernetes:
    defers_writes = False
    """Every write is made here, when apply makes it."""

    def __init__(self, url: str, token: str, ca_pem: bytes | None) -> None:
        config = Configuration(host=url, ca_cert_data=ca_pem.decode() if ca_pem else None)
        config.api_key = {"authorization": token}
        config.api_key_prefix = {"authorization": "Bearer"}
        config.retries = 0
        self._api = ApiClient(config)
        self._counting = threading.Lock()
        self.bytes_read = 0
        """Response body bytes received so far as sent (compressed when the apiserver
        compressed them; without the headers and TLS): what the network carried."""
        self.bytes_decoded = 0
        """The same bodies decoded: what was parsed as JSON."""

    def close(self) -> None:
        self._api.close()  # type: ignore[no-untyped-call]

    # --- reads --------------------------------------------------------------------------------

    def list_services(
        self, namespace: str | None, keep: Callable[[JSON], bool] | None = None
    ) -> list[JSON]:
        return self._list(_scoped("/api/v1", namespace, "services"), {}, keep)

    def list_endpoint_slices(
        self, namespace: str | None, services: list[str] | None = None
    ) -> list[JSON]:
        """Slices of every Service (of ``services`` only, when given)."""
        selector = contract.SERVICE_NAME_LABEL
        if services:
            selector += f" in ({','.join(sorted(services))})"
        path = _scoped("/apis/discovery.k8s.io/v1", namespace, "endpointslices")
        return self._list(path, {"labelSelector": selector})

    def list_pods(self, namespace: str) -> list[JSON]:
        return self._list(_scoped("/api/v1", namespace, "pods"), {})

    def list_nodes(self) -> list[JSON]:
        return self._list("/api/v1/nodes", {})

    def read_config_map_data(self, namespace: str, name: str) -> dict[str, str] | None:
        """The ConfigMap's ``data`` ({} when it does not exist); ``None`` when forbidden."""
        path = f"/api/v1/namespaces/{namespace}/configmaps/{name}"
        status, data, headers, reason = self._send("GET", path, {}, None)
        if status == 404:
            return {}
        if status == 403:
            return None
        found = _answer(status, data, headers, reason, f"GET {path}")
        return dict(found.get("data") or {})

    # --- writes -------------------------------------------------------------------------------

    def patch_service(self, namespace: str, name: str, patch: JSON) -> JSON:
        """A JSON merge patch; a ``metadata.resourceVersion`` in it makes it conditional."""
        path = f"{_scoped('/api/v1', namespace, 'services')}/{quote(name, safe='')}"
        return self._request(
            "PATCH", path, {"fieldManager": FIELD_MANAGER}, patch, content_type=MERGE_PATCH
        )

    def patch_service_status(self, namespace: str, name: str, patch: JSON) -> JSON:
        """A JSON merge patch of the ``services/status`` subresource (RBAC: patch only)."""
        path = f"{_scoped('/api/v1', namespace, 'services')}/{quote(name, safe='')}/status"
        return self._request(
            "PATCH", path, {"fieldManager": FIELD_MANAGER}, patch, content_type=MERGE_PATCH
        )

    def create_event(self, namespace: str, event: JSON) -> JSON:
        return self._request("POST", _scoped("/api/v1", namespace, "events"), {}, event)

    # --- plumbing -----------------------------------------------------------------------------

    def _list(
        self, path: str, query: dict[str, str], keep: Callable[[JSON], bool] | None = None
    ) -> list[JSON]:
        try:
            return list(self._pages(path, query, keep))
        except _ContinueExpired:
            # Rare (the token lives ~5 minutes): the list is read again from the start.
            return list(self._pages(path, query, keep))

    def _pages(
        self, path: str, query: dict[str, str], keep: Callable[[JSON], bool] | None
    ) -> Iterator[JSON]:
        token = ""
        while True:
            page_query = {**query, "limit": str(PAGE_SIZE)}
            if token:
                page_query["continue"] = token
            status, data, headers, reason = self._send("GET", path, page_query, None)
            if status == GONE and token:
                raise _ContinueExpired
            page = _answer(status, data, headers, reason, f"GET {path}")
            items = page.get("items") or []
            yield from (item for item in items if keep is None or keep(item))
            token = str((page.get("metadata") or {}).get("continue") or "")
            if not token:
                return

    def _request(
        self,
        method: str,
        path: str,
        query: dict[str, str],
        body: JSON | None,
        *,
        content_type: str = "application/json",
    ) -> JSON:
        status, data, headers, reason = self._send(method, path, query, body, content_type)
        return _answer(status, data, headers, reason, f"{method} {path}")

    def _send(
        self,
        method: str,
        path: str,
        query: dict[str, str],
        body: JSON | None,
        content_type: str = "application/json",
    ) -> tuple[int, bytes, Any, str]:
        """One HTTP exchange through the official client: status, body, headers, reason."""
        headers = {"Accept": "application/json", "Accept-Encoding": "gzip"}
        if body is not None:
            headers["Content-Type"] = content_type
        try:
            request = self._api.param_serialize(
                method,
                path,
                query_params=list(query.items()),
                header_params=headers,
                body=body,
                auth_settings=["BearerToken"],
            )
            verb, url, headers, serialized, _ = request
            reply = self._api.call_api(
                verb, url, headers, serialized, _request_timeout=REQUEST_TIMEOUT
            )
            data: bytes = reply.read()  # type: ignore[no-untyped-call]
        except ApiException as error:  # the client's wrapping of TLS failures
            raise PermanentError(f"kubernetes {method} {path}: {error.reason}") from None
        except (urllib3.exceptions.HTTPError, OSError) as error:
            raise TransientError(f"kubernetes {method} {path}: {type(error).__name__}") from None
        # tell(): the body bytes urllib3 pulled from the connection, before decoding.
        with self._counting:  # observe reads from two threads
            self.bytes_read += int(reply.response.tell())
            self.bytes_decoded += len(data)
        return int(reply.status), data, reply.headers, str(reply.reason)


class _ContinueExpired(Exception):
    pass


def _scoped(prefix: str, namespace: str | None, resource: str) -> str:
    if namespace is None:
        return f"{prefix}/{resource}"
    return f"{prefix}/namespaces/{quote(namespace, safe='')}/{resource}"


def _answer(status: int, data: bytes, headers: Any, reason: str, what: str) -> JSON:
    if not 200 <= status <= 299:
        raise _classify(status, _reason(data, reason), headers, what)
    return dict(json.loads(data))


def _classify(status: int, reason: str, headers: Any, what: str) -> Exception:
    message = f"kubernetes {what}: {status} {reason}"
    if status == 409:
        return ConflictError(message)
    if status == 429 or status >= 500:
        return TransientError(message, parse_retry_after((headers or {}).get("Retry-After")))
    if status in (401, 403):
        return PermanentError(
            message + " (check the function's RBAC, and that the forwarder's token is fresh:"
            " its clock and its RBAC to create serviceaccounts/token)"
        )
    return PermanentError(message)


def _reason(data: bytes, fallback: str) -> str:
    try:
        return str(json.loads(data or b"{}").get("message") or fallback)
    except (ValueError, AttributeError):
        return str(fallback)
