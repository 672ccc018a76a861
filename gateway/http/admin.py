"""Operator endpoints: /health, /health/ready, /stats, /metrics (and, later, the dashboard).

With admin keys configured (`[admin] key_env`, `[[admin.keys]]`), everything but the health checks
requires one (`gateway.http.admin_auth`): reads any role, actions such as revoking a key the "admin"
role. The dashboard's signed session cookie counts as the key that logged in.
"""

from __future__ import annotations

import orjson
from aiohttp import web

from gateway import __version__
from gateway.errors import RETRY_AFTER_S
from gateway.http import admin_auth, admin_keys
from gateway.http.state import STATE


def check_admin(request: web.Request) -> None:
    """Reads (GET, HEAD) need any admin role, anything else the "admin" role (`admin_auth`)."""
    if request.method in ("GET", "HEAD"):
        admin_auth.require_admin_read(request)
    else:
        admin_auth.require_admin_write(request)


def _json(data: object, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data, option=orjson.OPT_NON_STR_KEYS), status=status,
                        content_type="application/json")


async def health(request: web.Request) -> web.Response:
    state = request.app[STATE]
    return _json({"status": "draining" if state.draining else "ok", "version": __version__})


async def ready(request: web.Request) -> web.Response:
    state = request.app[STATE]
    rt = state.runtime
    checks: dict[str, object] = {"config": {"ok": True, "path": state.config_path, "generation": rt.generation}}
    store = rt.services.store
    ok = not state.draining
    if store is not None:
        try:
            await store.ping()
            checks["store"] = {"ok": True}
        except Exception as exc:  # readiness reports the failure; it must not raise
            checks["store"] = {"ok": False, "error": type(exc).__name__}
            ok = False
    checks["breakers"] = rt.router.breaker_states()
    resp = _json({"status": "ready" if ok else "not_ready", "checks": checks}, 200 if ok else 503)
    if not ok:
        resp.headers["Retry-After"] = RETRY_AFTER_S
    return resp


def stats_data(state) -> dict:
    """The /stats document (the alert evaluator reads the same one)."""
    rt = state.runtime
    recorder = rt.services.recorder
    data: dict = recorder.stats() if recorder is not None else {}
    data.setdefault("in_flight", state.in_flight)  # the recorder's figure is the instance's
    data["breaker_detail"] = {name: b.snapshot() for name, b in rt.router.breakers.items()}
    data["canary"] = rt.router.canary_states()
    data["target_stats"] = rt.router.target_stats()  # what the measured routing strategies read
    data["config"] = {"generation": rt.generation, "reloads": state.reloads, "reload_errors": state.reload_errors}
    return data


async def stats(request: web.Request) -> web.Response:
    check_admin(request)
    state = request.app[STATE]
    if state.runtime.services.recorder is not None:
        await state.runtime.services.recorder.read_peers()  # the other workers' windows, fresh
    data = stats_data(state)
    rt = state.runtime
    limits = rt.key_limits or rt.limits  # `limits` when configured; else rules-free, for the keys' own budgets
    if limits is not None:
        principals = rt.keys.principals() + rt.services.managed_keys.principals()
        data["budgets"] = await limits.budget_report(principals, list(rt.router.routes))
    return _json(data)


async def config_view(request: web.Request) -> web.Response:
    """The effective config without secrets, for `gateway check-config --against URL`."""
    check_admin(request)
    from gateway.runtime import config_summary

    state = request.app[STATE]
    data = config_summary(state.runtime)
    data["reload"] = {"reloads": state.reloads, "errors": state.reload_errors, "last_error": state.last_reload_error}
    return _json(data)


async def metrics(request: web.Request) -> web.Response:
    check_admin(request)
    recorder = request.app[STATE].runtime.services.recorder
    await recorder.refresh_metrics()  # sampled gauges as of now, not up to a second old
    return web.Response(body=recorder.metrics_text(), headers={"Content-Type": recorder.metrics_content_type})


def add_routes(app: web.Application) -> None:
    admin_keys.add_routes(app)
    app.router.add_get("/admin/config", config_view)
    app.router.add_get("/health", health)
    app.router.add_get("/health/ready", ready)
    app.router.add_get("/stats", stats)
    app.router.add_get("/metrics", metrics)


def require_admin_read(request: web.Request) -> str:
    """The one gate of the console's read endpoints (request log, history): any admin role
    (`admin_auth.require_admin_read`). Returns who is reading, for the audit record of a read:
    "admin_key" or "admin_session" (the dashboard's login) for the `[admin] key_env` key, the same with
    ":ID" for an `[[admin.keys]]` key, or "open" when no admin key is configured."""
    who = admin_auth.require_admin_read(request)
    if who.via == "open":
        return "open"
    base = "admin_key" if who.via == "key" else "admin_session"
    return base if who.id == "admin" else f"{base}:{who.id}"
