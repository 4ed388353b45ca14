"""functions-framework entry point, for running the function locally or on any host:
``functions-framework --source lib/floating_ip/entry_functions_framework.py --target reconcile``."""

from __future__ import annotations

import json
import logging
import sys

import flask
import functions_framework

from floating_ip.handler import Request, handle

# One summary line per invocation from us; the SDKs only when something goes wrong (azure-core
# would otherwise log every request's headers at INFO).
logging.basicConfig(stream=sys.stdout, level=logging.WARNING, format="%(message)s")
logging.getLogger("floating_ip").setLevel(logging.INFO)


@functions_framework.http
def reconcile(request: flask.Request) -> flask.Response:
    response = handle(Request(request.method, dict(request.headers), request.get_data(cache=False)))
    return flask.Response(
        json.dumps(response.body), status=response.status, headers=response.headers
    )
