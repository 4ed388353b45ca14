"""Which opted-in Services each change affects (and that non-changes affect none)."""

from __future__ import annotations

from dataclasses import replace

from floating_ip_forwarder.forwarding import watched_kinds
from floating_ip_forwarder.forwarding.index import ClusterIndex, stored
from floating_ip_forwarder.forwarding.projections import (
    EndpointView,
    Indexed,
    Kind,
    NodeView,
    PodView,
    ServiceInputs,
    ServiceView,
    SliceView,
)

NS = "apps"


def svc(
    name: str,
    address: str | None = "203.0.113.10",
    holder: str | None = None,
    ports: tuple[tuple[int, str], ...] = ((80, "TCP"),),
    namespace: str = NS,
) -> ServiceView:
    inputs = (
        ServiceInputs(address, None, None, ports, "Cluster", "ClusterIP", None, ())
        if address
        else None
    )
    return ServiceView((namespace, name), inputs, holder)


def ep(node: str, pod: str, ready: bool = True) -> EndpointView:
    return EndpointView(node, pod, ready, ready, False)


def slc(name: str, service: str | None, *endpoints: EndpointView, namespace: str = NS) -> SliceView:
    # Sorted, as the projection sorts them.
    return SliceView((namespace, name), service, tuple(sorted(endpoints, key=repr)))


def node(name: str, ready: str = "True", unschedulable: bool = False) -> NodeView:
    return NodeView(name, ready, unschedulable, False, (), "digitalocean://1", "nyc3", None)


def web_index() -> ClusterIndex:
    """``web`` (opted in, IP held by n1) with endpoints on n1 and n2; ``plain`` (not opted in)
    with an endpoint on n3; nodes n1..n4."""
    index = ClusterIndex()
    index.upsert(svc("web", holder="n1"))
    index.upsert(svc("plain", address=None))
    index.upsert(slc("web-a", "web", ep("n1", "web-1"), ep("n2", "web-2")))
    index.upsert(slc("plain-a", "plain", ep("n3", "plain-1")))
    for name in ("n1", "n2", "n3", "n4"):
        index.upsert(node(name))
    return index


WEB = frozenset({(NS, "web")})
NONE: frozenset[tuple[str, str]] = frozenset()


def test_services() -> None:
    index = ClusterIndex()
    assert index.upsert(svc("web")) == WEB, "opting in"
    assert index.upsert(svc("web")) == NONE, "no change"
    assert index.upsert(svc("web", holder="n1")) == NONE, "the function wrote its holder"
    assert index.upsert(svc("web", ports=((443, "UDP"),))) == WEB, "ports"
    assert index.upsert(svc("plain", address=None)) == NONE, "not opted in"
    assert index.upsert(svc("web", address=None)) == WEB, "opting out"
    assert index.upsert(svc("web", address=None)) == NONE, "still out"
    assert index.upsert(svc("web")) == WEB
    assert index.remove(Kind.SERVICE, (NS, "web")) == WEB, "deleted"
    assert index.remove(Kind.SERVICE, (NS, "plain")) == NONE, "deleted, never opted in"


def test_services_sharing_an_address_are_named_together() -> None:
    index = ClusterIndex()
    index.upsert(svc("a", "203.0.113.1"))
    index.upsert(svc("b", "203.0.113.1"))
    index.upsert(svc("c", "203.0.113.2"))
    both = frozenset({(NS, "a"), (NS, "b")})
    assert index.upsert(svc("a", "203.0.113.1", ports=((53, "UDP"),))) == both
    # Moving away from a shared address: the one left behind may now get the IP.
    everyone = frozenset({(NS, "a"), (NS, "b"), (NS, "c")})
    assert index.upsert(svc("a", "203.0.113.2")) == everyone
    assert index.remove(Kind.SERVICE, (NS, "c")) == frozenset({(NS, "a"), (NS, "c")})


def test_endpoint_slices() -> None:
    index = web_index()
    same = slc("web-a", "web", ep("n2", "web-2"), ep("n1", "web-1"))
    assert index.upsert(same) == NONE, "unchanged"
    assert index.upsert(slc("web-a", "web", ep("n1", "web-1"), ep("n2", "web-2", False))) == WEB
    assert index.upsert(slc("web-b", "web", ep("n4", "web-3"))) == WEB, "a second slice"
    assert index.upsert(slc("plain-a", "plain", ep("n4", "plain-1"))) == NONE, "not opted in"
    assert index.upsert(slc("orphan", None, ep("n4", "x"))) == NONE, "no service label"
    assert index.remove(Kind.ENDPOINT_SLICE, (NS, "web-b")) == WEB
    assert index.remove(Kind.ENDPOINT_SLICE, (NS, "web-b")) == NONE, "already gone"
    relabelled = slc("web-a", "plain", ep("n1", "web-1"))
    assert index.upsert(relabelled) == WEB, "moved away from web"


def test_slices_seen_before_opt_in_count_once_it_opts_in() -> None:
    index = web_index()
    assert index.upsert(svc("plain")) == frozenset({(NS, "plain")}) | WEB  # shares web's IP
    assert index.upsert(node("n3", ready="False")) == frozenset({(NS, "plain")})


def test_nodes() -> None:
    index = web_index()
    assert index.upsert(node("n2")) == NONE, "heartbeat: same projection"
    assert index.upsert(node("n2", ready="False")) == WEB, "endpoint node not ready"
    assert index.upsert(node("n1", unschedulable=True)) == WEB, "holder cordoned"
    assert index.upsert(node("n3", ready="False")) == NONE, "only a non-opted-in endpoint"
    assert index.upsert(node("n4", ready="Unknown")) == NONE, "nothing on it"
    assert index.upsert(node("n5")) == NONE, "a new empty node"
    assert index.remove(Kind.NODE, "n1") == WEB, "holder deleted"
    assert index.remove(Kind.NODE, "n9") == NONE, "unknown node"


def test_a_node_uid_is_the_latest_seen_and_none_for_an_unknown_node() -> None:
    index = web_index()
    assert index.node_uid("n1") is None, "none in the object"
    assert index.upsert(replace(node("n1"), uid="u-1")) == NONE, "not a placement input"
    assert index.node_uid("n1") == "u-1"
    assert index.node_uid("n9") is None


def test_holder_without_endpoint_still_links_the_node() -> None:
    index = web_index()
    index.upsert(svc("web", holder="n4"))
    assert index.upsert(node("n4", ready="False")) == WEB


def test_pods() -> None:
    index = web_index()
    assert index.upsert(PodView((NS, "web-1"), None)) == NONE, "no anchor, as before"
    assert index.upsert(PodView((NS, "web-1"), "10.20.0.5")) == WEB, "anchor written"
    assert index.upsert(PodView((NS, "web-1"), "10.20.0.5")) == NONE, "status update"
    assert index.upsert(PodView((NS, "plain-1"), "10.20.0.6")) == NONE, "backs no opted-in"
    assert index.upsert(PodView(("other", "web-1"), "10.20.0.7")) == NONE, "other namespace"
    assert index.remove(Kind.POD, (NS, "web-1")) == WEB, "anchored pod deleted"
    assert index.remove(Kind.POD, (NS, "web-2")) == NONE, "pod without anchor deleted"


def test_relist_finds_changes_and_deletions_in_its_scope_only() -> None:
    index = web_index()
    index.upsert(svc("db", "203.0.113.99", namespace="other"))
    listed = [svc("web", holder="n1", ports=((8080, "TCP"),))]
    affected, changes = index.replace(Kind.SERVICE, NS, listed)
    assert (affected, changes) == (WEB, 1)
    assert index.opted_in() == frozenset({(NS, "web"), ("other", "db")})
    affected, changes = index.replace(Kind.SERVICE, NS, [])
    assert (affected, changes) == (WEB, 1)
    assert index.opted_in() == frozenset({("other", "db")})
    affected, _ = index.replace(Kind.NODE, None, [node("n1"), node("n2")])
    assert affected == NONE


def test_a_relist_without_the_views_the_index_does_not_store_answers_the_same() -> None:
    """The watcher drops an opted-out Service and a Pod without an anchor from a list as it
    reads it: an index fed the whole list and one fed only the stored views must agree."""
    relists: list[tuple[Kind, list[Indexed]]] = [
        (Kind.SERVICE, [svc("web", address=None, holder="n1"), svc("plain", address=None)]),
        (Kind.SERVICE, [svc("web", holder="n1"), svc("plain", address=None)]),
        (Kind.POD, [PodView((NS, "web-1"), None), PodView((NS, "web-2"), "10.20.0.5")]),
        (Kind.POD, [PodView((NS, "web-1"), "10.20.0.6"), PodView((NS, "web-2"), None)]),
    ]
    whole, filtered = web_index(), web_index()
    for kind, listed in relists:
        kept = [view for view in listed if stored(view)]
        assert len(kept) < len(listed), "each relist has something to drop"
        assert whole.replace(kind, NS, listed) == filtered.replace(kind, NS, kept)
        assert whole.opted_in() == filtered.opted_in()
        assert whole.keys(kind, NS) == filtered.keys(kind, NS)


def test_lists_drop_only_opted_out_services_and_pods_without_an_anchor() -> None:
    assert not watched_kinds.SERVICES.listed(svc("plain", address=None, holder="n1"))
    assert watched_kinds.SERVICES.listed(svc("web"))
    assert not watched_kinds.PODS.listed(PodView((NS, "web-1"), None))
    assert watched_kinds.PODS.listed(PodView((NS, "web-1"), "10.20.0.5"))
    assert watched_kinds.ENDPOINT_SLICES.listed(slc("plain-a", "plain", ep("n3", "plain-1")))
    assert watched_kinds.NODES.listed(node("n1"))


def test_relist_of_unchanged_objects_affects_nothing() -> None:
    index = web_index()
    affected, changes = index.replace(
        Kind.ENDPOINT_SLICE,
        None,
        [
            slc("web-a", "web", ep("n1", "web-1"), ep("n2", "web-2")),
            slc("plain-a", "plain", ep("n3", "plain-1")),
        ],
    )
    assert (affected, changes) == (NONE, 0)


def test_the_index_keeps_every_slice_and_node_and_counts_what_it_keeps() -> None:
    index = web_index()
    assert stored(slc("orphan", None)) and stored(node("n9"))
    assert index.node_names() == frozenset({"n1", "n2", "n3", "n4"})
    index.upsert(PodView((NS, "web-1"), "10.20.0.5"))
    assert index.size() == {"services": 1, "endpointslices": 2, "nodes": 4, "anchored_pods": 1}


def test_services_on_several_nodes_are_all_named() -> None:
    index = web_index()
    index.upsert(svc("api", "203.0.113.20", holder="n4"))
    assert index.services_on(["n2", "n4"]) == WEB | {(NS, "api")}


def test_deleting_a_node_never_seen_affects_nothing_even_if_a_service_names_it() -> None:
    index = web_index()
    index.upsert(svc("web", holder="n9"))  # a stale holder annotation
    assert index.remove(Kind.NODE, "n9") == NONE


def test_a_relist_names_every_service_whose_objects_went_away() -> None:
    index = web_index()
    index.upsert(svc("api", "203.0.113.20"))
    index.upsert(slc("api-a", "api", ep("n3", "api-1")))
    affected, changes = index.replace(Kind.ENDPOINT_SLICE, NS, [])
    assert (affected, changes) == (WEB | {(NS, "api")}, 2)


def test_opting_out_of_a_shared_address_names_the_one_left_behind() -> None:
    index = ClusterIndex()
    index.upsert(svc("a", "203.0.113.1"))
    index.upsert(svc("b", "203.0.113.1"))
    assert index.upsert(svc("a", address=None)) == frozenset({(NS, "a"), (NS, "b")})


def test_a_slice_that_is_gone_or_relabelled_no_longer_links_its_nodes() -> None:
    index = web_index()
    index.upsert(slc("web-b", "web", ep("n4", "web-3")))
    assert index.remove(Kind.ENDPOINT_SLICE, (NS, "web-b")) == WEB
    assert index.upsert(node("n4", ready="False")) == NONE, "web's endpoint on n4 went away"
    assert index.upsert(node("n2", ready="Unknown")) == WEB, "web-a still links n2"
    index.upsert(slc("web-a", "plain", ep("n1", "web-1"), ep("n2", "web-2")))  # relabelled
    assert index.upsert(node("n2", ready="False")) == NONE, "n2 backs no opted-in Service"
    assert index.upsert(node("n1", ready="False")) == WEB, "still web's holder"
    assert index.probe_targets() == {}
