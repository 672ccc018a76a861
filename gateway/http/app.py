"""The aiohttp application: routes, and the services it owns for its lifetime (cleanup context).

Stage order of a request is in `gateway.http.flow`. Start-up builds, once per process: the upstream
HTTP session (keep-alive pool), the token counter, the store and the recorder. Shutdown drains them.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator

import aiohttp
import orjson
from aiohttp import web

from gateway.alerts import AlertEvaluator, Notifier
from gateway.config.loader import LoadedConfig
from gateway.errors import GatewayError, Unauthorized
from gateway.http import admin, alerts_api, console_api, dashboard, feedback
from gateway.http.flow import new_context, serve
from gateway.http.responses import error_response
from gateway.http.route_errors import route_errors
from gateway.http.state import STATE, GatewayState
from gateway.providers.transport import Upstreams
from gateway.records import multiproc
from gateway.records.recorder import Recorder
from gateway.runtime import Services, compile_runtime, start_runtime
from gateway.shadow.runner import Shadows
from gateway.store import open_store
from gateway.store.revocation import RevocationCache
from gateway.tokens import Tokenizer

log = logging.getLogger("gateway.app")

ALERTS: web.AppKey[AlertEvaluator] = web.AppKey("alert_evaluator", AlertEvaluator)


async def chat_completions(request: web.Request) -> web.StreamResponse:
    return await serve(request, "chat")


async def embeddings(request: web.Request) -> web.StreamResponse:
    return await serve(request, "embeddings")


async def messages(request: web.Request) -> web.StreamResponse:
    return await serve(request, "messages")


async def responses(request: web.Request) -> web.StreamResponse:
    return await serve(request, "responses")


async def completions(request: web.Request) -> web.StreamResponse:
    return await serve(request, "completions")


async def moderations(request: web.Request) -> web.StreamResponse:
    return await serve(request, "moderations")


async def count_tokens(request: web.Request) -> web.StreamResponse:
    return await serve(request, "count_tokens")


async def list_models(request: web.Request) -> web.Response:
    state = request.app[STATE]
    ctx = new_context(request, "models", state)
    try:
        principal = state.runtime.keys.authenticate(request.headers)
        if await state.runtime.services.revocations.is_revoked(principal.key_id):
            raise Unauthorized("this API key has been revoked", code="revoked_api_key")
    except GatewayError as err:
        return error_response(ctx, err)
    data = [{"id": alias, "object": "model", "created": 0, "owned_by": "gateway"}
            for alias in state.runtime.aliases_for(principal)]
    return web.Response(body=orjson.dumps({"object": "list", "data": data}), content_type="application/json",
                        headers={"x-request-id": ctx.request_id})


async def _services(app: web.Application) -> AsyncIterator[None]:
    state = app[STATE]
    services = state.runtime.services
    # Token encodings are big tables: build them before serving, off the event loop.
    await asyncio.get_running_loop().run_in_executor(None, services.tokens.load_encodings)
    connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300, keepalive_timeout=60, enable_cleanup_closed=True)
    # Webhooks and other calls off the hot path (providers use `Upstreams`). No cookie jar: nothing
    # an outside server sets should ride along on a later call.
    services.session = aiohttp.ClientSession(connector=connector, auto_decompress=True, skip_auto_headers=("User-Agent",),
                                             cookie_jar=aiohttp.DummyCookieJar())
    await services.upstreams.load_trust_store()
    store_cfg = state.runtime.config.main.store
    # Opening a Redis client reads files (redis-py's version): do it off the loop.
    services.store = await asyncio.to_thread(open_store, store_cfg.url, socket_timeout=store_cfg.socket_timeout_s)
    services.revocations = RevocationCache(services.store, on_store_error=store_cfg.on_store_error,
                                           grace_s=store_cfg.revocation_grace_s)
    await start_runtime(state.runtime)
    await services.managed_keys.start(services.store)
    # Everything built so far (config, detectors, encodings' Python side, imported modules) lives as
    # long as the process: move it out of the collector's way so collections only walk request garbage.
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)
    recorder = services.recorder
    recorder.set_in_flight_source(lambda: state.in_flight)
    recorder.set_breaker_source(lambda: state.runtime.router.breaker_states())
    recorder.set_canary_source(lambda: state.runtime.router.canary_states())
    recorder.set_fail_open_source(lambda: {
        "limits": state.runtime.limits.fail_open_total if state.runtime.limits is not None else 0,
        "revocation": services.revocations.fail_open_total})
    alerts = app[ALERTS]
    sources = recorder.sampler.sources
    sources.breakers = lambda: {name: (b.state, b.opened_count, b.half_opened_count, b.closed_count)
                                for name, b in state.runtime.router.breakers.items()}
    sources.reloads = lambda: (state.reloads, state.reload_errors)
    sources.notifications = alerts.notifier.stats
    sources.budgets = lambda: _budget_rows(state)
    redis_url = store_cfg.url if store_cfg.url.startswith(("redis://", "rediss://")) else None
    await recorder.start(redis_url)
    tracer = services.tracer
    if tracer is not None:
        await asyncio.to_thread(tracer.start)  # the SDK's resource detection joins a thread pool
        recorder.set_trace_source(tracer.dropped, tracer.queued)
    if redis_url:
        await alerts.events.use_redis(redis_url)
    recorder.drift.config = lambda: state.runtime.config.main.drift  # reloads apply
    shadows = services.shadows
    if shadows is not None:
        shadows.start(state.runtime.server.shadow_queue, state.runtime.server.shadow_workers)
        recorder.register_stats_source("shadow", shadows.stats.snapshot)
    recorder.register_stats_source("alerts", alerts.snapshot)
    await alerts.start()
    try:
        yield
    finally:
        # Drain order: no new requests reach here; records of finished requests are flushed and shipped.
        await alerts.close()
        await services.managed_keys.close()
        if tracer is not None:
            await tracer.close()
        if shadows is not None:
            await shadows.close()
        await recorder.close()
        await services.session.close()
        await services.upstreams.close()
        await services.store.close()


async def _budget_rows(state: GatewayState) -> list[dict]:
    rt = state.runtime
    if rt.limits is None:
        return []
    return await rt.limits.budget_report(rt.keys.principals(), list(rt.router.routes))


def build_app(loaded: LoadedConfig) -> web.Application:
    # The providers' connection pools are built here (no I/O) so that every provider receives them at
    # construction; the trust store is read at start-up, off the loop.
    services = Services(tokens=Tokenizer(), upstreams=Upstreams(keepalive_s=60.0),
                        recorder=Recorder.compile(loaded.main.audit, file=loaded.path, base_dir=loaded.base_dir))
    if loaded.main.tracing.enabled:
        from gateway.tracing.exporter import Tracer  # the SDK is imported only when tracing is on

        services.tracer = Tracer(loaded.main.tracing)
    services.shadows = Shadows(services.recorder)
    runtime = compile_runtime(loaded, services)
    app = web.Application(client_max_size=runtime.server.max_body_bytes + 1, middlewares=[route_errors])
    state = app[STATE] = GatewayState(runtime=runtime, config_path=loaded.path)
    shared = multiproc.directory()
    app[ALERTS] = AlertEvaluator(lambda: state.runtime.alerts, lambda: admin.stats_data(state),
                                 lambda: state.runtime.services.store, Notifier(lambda: services.session),
                                 lead=multiproc.Lease(shared, "alerts").held if shared is not None else None,
                                 fleet=(services.recorder.instance_exports, Recorder.merged_windows))
    app.cleanup_ctx.append(_services)
    app.router.add_post("/v1/chat/completions", chat_completions)
    app.router.add_post("/v1/embeddings", embeddings)
    app.router.add_post("/v1/messages", messages)
    app.router.add_post("/v1/responses", responses)
    app.router.add_post("/v1/completions", completions)
    app.router.add_post("/v1/moderations", moderations)
    app.router.add_post("/v1/messages/count_tokens", count_tokens)
    app.router.add_get("/v1/models", list_models)
    admin.add_routes(app)
    console_api.add_routes(app)
    app[alerts_api.EVENTS] = app[ALERTS].events
    alerts_api.add_routes(app)
    feedback.add_routes(app)
    dashboard.add_routes(app)
    return app
