"""functions-framework entry point, for running the function locally or on any host:
``functions-framework --source lib/floating_ip/entry_framework.py --target reconcile``."""

from __future__ import annotations

import json
import logging
import sys

import flask
import functions_framework

from floating_ip.handler import Request, handle

logging.basicConfig(stream=sys.stdout, level=logging.INFO, format="%(message)s")


@functions_framework.http
def reconcile(request: flask.Request) -> flask.Response:
    response = handle(Request(request.method, dict(request.headers), request.get_data(cache=False)))
    return flask.Response(
        json.dumps(response.body), status=response.status, headers=response.headers
    )
