"""DigitalOcean Functions entry point (``web: raw``): ``main(event, context)``.

The platform hands the HTTP request over as ``event["http"]`` (lower-case header names, the
body as a string, base64 when ``isBase64Encoded``); older OpenWhisk runtimes use the
``__ow_*`` keys instead, so both are read.
"""

from __future__ import annotations

import base64
import binascii
import logging
import sys
from typing import Any

from floating_ip.handler import Request, Response, handle

# One summary line per invocation from us; the SDKs only when something goes wrong (azure-core
# would otherwise log every request's headers at INFO).
logging.basicConfig(stream=sys.stdout, level=logging.WARNING, format="%(message)s")
logging.getLogger("floating_ip").setLevel(logging.INFO)


def main(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    try:
        request = _request(event, context)
    except ValueError as error:
        return _reply(Response(400, {"error": str(error)}))
    try:
        return _reply(handle(request))
    except Exception as error:
        # A bug must still be answered in our JSON, not with the platform's bare error page.
        logging.getLogger("floating_ip").exception("unexpected failure")
        return _reply(Response(500, {"error": f"internal error: {type(error).__name__}"}))


def _request(event: dict[str, Any], context: Any) -> Request:
    http = event.get("http")
    if isinstance(http, dict):
        method, headers = http.get("method", ""), http.get("headers") or {}
        body, encoded = http.get("body") or "", bool(http.get("isBase64Encoded"))
    else:
        method, headers = event.get("__ow_method", ""), event.get("__ow_headers") or {}
        body, encoded = event.get("__ow_body") or "", bool(event.get("__ow_isBase64Encoded"))
    if not isinstance(headers, dict):
        raise ValueError("the request's headers are not an object")
    if not isinstance(body, str | bytes):
        raise ValueError("the request's body is not a string")
    if encoded:
        try:
            raw = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("isBase64Encoded is set but the body is not base64") from None
    else:
        try:
            raw = body.encode() if isinstance(body, str) else bytes(body)
        except UnicodeEncodeError:
            raise ValueError("the request's body is not valid Unicode text") from None
    remaining = None
    if context is not None and hasattr(context, "get_remaining_time_in_millis"):
        remaining = int(context.get_remaining_time_in_millis())
    return Request(str(method), {str(k): str(v) for k, v in headers.items()}, raw, remaining)


def _reply(response: Response) -> dict[str, Any]:
    return {"statusCode": response.status, "headers": response.headers, "body": response.body}
