"""Relay mode (``CLUSTER_ACCESS=relay``): the forwarder is the function's only way to the
cluster. Each event carries the state the decision reads (``data.state``), read fresh at send
time from the apiserver the forwarder reaches in-cluster; the function answers with the
Kubernetes writes it decided, in make-before-break order, each a Service patch conditional on
the ``resourceVersion`` it was decided from, or an Event; they are made here, in order. The
forwarder calls again when the function asks to (the new anchors are in place: now the IPs
move) or when a write lost a race (409: decided again from fresh state, never retried as it
was).

The state is what the function would list itself, trimmed to the fields it reads (no
``managedFields``, no kubelet image lists), so a cluster's Nodes fit the 1 MB a DigitalOcean
Function accepts. Only writes of the kinds the function makes in callback mode, on Services
in the namespaces this forwarder serves, are made; anything else in an answer is refused.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar
from urllib.parse import quote

from floating_ip_common import contract
from floating_ip_common.kube_client import ApiError, Connection

JSON = dict[str, Any]
R = TypeVar("R")
Post = Callable[[bytes], tuple[R, int | None, bytes]]
"""One call of the function with a body: what the caller keeps of it, its status, its answer."""
MAX_CALLS = 4
"""Make-before-break takes two calls, a lost race one more."""
MAX_STATE_BYTES = 1_000_000 - 4_096
"""DigitalOcean Functions accept 1 MB of parameters; the rest of the event is small."""
_SERVICE_WRITE = re.compile(
    r"/api/v1/namespaces/(?P<ns>[a-z0-9-]{1,63})/services/[a-z0-9-]{1,63}(/status)?"
    r"\?fieldManager=floating-ip"
)
_EVENT_WRITE = re.compile(r"/api/v1/namespaces/(?P<ns>[a-z0-9-]{1,63})/events")


class RelayError(Exception):
    """The state could not be read, or an answer asked for a write we never make."""


class TooLarge(RelayError):
    pass


@dataclass(frozen=True)
class Made:
    """What making an answer's writes came to."""

    conflict: bool
    """A write lost a race (409): the rest were not made; decide again from fresh state."""
    services: tuple[JSON, ...] = ()
    """Each written Service as the apiserver answered its last write."""


@dataclass(frozen=True)
class Call(Generic[R]):
    """One call of an event's delivery."""

    kept: R
    """What the caller's ``post`` kept of it."""
    status: int | None
    answer: JSON
    """The function's answer, decoded (empty when it was not a JSON object)."""


def _key(service: Mapping[str, Any]) -> tuple[str, str]:
    meta = service.get("metadata") or {}
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")


def _asks(service: Mapping[str, Any]) -> bool:
    """Opted in: an ``address`` annotation, or a LoadBalancer of our class (``auto`` then)."""
    annotations = (service.get("metadata") or {}).get("annotations") or {}
    spec = service.get("spec") or {}
    ours_by_class = (
        spec.get("type") == "LoadBalancer"
        and spec.get("loadBalancerClass") == contract.LOAD_BALANCER_CLASS
    )
    return contract.ADDRESS in annotations or ours_by_class


def _ours(service: Mapping[str, Any]) -> bool:
    """Opted in, or still carrying what the function wrote (to be cleaned): our annotations,
    or our cleanup finalizer."""
    metadata = service.get("metadata") or {}
    annotations = metadata.get("annotations") or {}
    written = any(key.startswith(contract.PREFIX) for key in annotations)
    return _asks(service) or written or contract.FINALIZER in (metadata.get("finalizers") or [])


def _meta(obj: Mapping[str, Any], *keys: str) -> JSON:
    meta = obj.get("metadata") or {}
    return {k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion", *keys) if k in meta}


def _service(obj: Mapping[str, Any]) -> JSON:
    return {
        "metadata": _meta(obj, "annotations", "labels", "deletionTimestamp", "finalizers"),
        "spec": obj.get("spec") or {},
        "status": obj.get("status") or {},
    }


def _slice(obj: Mapping[str, Any]) -> JSON:
    return {
        "metadata": _meta(obj, "labels"),
        "endpoints": obj.get("endpoints") or [],
        "ports": obj.get("ports") or [],
    }


def _ours_only(annotations: object) -> JSON:
    """The project's annotations (the anchor IP, the droplet id): all a Pod or Node gives."""
    if not isinstance(annotations, Mapping):
        return {}
    return {k: v for k, v in annotations.items() if str(k).startswith(contract.PREFIX)}


def _pod(obj: Mapping[str, Any]) -> JSON:
    meta = _meta(obj)
    meta["annotations"] = _ours_only((obj.get("metadata") or {}).get("annotations"))
    return {"metadata": meta, "spec": {"nodeName": (obj.get("spec") or {}).get("nodeName")}}


def _announces(pod: Mapping[str, Any]) -> bool:
    """A Pod counts for placement only by the anchor it announces (the annotator's init
    container); one without our annotations tells the function nothing."""
    return bool(_ours_only((pod.get("metadata") or {}).get("annotations")))


def _selector_texts(services: list[JSON]) -> tuple[str, ...]:
    return tuple(
        str(text)
        for service in services
        if _asks(service)
        and (text := (service["metadata"].get("annotations") or {}).get(contract.NODE_SELECTOR))
    )


def _label_kept(key: str, selectors: tuple[str, ...]) -> bool:
    """The region label, and any a Service's node selector names (a key a selector names
    appears in its text, whatever the syntax; a few more kept is harmless)."""
    return key == contract.REGION_LABEL or any(key in text for text in selectors)


def _node(obj: Mapping[str, Any], selectors: tuple[str, ...]) -> JSON:
    """A Node as placement reads it: the labels it may match (``_label_kept``), our
    annotations, its schedulability and taints, its provider id, its kubelet's version (an
    upgrade's new nodes are preferred) and its Ready condition (without heartbeat times).
    Nodes are most of the state: nothing placement does not read is sent."""
    raw_meta = obj.get("metadata") or {}
    labels = raw_meta.get("labels") or {}
    meta = {k: raw_meta[k] for k in ("name", "deletionTimestamp") if k in raw_meta}
    meta["labels"] = {k: v for k, v in labels.items() if _label_kept(str(k), selectors)}
    meta["annotations"] = _ours_only(raw_meta.get("annotations"))
    spec = obj.get("spec") or {}
    kept = {k: spec[k] for k in ("providerID", "unschedulable", "taints") if k in spec}
    raw_status = obj.get("status") or {}
    conditions = raw_status.get("conditions") or []
    ready = [
        {"type": "Ready", "status": c.get("status")}
        for c in conditions
        if isinstance(c, Mapping) and c.get("type") == "Ready"
    ]
    status: JSON = {"conditions": ready}
    version = (raw_status.get("nodeInfo") or {}).get("kubeletVersion")
    if version is not None:
        status["nodeInfo"] = {"kubeletVersion": version}
    return {"metadata": meta, "spec": kept, "status": status}


class Relay:
    def __init__(self, connection: Connection, namespaces: tuple[str, ...]) -> None:
        self.connection = connection
        self.namespaces = namespaces
        """Empty: every namespace."""

    # --- one event, as many calls as its plan takes -------------------------------------------

    def deliver(self, data: Mapping[str, Any], post: Post[R]) -> list[Call[R]]:
        """Calls the function with the event's data and the state, makes the writes each answer
        asks for, and calls again while it asks to (the plan's next step) or a write lost a
        race; the calls made, the last one deciding the outcome. A non-200 answer ends it (its
        writes are made all the same: a 503 carries the Warning of a change that failed).
        ``TooLarge`` or ``RelayError`` when the state cannot be read or sent, or an answer
        asks for a write never made."""
        calls: list[Call[R]] = []
        state: JSON | None = None
        for _ in range(MAX_CALLS):
            if state is None:
                state = self.state()
            kept, status, raw = post(self.body(data, state))
            try:
                answer = json.loads(raw) if raw else {}
            except ValueError:
                answer = {}
            if not isinstance(answer, dict):
                answer = {}
            calls.append(Call(kept, status, answer))
            made = self.make(answer.get("kubernetes_writes") or [])
            if status != 200 or not (made.conflict or answer.get("again")):
                return calls
            # The plan's next step, on the state it was decided on as the writes left it; a
            # lost race is decided again from everything read afresh.
            state = None if made.conflict else self.continued(state, made)
        raise RelayError(f"still asked to call again after {MAX_CALLS} calls")

    # --- the state ----------------------------------------------------------------------------

    def state(self) -> JSON:
        """What the function's observe lists, trimmed to what it reads."""
        services: list[JSON] = []
        for scope in self.namespaces or (None,):
            where = f"/namespaces/{quote(scope, safe='')}" if scope else ""
            services += [_service(s) for s in self._list(f"/api/v1{where}/services") if _ours(s)]
        names: dict[str, list[str]] = {}
        for service in services:
            if _asks(service):
                names.setdefault(service["metadata"]["namespace"], []).append(
                    service["metadata"]["name"]
                )
        slices: list[JSON] = []
        pods: list[JSON] = []
        for namespace, owners in sorted(names.items()):
            ns = quote(namespace, safe="")
            selector = quote(f"{contract.SERVICE_NAME_LABEL} in ({','.join(sorted(owners))})")
            path = f"/apis/discovery.k8s.io/v1/namespaces/{ns}/endpointslices"
            slices += [_slice(s) for s in self._list(f"{path}?labelSelector={selector}")]
            pods += [_pod(p) for p in self._list(f"/api/v1/namespaces/{ns}/pods") if _announces(p)]
        selectors = _selector_texts(services)
        return {
            "services": services,
            "endpointslices": slices,
            "pods": pods,
            "nodes": [_node(n, selectors) for n in self._list("/api/v1/nodes")],
            "suspicions": self._suspicions(),
        }

    def body(self, data: Mapping[str, Any], state: JSON) -> bytes:
        """The event's data with the state; ``TooLarge`` past what the platform accepts."""
        encoded = json.dumps({**data, "state": state}, separators=(",", ":")).encode()
        if len(encoded) > MAX_STATE_BYTES:
            raise TooLarge(
                f"the cluster's state is {len(encoded)} bytes, more than the "
                f"{MAX_STATE_BYTES} a function call accepts: narrow NAMESPACES"
            )
        return encoded

    def _list(self, path: str) -> list[JSON]:
        items: list[JSON] = []
        token = ""
        while True:
            sep = "&" if "?" in path else "?"
            page = f"{path}{sep}limit=500" + (f"&continue={quote(token)}" if token else "")
            try:
                answer = self.connection.request("GET", page)
            except (ApiError, OSError, ValueError) as error:
                raise RelayError(f"cannot read the state: GET {path}: {error}") from None
            items += [i for i in answer.get("items") or [] if isinstance(i, dict)]
            token = str((answer.get("metadata") or {}).get("continue") or "")
            if not token:
                return items

    def _suspicions(self) -> dict[str, str]:
        path = (
            f"/api/v1/namespaces/{contract.SUSPICIONS_NAMESPACE}"
            f"/configmaps/{contract.SUSPICIONS_CONFIGMAP}"
        )
        try:
            data = self.connection.request("GET", path).get("data") or {}
        except ApiError as error:
            if error.status == 404:
                return {}
            raise RelayError(f"cannot read the suspicions: {error}") from None
        except (OSError, ValueError) as error:
            raise RelayError(f"cannot read the suspicions: {error}") from None
        return {str(k): str(v) for k, v in data.items()}

    # --- the writes ---------------------------------------------------------------------------

    def make(self, writes: object) -> Made:
        """The answer's writes, in order, until one loses a race (409: decide again)."""
        if not isinstance(writes, list):
            raise RelayError("kubernetes_writes is not a list")
        checked = [self._checked(w) for w in writes]
        returned: dict[str, tuple[str, str]] = {}
        written: dict[str, JSON] = {}
        for method, path, decided, content_type in checked:
            service = path.partition("?")[0].removesuffix("/status")
            meta = dict(decided.get("metadata") or {})
            decided_on = str(meta.get("resourceVersion") or "")
            body = decided
            if decided_on and service in returned and returned[service][0] == decided_on:
                # A second write of the same Service follows the first: conditional on the
                # version the first one made, as the function would have sent it.
                body = {**decided, "metadata": {**meta, "resourceVersion": returned[service][1]}}
            try:
                reply = self.connection.request(method, path, body, content_type=content_type)
            except ApiError as error:
                if error.status == 409:
                    return Made(conflict=True)
                raise RelayError(f"{method} {path.partition('?')[0]}: {error}") from None
            except (OSError, ValueError) as error:
                raise RelayError(f"{method} {path.partition('?')[0]}: {error}") from None
            if decided_on:
                version = str((reply.get("metadata") or {}).get("resourceVersion") or "")
                returned[service] = (decided_on, version)
            if method == "PATCH":
                written[service] = reply
        return Made(conflict=False, services=tuple(written.values()))

    def continued(self, state: JSON, made: Made) -> JSON | None:
        """The state for the call that continues a plan: the one this plan was decided on, with
        the Services as the writes just made left them (what a list would now show). ``None``
        when a reply does not say what the Service became: then read it all afresh.

        Not read again because a list right after a write waits for the apiserver's caches of
        the other kinds to catch up with it (~50 ms measured, most of a relay move's extra
        call); what changed meanwhile elsewhere is a change of its own, sent after this one."""
        services = {_key(s): s for s in state.get("services") or []}
        for reply in made.services:
            meta = reply.get("metadata")
            if not isinstance(meta, Mapping) or not meta.get("name") or not meta.get("uid"):
                return None
            key = _key(reply)
            gone = bool(meta.get("deletionTimestamp")) and not meta.get("finalizers")
            if gone or not _ours(reply):
                services.pop(key, None)
            else:
                services[key] = _service(reply)
        return {**state, "services": list(services.values())}

    def _checked(self, write: object) -> tuple[str, str, JSON, str]:
        if not isinstance(write, Mapping):
            raise RelayError("a write is not an object")
        method, path = str(write.get("method")), str(write.get("path"))
        body, content_type = write.get("body"), str(write.get("contentType"))
        service = _SERVICE_WRITE.fullmatch(path)
        event = _EVENT_WRITE.fullmatch(path)
        allowed = (service is not None and method == "PATCH" and content_type == MERGE_PATCH) or (
            event is not None and method == "POST" and content_type == JSON_TYPE
        )
        match = service or event
        if not allowed or match is None or not isinstance(body, dict):
            raise RelayError(f"refusing a write the function never makes: {method} {path[:200]}")
        if self.namespaces and match.group("ns") not in self.namespaces:
            raise RelayError(f"refusing a write outside NAMESPACES: {path[:200]}")
        return method, path, body, content_type


MERGE_PATCH = "application/merge-patch+json"
JSON_TYPE = "application/json"
