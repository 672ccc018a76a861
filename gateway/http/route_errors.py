"""Requests no route serves (unknown path, wrong method) answered in the caller's error shape.

aiohttp's router answers these with a text/plain "404: Not Found"; SDKs and clients of an
OpenAI-compatible server expect JSON they can parse. Matched routes pass straight through.
"""

from __future__ import annotations

from aiohttp import web

from gateway.errors import GatewayError, NotFound, render
from gateway.http.ids import new_ids


class _MethodNotAllowed(GatewayError):
    status = 405
    type = "invalid_request_error"
    code = "method_not_allowed"


@web.middleware
async def route_errors(request: web.Request, handler):
    exc = request.match_info.http_exception
    if exc is None:
        return await handler(request)
    if exc.status == 405:
        err: GatewayError = _MethodNotAllowed(f"{request.method} is not allowed on this path")
        headers = {"Allow": exc.headers.get("Allow", "")}
    elif exc.status == 404:
        err = NotFound("no such endpoint", code="unknown_url")
        headers = {}
    else:
        return await handler(request)
    headers["x-request-id"] = new_ids(None, None, False)[0]
    shape = "anthropic" if request.path.startswith("/v1/messages") else "openai"
    return web.Response(status=err.status, body=render(err, shape), headers=headers, content_type="application/json")
