"""What tools/uninstall.py cleans with: the namespaces and, in relay mode, the cluster."""

from __future__ import annotations

from typing import Any

import pytest

from floating_ip_common import contract
from tools.uninstall import cleaning_env, marked

CLUSTER = {"KUBE_API_URL": "https://203.0.113.1", "KUBE_CA_DATA": "Q0E="}


@pytest.mark.parametrize(
    ("env", "marked_in", "expected"),
    [
        ({"NAMESPACES": ""}, {"apps"}, {"NAMESPACES": ""}),  # all already
        ({"NAMESPACES": "*"}, {"apps"}, {"NAMESPACES": "*"}),
        ({"NAMESPACES": "edge"}, set(), {"NAMESPACES": "edge"}),
        ({"NAMESPACES": "edge, web"}, {"apps", "edge"}, {"NAMESPACES": "apps,edge,web"}),
        (
            {"CLUSTER_ACCESS": "relay"},
            set(),
            {"CLUSTER_ACCESS": "callback", **CLUSTER},
        ),
        (
            {"CLUSTER_ACCESS": "callback", "KUBE_API_URL": "https://198.51.100.2"},
            set(),
            {"CLUSTER_ACCESS": "callback", "KUBE_API_URL": "https://198.51.100.2"},
        ),
    ],
)
def test_the_cleaning_reaches_every_marked_namespace_and_the_cluster(
    env: dict[str, str], marked_in: set[str], expected: dict[str, str]
) -> None:
    assert cleaning_env(env, marked_in, CLUSTER) == expected


@pytest.mark.parametrize(
    ("metadata", "ours"),
    [
        ({"finalizers": [contract.FINALIZER]}, True),
        ({"annotations": {contract.STATUS: "ok"}}, True),
        ({"annotations": {contract.ADDRESS: "auto"}}, False),  # the user's own, kept
        ({"finalizers": ["example.com/other"], "annotations": None}, False),
        ({}, False),
    ],
)
def test_a_service_is_marked_by_our_finalizer_or_status(
    metadata: dict[str, Any], ours: bool
) -> None:
    assert marked({"metadata": metadata}) is ours
