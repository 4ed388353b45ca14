"""The ``/v2`` routes the imitation serves: a request in plain data to an answer in plain data."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from testbed.do_imitation.model import ApiError, bad_request, not_found
from testbed.do_imitation.paths import match_template
from testbed.do_imitation.render import (
    action_json,
    cluster_json,
    droplet_json,
    firewall_json,
    paginate,
    reserved_ip_json,
    tag_json,
)
from testbed.do_imitation.world import World

T = TypeVar("T")


@dataclass(frozen=True)
class Reply:
    status: int
    body: Any = None  # JSON-able; None sends no body
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Call:
    params: dict[str, str]
    query: dict[str, list[str]]
    body: bytes
    base_url: str

    def json(self) -> Any:
        if not self.body:
            return None
        try:
            return json.loads(self.body)
        except ValueError:
            raise bad_request("error parsing request body") from None

    def arg(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None

    def int_param(self, name: str) -> int:
        text = self.params[name]
        if not text.isdigit():
            raise not_found()
        return int(text)

    def page(self, items: Sequence[T], list_path: str, *filters: str) -> tuple[list[T], Any]:
        number = _positive(self.arg("page"), 1)
        per_page = min(200, _positive(self.arg("per_page"), 20))
        kept = {name: value for name in filters if (value := self.arg(name)) is not None}
        return paginate(items, number, per_page, self.base_url + list_path, kept)


Handler = Callable[[World, Call], Reply]


def _positive(text: str | None, default: int) -> int:
    return int(text) if text and text.isdigit() and int(text) > 0 else default


def _listing(key: str, items: list[Any], links: Any, total: int) -> Reply:
    return Reply(200, {key: items, "links": links, "meta": {"total": total}})


# -- reserved IPs and actions -----------------------------------------------------------


def _reserved_ip(world: World, ip: str) -> dict[str, Any]:
    reserved = world.get_reserved_ip(ip)
    return reserved_ip_json(reserved, world.holder(reserved), world.is_locked(ip))


def list_reserved_ips(world: World, call: Call) -> Reply:
    ips = list(world.reserved_ips)
    chosen, links = call.page(ips, "/v2/reserved_ips")
    return _listing("reserved_ips", [_reserved_ip(world, ip) for ip in chosen], links, len(ips))


def get_reserved_ip(world: World, call: Call) -> Reply:
    return Reply(200, {"reserved_ip": _reserved_ip(world, call.params["reserved_ip"])})


def create_reserved_ip(world: World, call: Call) -> Reply:
    reserved, action = world.create_reserved_ip(call.json())
    links: dict[str, Any] = {}
    if action is not None and action.target_droplet is not None:
        base = call.base_url
        links = {
            "droplets": [
                {
                    "id": action.target_droplet,
                    "rel": "droplet",
                    "href": f"{base}/v2/droplets/{action.target_droplet}",
                }
            ],
            "actions": [
                {"id": action.id, "rel": "assign_ip", "href": f"{base}/v2/actions/{action.id}"}
            ],
        }
    return Reply(202, {"reserved_ip": _reserved_ip(world, reserved.ip), "links": links})


def delete_reserved_ip(world: World, call: Call) -> Reply:
    world.delete_reserved_ip(call.params["reserved_ip"])
    return Reply(204)


def post_reserved_ip_action(world: World, call: Call) -> Reply:
    action = world.post_reserved_ip_action(call.params["reserved_ip"], call.json())
    return Reply(201, {"action": action_json(action, with_project=True)})


def list_reserved_ip_actions(world: World, call: Call) -> Reply:
    ip = call.params["reserved_ip"]
    actions = world.list_ip_actions(ip)
    chosen, links = call.page(actions, f"/v2/reserved_ips/{ip}/actions")
    rendered = [action_json(a, with_project=False) for a in chosen]
    return _listing("actions", rendered, links, len(actions))


def get_reserved_ip_action(world: World, call: Call) -> Reply:
    world.get_reserved_ip(call.params["reserved_ip"])
    action = world.get_action(call.int_param("action_id"), call.params["reserved_ip"])
    return Reply(200, {"action": action_json(action, with_project=True)})


def get_action(world: World, call: Call) -> Reply:
    action = world.get_action(call.int_param("action_id"))
    return Reply(200, {"action": action_json(action, with_project=False)})


# -- droplets, tags, clusters -------------------------------------------------------------


def list_droplets(world: World, call: Call) -> Reply:
    droplets = world.list_droplets(tag_name=call.arg("tag_name"), name=call.arg("name"))
    chosen, links = call.page(droplets, "/v2/droplets", "tag_name", "name")
    return _listing("droplets", [droplet_json(d) for d in chosen], links, len(droplets))


def get_droplet(world: World, call: Call) -> Reply:
    droplet = world.get_droplet(call.int_param("droplet_id"))
    return Reply(200, {"droplet": droplet_json(droplet)})


def get_tag(world: World, call: Call) -> Reply:
    name = call.params["tag_id"]
    return Reply(200, {"tag": tag_json(name, world.get_tag(name), call.base_url)})


def create_tag(world: World, call: Call) -> Reply:
    name = world.create_tag(call.json())
    return Reply(201, {"tag": tag_json(name, world.get_tag(name), call.base_url)})


def list_clusters(world: World, call: Call) -> Reply:
    clusters = list(world.clusters.values())
    chosen, links = call.page(clusters, "/v2/kubernetes/clusters")
    rendered = [cluster_json(c) for c in chosen]
    return _listing("kubernetes_clusters", rendered, links, len(clusters))


def get_cluster(world: World, call: Call) -> Reply:
    cluster = world.get_cluster(call.params["cluster_id"])
    return Reply(200, {"kubernetes_cluster": cluster_json(cluster)})


# -- firewalls ----------------------------------------------------------------------------


def list_firewalls(world: World, call: Call) -> Reply:
    firewalls = list(world.firewalls.values())
    chosen, links = call.page(firewalls, "/v2/firewalls")
    rendered = [firewall_json(f) for f in chosen]
    return _listing("firewalls", rendered, links, len(firewalls))


def create_firewall(world: World, call: Call) -> Reply:
    return Reply(202, {"firewall": firewall_json(world.create_firewall(call.json()))})


def get_firewall(world: World, call: Call) -> Reply:
    return Reply(200, {"firewall": firewall_json(world.get_firewall(call.params["firewall_id"]))})


def replace_firewall(world: World, call: Call) -> Reply:
    firewall = world.replace_firewall(call.params["firewall_id"], call.json())
    return Reply(200, {"firewall": firewall_json(firewall)})


def delete_firewall(world: World, call: Call) -> Reply:
    world.delete_firewall(call.params["firewall_id"])
    return Reply(204)


def _firewall_change(operation: Callable[[World, str, Any], None]) -> Handler:
    """A rules or tags change: answered 204 without a body."""

    def handler(world: World, call: Call) -> Reply:
        operation(world, call.params["firewall_id"], call.json())
        return Reply(204)

    return handler


ROUTES: list[tuple[str, str, Handler]] = [
    ("GET", "/v2/reserved_ips", list_reserved_ips),
    ("POST", "/v2/reserved_ips", create_reserved_ip),
    ("GET", "/v2/reserved_ips/{reserved_ip}", get_reserved_ip),
    ("DELETE", "/v2/reserved_ips/{reserved_ip}", delete_reserved_ip),
    ("GET", "/v2/reserved_ips/{reserved_ip}/actions", list_reserved_ip_actions),
    ("POST", "/v2/reserved_ips/{reserved_ip}/actions", post_reserved_ip_action),
    ("GET", "/v2/reserved_ips/{reserved_ip}/actions/{action_id}", get_reserved_ip_action),
    ("GET", "/v2/actions/{action_id}", get_action),
    ("GET", "/v2/droplets", list_droplets),
    ("GET", "/v2/droplets/{droplet_id}", get_droplet),
    ("GET", "/v2/firewalls", list_firewalls),
    ("POST", "/v2/firewalls", create_firewall),
    ("GET", "/v2/firewalls/{firewall_id}", get_firewall),
    ("PUT", "/v2/firewalls/{firewall_id}", replace_firewall),
    ("DELETE", "/v2/firewalls/{firewall_id}", delete_firewall),
    ("POST", "/v2/firewalls/{firewall_id}/rules", _firewall_change(World.add_firewall_rules)),
    ("DELETE", "/v2/firewalls/{firewall_id}/rules", _firewall_change(World.delete_firewall_rules)),
    ("POST", "/v2/firewalls/{firewall_id}/tags", _firewall_change(World.add_firewall_tags)),
    ("DELETE", "/v2/firewalls/{firewall_id}/tags", _firewall_change(World.delete_firewall_tags)),
    ("GET", "/v2/tags/{tag_id}", get_tag),
    ("POST", "/v2/tags", create_tag),
    ("GET", "/v2/kubernetes/clusters", list_clusters),
    ("GET", "/v2/kubernetes/clusters/{cluster_id}", get_cluster),
]


def dispatch(world: World, method: str, path: str, call: Call) -> Reply:
    """Serve one call; errors of the API become their JSON answers (without request id)."""
    for route_method, template, handler in ROUTES:
        params = match_template(template, path)
        if params is not None and route_method == method:
            try:
                return handler(world, Call(params, call.query, call.body, call.base_url))
            except ApiError as error:
                return error_reply(error)
    message = f"The DigitalOcean imitation does not serve {method} {path}"
    return Reply(501, {"id": "not_implemented", "message": message})


def error_reply(error: ApiError) -> Reply:
    if error.body is not None:
        return Reply(error.status, error.body)
    return Reply(error.status, {"id": error.error_id, "message": error.message})
