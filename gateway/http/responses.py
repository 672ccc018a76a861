"""Building responses: errors in the caller's shape, and the headers every response carries."""

from __future__ import annotations

from aiohttp import web

from gateway.context import RequestContext
from gateway.errors import GatewayError, render


def common_headers(ctx: RequestContext) -> dict[str, str]:
    headers = {"x-request-id": ctx.request_id}
    if ctx.target is not None:
        headers["x-gateway-provider"] = ctx.target.provider
        headers["x-gateway-model"] = ctx.target.model
        headers["x-gateway-attempts"] = str(ctx.attempts)
    if ctx.response_headers:
        headers.update(ctx.response_headers)
    return headers


def error_response(ctx: RequestContext, err: GatewayError) -> web.Response:
    ctx.error = err
    ctx.status = err.status
    headers = common_headers(ctx)
    headers.update(err.headers)
    return web.Response(status=err.status, body=render(err, ctx.shape), headers=headers,
                        content_type="application/json")
