"""The fixed reference proxy the gateway is compared with (do not add features to it).

A single aiohttp + uvloop process with one shared ClientSession (unlimited pool, keep-alive) that
reads the request body, forwards it unchanged to the upstream, and streams the upstream response
back with iter_any(), nothing else.

    python benchmarks/reference_proxy.py PORT UPSTREAM_URL
"""

from __future__ import annotations

import sys

import aiohttp
import uvloop
from aiohttp import web

UPSTREAM = sys.argv[2].rstrip("/") if len(sys.argv) > 2 else "http://127.0.0.1:9000"
SESSION = web.AppKey("session", aiohttp.ClientSession)


async def session_ctx(app: web.Application):
    app[SESSION] = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0, keepalive_timeout=60))
    yield
    await app[SESSION].close()


async def proxy(request: web.Request) -> web.StreamResponse:
    body = await request.read()
    headers = {"Content-Type": request.headers.get("Content-Type", "application/json")}
    async with request.app[SESSION].post(UPSTREAM + request.path, data=body, headers=headers) as up:
        resp = web.StreamResponse(status=up.status, headers={"Content-Type": up.headers.get("Content-Type", "")})
        await resp.prepare(request)
        async for chunk in up.content.iter_any():
            await resp.write(chunk)
        await resp.write_eof()
        return resp


def main() -> None:
    app = web.Application()
    app.cleanup_ctx.append(session_ctx)
    app.router.add_post("/{tail:.*}", proxy)
    uvloop.install()
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=lambda *_: None, backlog=4096)


if __name__ == "__main__":
    main()
