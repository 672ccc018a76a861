"""What egress costs the gateway's HTTP client: CPU per request, and the time to open a connection,
for a TLS upstream reached directly on the plain path, directly with a provider's own `ca_bundle`
(an `Egress`), and through a CONNECT proxy (tunnel, then TLS inside it).

    .venv/bin/python benchmarks/egress_cost.py [--requests 3000] [--connections 100] [--rounds 3]

The upstream (aiohttp over TLS, certificate from a trustme CA) and the proxy
(tests/support/connect_proxy.py) run in a child process, so the CPU figures are the client's alone.
Requests are sequential on one kept-alive connection; connections are opened one after another.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import uvloop
import yarl

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gateway.providers.egress import Egress  # noqa: E402
from gateway.providers.transport import Upstreams  # noqa: E402

BODY = b'{"model":"m","messages":[{"role":"user","content":"hi"}]}'
HEADERS = {"content-type": "application/json", "authorization": "Bearer sk-bench"}


async def serve(cert_dir: str) -> None:
    from aiohttp import web

    from tests.support.connect_proxy import ConnectProxy

    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(os.path.join(cert_dir, "server.pem"))
    answer = b'{"id":"x","object":"chat.completion","choices":[]}'

    async def handle(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=answer, content_type="application/json")

    app = web.Application()
    app.router.add_post("/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ctx)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    proxy = ConnectProxy()
    proxy_url = await proxy.start()
    print(f"https://127.0.0.1:{port}/v1/chat/completions {proxy_url}", flush=True)
    await asyncio.Event().wait()


async def measure(up: Upstreams, url: yarl.URL, egress: Egress | None, n: int, conns: int) -> tuple[float, float]:
    for _ in range(50):  # warm up: connection, caches
        await (await up.post(url, HEADERS, BODY, connect_timeout=5, egress=egress)).read()
    cpu = time.process_time()
    for _ in range(n):
        await (await up.post(url, HEADERS, BODY, connect_timeout=5, egress=egress)).read()
    per_req_us = (time.process_time() - cpu) / n * 1e6
    await up.close()
    wall = time.perf_counter()
    for _ in range(conns):
        await (await up.post(url, HEADERS, BODY, connect_timeout=5, egress=egress)).read()
        await up.close()  # the next request opens a new connection
    per_conn_ms = (time.perf_counter() - wall) / conns * 1e3
    return per_req_us, per_conn_ms


async def main(args: argparse.Namespace, cert_dir: str, url: yarl.URL, proxy_url: str) -> None:
    ca = os.path.join(cert_dir, "ca.pem")
    plain_ctx = ssl.create_default_context(cafile=ca)
    direct = Egress.compile(proxy="", ca_bundle=ca, client_cert=None, client_key=None, file="bench", key="p")
    tunnel = Egress.compile(proxy=proxy_url, ca_bundle=ca, client_cert=None, client_key=None, file="bench", key="p")
    rows = [("plain path (no egress settings)", None), ("ca_bundle, direct", direct), ("ca_bundle, CONNECT proxy", tunnel)]
    results: dict[str, list[tuple[float, float]]] = {name: [] for name, _ in rows}
    for _ in range(args.rounds):  # rows interleaved, so drift on a shared machine hits each alike
        for name, egress in rows:
            results[name].append(await measure(Upstreams(ssl_context=plain_ctx), url, egress, args.requests,
                                               args.connections))
    print(f"medians of {args.rounds} rounds\n")
    print("| path | client CPU µs/request (keep-alive) | ms per new connection |\n|---|---|---|")
    for name, got in results.items():
        print(f"| {name} | {statistics.median(r for r, _ in got):.1f} | {statistics.median(c for _, c in got):.2f} |")


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--serve":
        uvloop.run(serve(sys.argv[2]))
        sys.exit(0)
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=3000)
    ap.add_argument("--connections", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    import trustme

    with tempfile.TemporaryDirectory() as d:
        ca = trustme.CA()
        ca.cert_pem.write_to_path(os.path.join(d, "ca.pem"))
        ca.issue_cert("127.0.0.1").private_key_and_cert_chain_pem.write_to_path(os.path.join(d, "server.pem"))
        child = subprocess.Popen([sys.executable, __file__, "--serve", d], stdout=subprocess.PIPE, text=True,
                                 env={**os.environ, "PYTHONPATH": str(ROOT)})
        try:
            assert child.stdout is not None
            upstream, proxy = child.stdout.readline().split()
            uvloop.run(main(args, d, yarl.URL(upstream), proxy))
        finally:
            child.terminate()
            child.wait()
