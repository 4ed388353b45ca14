"""What the function reads and what the forwarder watches are one list.

The forwarder forwards a change only when its small projection of an object changes
(``projections.py``); the function decides from what ``translate.py`` reads (and, of a
Service's annotations, what the core looks up). A field the function starts reading that the
projection leaves out would be acted on only at the next resync, 5 minutes later. So both
sides are run here over the same objects wrapped in a recorder, and what each one read is
compared: every field the function reads is watched by the forwarder, unless it is listed
below with the reason it is not a placement input; and the forwarder watches nothing the
function ignores, unless listed with its reason.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest

from floating_ip import translate
from floating_ip.core import model
from floating_ip.core.model import Cluster, Observation, ReservedIP
from floating_ip.core.plan import plan
from floating_ip_common import contract
from floating_ip_forwarder.forwarding import projections
from tests.forwarder.test_projections import slice_obj

Obj = dict[str, Any]


class Recorder(Mapping[str, Any]):
    """A read-only view of a JSON object that notes the dotted path of every key read
    (``spec.ports[].port``); iterating over a mapping notes ``<path>.*``."""

    def __init__(self, data: Obj, reads: set[str], path: str = "") -> None:
        self._data = data
        self._reads = reads
        self._path = path

    def _at(self, key: str) -> str:
        return f"{self._path}.{key}" if self._path else key

    def _wrap(self, key: str, value: Any) -> Any:
        path = self._at(key)
        self._reads.add(path)
        if isinstance(value, dict):
            return Recorder(value, self._reads, path)
        if isinstance(value, list):
            return [
                Recorder(v, self._reads, path + "[]") if isinstance(v, dict) else v for v in value
            ]
        return value

    def __getitem__(self, key: str) -> Any:
        return self._wrap(key, self._data[key])

    def get(self, key: str, default: Any = None) -> Any:
        if key in self._data:
            return self._wrap(key, self._data[key])
        self._reads.add(self._at(key))
        return default

    def __contains__(self, key: object) -> bool:
        self._reads.add(self._at(str(key)))
        return key in self._data

    def __iter__(self) -> Iterator[str]:
        self._reads.add(self._at("*"))
        return iter(self._data)

    def items(self) -> Any:
        self._reads.add(self._at("*"))
        return self._data.items()

    def __len__(self) -> int:
        return len(self._data)


def reads(function: Callable[[Any], object], obj: Obj) -> set[str]:
    found: set[str] = set()
    function(Recorder(obj, found))
    return found


def annotation(key: str) -> str:
    return f"metadata.annotations.{key}"


# --- one object of each watched kind, with every field either side could read ---------------

SERVICE: Obj = {
    "metadata": {
        "name": "web",
        "namespace": "apps",
        "uid": "7b0c",
        "resourceVersion": "5",
        "creationTimestamp": "2026-01-01T00:00:00Z",
        "annotations": {
            contract.ADDRESS: "203.0.113.10",
            contract.FIREWALL: "true",
            contract.FIREWALL_SOURCES: "0.0.0.0/0",
            contract.NODE_SELECTOR: "doks.digitalocean.com/node-pool=ingress",
            contract.HOLDER_NODE: "pool-a-1",
            contract.HOLDER_DROPLET: "101",
            contract.ANCHOR_IP: "10.20.0.5",
            contract.STATUS: "assigned",
        },
    },
    "spec": {
        "ports": [{"port": 80, "protocol": "TCP"}],
        "externalIPs": ["10.20.0.5"],
        "externalTrafficPolicy": "Local",
        "type": "LoadBalancer",
        "loadBalancerClass": contract.LOAD_BALANCER_CLASS,
        "loadBalancerSourceRanges": ["192.0.2.0/24"],
    },
    "status": {"loadBalancer": {"ingress": [{"ip": "203.0.113.10", "ipMode": "VIP"}]}},
}
SLICE: Obj = slice_obj()
NODE: Obj = {
    "metadata": {
        "name": "pool-a-1",
        "labels": {
            contract.REGION_LABEL: "nyc3",
            "doks.digitalocean.com/node-pool": "ingress",
        },
        "annotations": {contract.ANCHOR_IPV4: "10.20.0.5"},
        "deletionTimestamp": None,
    },
    "spec": {
        "providerID": "digitalocean://101",
        "unschedulable": False,
        "taints": [{"key": "k", "effect": "NoSchedule", "value": "v"}],
    },
    "status": {
        "conditions": [{"type": "Ready", "status": "True"}],
        "nodeInfo": {"kubeletVersion": "v1.31.1"},
    },
}
POD: Obj = {
    "metadata": {
        "name": "web-1",
        "namespace": "apps",
        "annotations": {contract.ANCHOR_IPV4: "10.20.0.5"},
    },
    "spec": {"nodeName": "pool-a-1"},
}

# --- the differences, each with its reason ---------------------------------------------------

READ_BUT_NOT_WATCHED = {
    "service": {
        "metadata.uid": "identifies the Service in Events; fixed for its life",
        "metadata.creationTimestamp": "orders conflicting claims; fixed for the Service's life",
        "metadata.resourceVersion": "guards the function's own patches; changes on every write",
        "metadata.finalizers": "the function's own write (its cleanup finalizer); not an input",
        "spec.externalIPs": "the function's own write (make-before-break); not an input",
        "status": "status.loadBalancer is the function's own write in LoadBalancer-class "
        "mode; not an input",
        "status.loadBalancer": "the function's own write; not an input",
        "status.loadBalancer.ingress": "the function's own write; not an input",
        "status.loadBalancer.ingress[].ip": "the function's own write; not an input",
        "status.loadBalancer.ingress[].ipMode": "the function's own write; not an input",
        "metadata.annotations.*": "the core looks up single keys: compared separately below",
    },
    "endpointslice": {
        "endpoints[].targetRef.namespace": "a slice's Pods are in the slice's namespace",
    },
    "node": {},
    "pod": {
        "spec.nodeName": "a Pod is bound once, before it can back a ready endpoint; the slice "
        "names the node of every endpoint",
    },
}
WATCHED_BUT_NOT_READ = {
    "service": {
        annotation(contract.HOLDER_NODE): "indexes which Services a Node's change concerns; "
        "not part of the Service's inputs",
    },
    "endpointslice": {
        "metadata.name": "the slice's key in the forwarder's index (the function groups by label)",
        "ports": "the TCP target ports the forwarder probes (kept, never compared: no change)",
    },
    "node": {
        "metadata.uid": "names the Node in the forwarder's Events about it (kept, never "
        "compared: no change)",
    },
    "pod": {},
}


def function_service(raw: Recorder) -> object:
    translate.is_managed(raw)
    return translate.service(raw, ())


def function_slice(raw: Recorder) -> object:
    return translate.services((), (raw,))


SIDES: dict[str, tuple[Obj, Callable[[Any], object], Callable[[Any], object]]] = {
    "service": (SERVICE, function_service, projections.service),
    "endpointslice": (SLICE, function_slice, projections.endpoint_slice),
    "node": (NODE, translate.node, projections.node),
    "pod": (POD, translate.pod, projections.pod),
}


def leaves(paths: set[str]) -> set[str]:
    """Paths no other path extends: the fields, not the objects that hold them."""
    return {p for p in paths if not any(q.startswith((p + ".", p + "[]")) for q in paths)}


@pytest.mark.parametrize("kind", sorted(SIDES))
def test_every_field_the_function_reads_is_watched_by_the_forwarder(kind: str) -> None:
    obj, function, projection = SIDES[kind]
    function_reads = leaves(reads(function, obj))
    forwarder_reads = leaves(reads(projection, obj))
    unwatched = function_reads - forwarder_reads - set(READ_BUT_NOT_WATCHED[kind])
    assert not unwatched, (
        f"the function reads {sorted(unwatched)} of a {kind}, which the forwarder's projection "
        "ignores: add it to projections.py (or, if it is no placement input, to "
        "READ_BUT_NOT_WATCHED with the reason)"
    )


@pytest.mark.parametrize("kind", sorted(SIDES))
def test_the_forwarder_watches_nothing_the_function_ignores(kind: str) -> None:
    obj, function, projection = SIDES[kind]
    function_reads = leaves(reads(function, obj))
    forwarder_reads = leaves(reads(projection, obj))
    # A whole mapping the function reads (a Service's annotations) covers each key in it.
    wholes = {p.removesuffix("*") for p in function_reads if p.endswith(".*")}
    read = {p for p in forwarder_reads if p in function_reads or p.startswith(tuple(wholes))}
    extra = forwarder_reads - read - set(WATCHED_BUT_NOT_READ[kind])
    assert not extra, f"the forwarder watches {sorted(extra)} of a {kind}; the function does not"


@pytest.mark.parametrize("kind", sorted(SIDES))
def test_the_listed_exceptions_are_still_true(kind: str) -> None:
    """An exception that stopped being one (both now read it, or neither) is dropped."""
    obj, function, projection = SIDES[kind]
    function_reads = reads(function, obj)
    forwarder_reads = reads(projection, obj)
    for path in READ_BUT_NOT_WATCHED[kind]:
        assert path in function_reads and path not in forwarder_reads, path
    for path in WATCHED_BUT_NOT_READ[kind]:
        assert path in forwarder_reads, path


def annotations_the_core_looks_up(monkeypatch: pytest.MonkeyPatch) -> set[str]:
    """Every Service annotation the core looks up while planning a managed Service."""
    looked_up: set[str] = set()
    look_up = model.annotation

    def recording(pairs: model.Annotations, key: str) -> str | None:
        looked_up.add(key)
        return look_up(pairs, key)

    monkeypatch.setattr(model, "annotation", recording)
    [service] = translate.services([SERVICE], [SLICE])
    plan(
        Observation(
            cluster=Cluster("c0ffee", "nyc3"),
            services=(service,),
            nodes=(translate.node(NODE),),
            pods=(translate.pod(POD),),
            reserved_ips=(ReservedIP("203.0.113.10", "nyc3", 101, False),),
        )
    )
    return looked_up


def test_the_service_annotations_the_core_reads_are_the_forwarders_inputs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    core = annotations_the_core_looks_up(monkeypatch)
    assert set(contract.INPUT_ANNOTATIONS) <= core  # the recording saw the intent being read
    watched = {
        path.removeprefix(annotation(""))
        for path in reads(projections.service, SERVICE)
        if path.startswith(annotation("")) and path != annotation(contract.HOLDER_NODE)
    }
    # The function's own status annotations are read to avoid repeating itself, never as input.
    assert core - set(contract.STATUS_ANNOTATIONS) == watched == set(contract.INPUT_ANNOTATIONS)


@pytest.mark.parametrize(
    "conditions",
    [
        None,
        {},
        {"ready": None},
        {"ready": False},
        {"ready": True, "serving": False},
        {"ready": False, "serving": True, "terminating": True},
        {"terminating": None},
    ],
)
def test_both_read_endpoint_conditions_the_same_way(conditions: Obj | None) -> None:
    """Kubernetes' defaults (nil ready means ready, serving defaults to ready) are written
    twice, once per side: a difference would hide or invent a change."""
    raw = {"nodeName": "a", "conditions": conditions}
    endpoint = translate.endpoint(raw)
    [view] = projections.endpoint_slice({"metadata": {}, "endpoints": [raw]}).endpoints
    assert (endpoint.ready, endpoint.serving, endpoint.terminating) == (
        view.ready,
        view.serving,
        view.terminating,
    )
