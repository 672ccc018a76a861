"""Operator endpoints: /health, /health/ready, /stats, /metrics (and, later, the dashboard).

With `[admin] key_env` set, everything but the health checks requires that key, as
`Authorization: Bearer <key>` or `x-admin-key`, compared in constant time. Reads (GET) also accept the
dashboard's signed session cookie (`gateway.http.admin_session`); actions such as revoking a key don't.
"""

from __future__ import annotations

import hmac
import os

import orjson
from aiohttp import web

from gateway import __version__
from gateway.errors import RETRY_AFTER_S
from gateway.http import admin_session
from gateway.http.state import STATE
from gateway.store.base import StoreError


def admin_key(app: web.Application) -> str | None:
    env = app[STATE].runtime.config.main.admin.key_env
    return os.environ.get(env) if env else None


def check_admin(request: web.Request) -> None:
    key = admin_key(request.app)
    if key is None:
        return
    auth = request.headers.get("Authorization", "")
    given = auth[7:].strip() if auth[:7].lower() == "bearer " else request.headers.get("x-admin-key", "")
    if hmac.compare_digest(given.encode("utf-8", "surrogateescape"), key.encode()):  # non-UTF-8 header: a wrong key, not a 500
        return
    # Reads only: a cookie rides along on any same-site request, so it must not authorise an action.
    if request.method not in ("GET", "HEAD") or not admin_session.valid(request.cookies.get(admin_session.COOKIE, ""), key):
        body = {"error": {"message": "admin key required", "type": "authentication_error", "param": None,
                          "code": "invalid_admin_key"}}
        raise web.HTTPUnauthorized(body=orjson.dumps(body), content_type="application/json")


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
    data.setdefault("in_flight", state.in_flight)
    data["breaker_detail"] = {name: b.snapshot() for name, b in rt.router.breakers.items()}
    data["config"] = {"generation": rt.generation, "reloads": state.reloads, "reload_errors": state.reload_errors}
    return data


async def stats(request: web.Request) -> web.Response:
    check_admin(request)
    state = request.app[STATE]
    data = stats_data(state)
    rt = state.runtime
    if rt.limits is not None:
        data["budgets"] = await rt.limits.budget_report(rt.keys.principals(), list(rt.router.routes))
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
    return web.Response(body=recorder.metrics_text(), headers={"Content-Type": recorder.metrics_content_type})


async def _key_op(request: web.Request, revoke: bool) -> web.Response:
    """Record (or undo) a key's revocation in the store: every gateway sharing it follows within a second."""
    check_admin(request)
    key_id = request.match_info["key_id"]
    rt = request.app[STATE].runtime
    if key_id not in {p.key_id for p in rt.keys.principals()}:
        return _error(404, "not_found_error", "unknown_key", f"no key with id '{key_id}' in the running config")
    services = rt.services
    try:
        await (services.store.revoke_key(key_id) if revoke else services.store.unrevoke_key(key_id))
    except StoreError:
        resp = _error(503, "api_error", "store_unavailable", "the store is unavailable; nothing was changed")
        resp.headers["Retry-After"] = RETRY_AFTER_S
        return resp
    services.revocations.forget(key_id)
    return _json({"revoked" if revoke else "restored": key_id})


def _error(status: int, type_: str, code: str, message: str) -> web.Response:
    return _json({"error": {"message": message, "type": type_, "param": None, "code": code}}, status)


async def revoke_key(request: web.Request) -> web.Response:
    return await _key_op(request, revoke=True)


async def unrevoke_key(request: web.Request) -> web.Response:
    return await _key_op(request, revoke=False)


def add_routes(app: web.Application) -> None:
    app.router.add_post("/admin/keys/{key_id}/revoke", revoke_key)
    app.router.add_post("/admin/keys/{key_id}/unrevoke", unrevoke_key)
    app.router.add_get("/admin/config", config_view)
    app.router.add_get("/health", health)
    app.router.add_get("/health/ready", ready)
    app.router.add_get("/stats", stats)
    app.router.add_get("/metrics", metrics)


def require_admin_read(request: web.Request) -> str:
    """The one gate of the console's read endpoints (request log, history): the admin key or the
    dashboard's session, as every admin read. Returns who is reading, for the audit record of a read:
    "admin_key", "admin_session", or "open" when no admin key is configured. (The read-only and admin
    roles of #17 plug in here.)"""
    check_admin(request)
    key = admin_key(request.app)
    if key is None:
        return "open"
    auth = request.headers.get("Authorization", "")
    given = auth[7:].strip() if auth[:7].lower() == "bearer " else request.headers.get("x-admin-key", "")
    return "admin_key" if hmac.compare_digest(given.encode("utf-8", "surrogateescape"), key.encode()) else "admin_session"
