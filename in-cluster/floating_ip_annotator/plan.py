"""What to write, from what the object carries now: pure, so a rerun provably writes nothing."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from floating_ip_annotator.errors import IdentityMismatch, KubeRejected
from floating_ip_annotator.identity import DropletIdentity
from floating_ip_common.contract import ANCHOR_IPV4, DROPLET_ID, PROVIDER_ID_PREFIX


@dataclass(frozen=True)
class ObjectState:
    """What the annotator reads of a Pod or Node: checked, so nothing is written on a
    misread (an answer of the wrong shape is not a Kubernetes object)."""

    annotations: Mapping[str, str]
    resource_version: str
    provider_id: str | None


def object_state(current: Mapping[str, Any], what: str) -> ObjectState:
    meta = current.get("metadata")
    if not isinstance(meta, Mapping):
        raise KubeRejected(f"the Kubernetes API answered {what} without metadata")
    annotations = meta.get("annotations") or {}
    if not isinstance(annotations, Mapping) or not all(
        isinstance(value, str) for value in annotations.values()
    ):
        raise KubeRejected(
            f"the Kubernetes API answered {what} whose annotations are not a map of strings"
        )
    version = meta.get("resourceVersion")
    if not isinstance(version, str) or not version:
        raise KubeRejected(f"the Kubernetes API answered {what} without a resourceVersion")
    spec = current.get("spec") or {}
    provider_id = spec.get("providerID") if isinstance(spec, Mapping) else None
    if provider_id is not None and not isinstance(provider_id, str):
        raise KubeRejected(f"the Kubernetes API answered {what} whose providerID is not text")
    return ObjectState(annotations, version, provider_id)


def desired_annotations(identity: DropletIdentity) -> dict[str, str]:
    return {ANCHOR_IPV4: identity.anchor_ipv4, DROPLET_ID: str(identity.droplet_id)}


def annotation_patch(
    current: Mapping[str, str] | None, desired: Mapping[str, str], resource_version: str
) -> dict[str, Any] | None:
    """A JSON merge patch setting the annotations that differ, or None when none does.

    The resourceVersion makes the patch conditional: if the object changed since it was
    read, the API answers 409 and the caller reads again instead of writing blind.
    """
    differing = {key: value for key, value in desired.items() if (current or {}).get(key) != value}
    if not differing:
        return None
    return {"metadata": {"resourceVersion": resource_version, "annotations": differing}}


def check_node_droplet(node_name: str, provider_id: str | None, identity: DropletIdentity) -> None:
    """Refuse to annotate a Node whose providerID names another droplet than the metadata
    service does (a wrong NODE_NAME would otherwise put one droplet's anchor on another)."""
    if not provider_id or not provider_id.startswith(PROVIDER_ID_PREFIX):
        return
    named = provider_id.removeprefix(PROVIDER_ID_PREFIX)
    if named != str(identity.droplet_id):
        raise IdentityMismatch(
            f"node {node_name} has providerID {provider_id!r} but the metadata service says "
            f"this is droplet {identity.droplet_id}: is NODE_NAME from spec.nodeName?"
        )
