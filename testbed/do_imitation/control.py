"""The HTTP control interface under ``/_imitation``: the test API for other processes.

Routes (JSON in and out; a 400 answer names the mistake):

    POST   /_imitation/reset                      back to an empty account
    POST   /_imitation/seed                       a seed document (see seed.py) -> ids made
    POST   /_imitation/tokens                     {"token", "scopes"?} accept another token
    POST   /_imitation/droplets                   droplet fields -> {"droplet": {...}}
    DELETE /_imitation/droplets/{droplet_id}      destroy a droplet
    POST   /_imitation/reserved_ips               {"ip", "region", "droplet_id"} -> {"ip"}
    POST   /_imitation/clusters                   {"id", "name", "region", "version"} -> {"id"}
    POST   /_imitation/clusters/{cluster_id}/nodes  node fields -> {"droplet": {...}}
    POST   /_imitation/tags                       {"name": "..."}
    POST   /_imitation/firewalls                  an API firewall body -> {"id"}
    GET    /_imitation/faults                     faults still armed
    POST   /_imitation/faults                     a fault object (faults.py) or a list of them
    DELETE /_imitation/faults                     disarm all
    GET    /_imitation/settings
    PUT    /_imitation/settings                   {"action_latency": s|null, "actions_to_fail": n,
                                                   "rate_limits": {"per_minute", "per_hour",
                                                   "minute_seconds", "hour_seconds"}}
    POST   /_imitation/actions/complete           finish pending actions -> {"completed": n}
    GET    /_imitation/requests?method=&path=     the request log (path: a spec template)
    DELETE /_imitation/requests                   clear the log
    GET    /_imitation/violations                 contract violations so far
    DELETE /_imitation/violations                 the same, and forget them
    GET    /_imitation/state                      everything, rendered as the API would
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

from testbed.do_imitation.app import ImitationApp
from testbed.do_imitation.faults import Fault
from testbed.do_imitation.paths import match_template
from testbed.do_imitation.routes import Reply
from testbed.do_imitation.seed import apply_seed

CONTROL_PREFIX = "/_imitation"

ControlHandler = Callable[[ImitationApp, dict[str, str], dict[str, list[str]], Any], Reply]


def handle_control(app: ImitationApp, method: str, path: str, query: str, body: bytes) -> Reply:
    route = path[len(CONTROL_PREFIX) :] or "/"
    for route_method, template, handler in _ROUTES:
        params = match_template(template, route)
        if params is not None and route_method == method:
            try:
                data = json.loads(body) if body else None
                return handler(app, params, parse_qs(query), data)
            except (ValueError, KeyError, TypeError) as error:
                return Reply(400, {"error": f"{type(error).__name__}: {error}"})
    known = [f"{m} {CONTROL_PREFIX}{t}" for m, t, _ in _ROUTES]
    return Reply(404, {"error": f"no control route {method} {path}", "routes": known})


def _object(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ValueError("the body must be a JSON object")
    return data


def _done() -> Reply:
    return Reply(204)


def _reset(app: ImitationApp, _p: dict[str, str], _q: dict[str, list[str]], _d: Any) -> Reply:
    app.reset()
    return _done()


def _seed(app: ImitationApp, _p: dict[str, str], _q: dict[str, list[str]], data: Any) -> Reply:
    return Reply(200, apply_seed(app, data))


def _token(app: ImitationApp, _p: dict[str, str], _q: dict[str, list[str]], data: Any) -> Reply:
    body = _object(data)
    scopes = body.get("scopes")
    app.add_token(str(body["token"]), None if scopes is None else [str(s) for s in scopes])
    return _done()


def _droplet(app: ImitationApp, _p: dict[str, str], _q: dict[str, list[str]], data: Any) -> Reply:
    droplet = app.add_droplet(**_object(data))
    return Reply(201, {"droplet": dataclasses.asdict(droplet)})


def _remove_droplet(
    app: ImitationApp, params: dict[str, str], _q: dict[str, list[str]], _d: Any
) -> Reply:
    app.remove_droplet(int(params["droplet_id"]))
    return _done()


def _reserved_ip(
    app: ImitationApp, _p: dict[str, str], _q: dict[str, list[str]], data: Any
) -> Reply:
    return Reply(201, {"ip": app.add_reserved_ip(**_object(data))})


def _cluster(app: ImitationApp, _p: dict[str, str], _q: dict[str, list[str]], data: Any) -> Reply:
    return Reply(201, {"id": app.add_cluster(**_object(data or {}))})


def _node(app: ImitationApp, params: dict[str, str], _q: dict[str, list[str]], data: Any) -> Reply:
    droplet = app.add_doks_node(params["cluster_id"], **_object(data or {}))
    return Reply(201, {"droplet": dataclasses.asdict(droplet)})


def _tag(app: ImitationApp, _p: dict[str, str], _q: dict[str, list[str]], data: Any) -> Reply:
    app.add_tag(str(_object(data)["name"]))
    return _done()


def _firewall(app: ImitationApp, _p: dict[str, str], _q: dict[str, list[str]], data: Any) -> Reply:
    return Reply(201, {"id": app.add_firewall(_object(data))})


def _faults(app: ImitationApp, _p: dict[str, str], _q: dict[str, list[str]], _d: Any) -> Reply:
    return Reply(200, {"faults": [f.to_json() for f in app.pending_faults()]})


def _add_faults(
    app: ImitationApp, _p: dict[str, str], _q: dict[str, list[str]], data: Any
) -> Reply:
    faults = [Fault.from_json(item) for item in (data if isinstance(data, list) else [data])]
    for fault in faults:
        app.inject(fault)
    return _done()


def _clear_faults(
    app: ImitationApp, _p: dict[str, str], _q: dict[str, list[str]], _d: Any
) -> Reply:
    app.clear_faults()
    return _done()


def _settings(app: ImitationApp, _p: dict[str, str], _q: dict[str, list[str]], _d: Any) -> Reply:
    return Reply(200, app.settings())


def _change_settings(
    app: ImitationApp, _p: dict[str, str], _q: dict[str, list[str]], data: Any
) -> Reply:
    changes = _object(data)
    unknown = set(changes) - {"action_latency", "actions_to_fail", "rate_limits"}
    if unknown:
        raise ValueError(f"unknown settings {sorted(unknown)}")
    if "action_latency" in changes:
        latency = changes["action_latency"]
        app.set_action_latency(None if latency is None else float(latency))
    if "actions_to_fail" in changes:
        app.fail_next_actions(int(changes["actions_to_fail"]))
    if "rate_limits" in changes:
        app.set_rate_limits(**_object(changes["rate_limits"]))
    return Reply(200, app.settings())


def _complete(app: ImitationApp, _p: dict[str, str], _q: dict[str, list[str]], _d: Any) -> Reply:
    return Reply(200, {"completed": app.complete_pending_actions()})


def _requests(app: ImitationApp, _p: dict[str, str], query: dict[str, list[str]], _d: Any) -> Reply:
    method = query.get("method", ["*"])[0]
    path = query.get("path", [None])[0]
    return Reply(200, {"requests": [r.to_json() for r in app.requests(method, path)]})


def _clear_requests(
    app: ImitationApp, _p: dict[str, str], _q: dict[str, list[str]], _d: Any
) -> Reply:
    app.clear_requests()
    return _done()


def _violations(app: ImitationApp, _p: dict[str, str], _q: dict[str, list[str]], _d: Any) -> Reply:
    return Reply(200, {"violations": [dataclasses.asdict(v) for v in app.contract_violations()]})


def _take_violations(
    app: ImitationApp, _p: dict[str, str], _q: dict[str, list[str]], _d: Any
) -> Reply:
    taken = app.take_contract_violations()
    return Reply(200, {"violations": [dataclasses.asdict(v) for v in taken]})


def _state(app: ImitationApp, _p: dict[str, str], _q: dict[str, list[str]], _d: Any) -> Reply:
    return Reply(200, app.snapshot())


_ROUTES: list[tuple[str, str, ControlHandler]] = [
    ("POST", "/reset", _reset),
    ("POST", "/seed", _seed),
    ("POST", "/tokens", _token),
    ("POST", "/droplets", _droplet),
    ("DELETE", "/droplets/{droplet_id}", _remove_droplet),
    ("POST", "/reserved_ips", _reserved_ip),
    ("POST", "/clusters", _cluster),
    ("POST", "/clusters/{cluster_id}/nodes", _node),
    ("POST", "/tags", _tag),
    ("POST", "/firewalls", _firewall),
    ("GET", "/faults", _faults),
    ("POST", "/faults", _add_faults),
    ("DELETE", "/faults", _clear_faults),
    ("GET", "/settings", _settings),
    ("PUT", "/settings", _change_settings),
    ("POST", "/actions/complete", _complete),
    ("GET", "/requests", _requests),
    ("DELETE", "/requests", _clear_requests),
    ("GET", "/violations", _violations),
    ("DELETE", "/violations", _take_violations),
    ("GET", "/state", _state),
]
