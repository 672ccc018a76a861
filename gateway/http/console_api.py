"""The operator console's read API: the request log and the history behind the dashboard's charts.

    GET /admin/requests            filtered pages of request records, newest first (gateway.records.log_query)
    GET /admin/requests/{entry}    one whole record as the audit log holds it; the read is itself recorded
    GET /admin/history?range=1h    per-minute aggregates over 15m, 1h, 24h or 7d (gateway.records.history)

Every endpoint passes `admin.require_admin_read` first. A filter it cannot use is a 400 naming it.
"""

from __future__ import annotations

import logging
import os
import sqlite3

import orjson
from aiohttp import web
from redis.exceptions import RedisError

from gateway.errors import RETRY_AFTER_S
from gateway.http.admin import require_admin_read
from gateway.http.state import STATE
from gateway.records.history import RANGES
from gateway.records.log_query import BadFilter, parse_query
from gateway.records.schema import admin_record

log = logging.getLogger(__name__)
# A store that cannot answer now: a 503 to retry, never a 500.
READ_ERRORS = (OSError, ConnectionError, TimeoutError, RedisError, sqlite3.OperationalError)


def _json(data: object, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data, option=orjson.OPT_NON_STR_KEYS), status=status,
                        content_type="application/json", headers={"Cache-Control": "no-store"})


def _error(status: int, type_: str, code: str, message: str, param: str | None = None) -> web.Response:
    resp = _json({"error": {"message": message, "type": type_, "param": param, "code": code}}, status)
    if status == 503:
        resp.headers["Retry-After"] = RETRY_AFTER_S
    return resp


def _no_log() -> web.Response:
    return _error(404, "not_found_error", "request_log_unavailable",
                  "no request log: configure an audit sink of type 'file' or 'redis' ([[audit.sinks]])")


def _store_down(exc: Exception, what: str = "request log") -> web.Response:
    log.warning("%s read failed: %s", what, exc)
    return _error(503, "api_error", what.replace(" ", "_") + "_unavailable", f"the {what}'s store is unavailable; try again")


async def list_requests(request: web.Request) -> web.Response:
    require_admin_read(request)
    try:
        q = parse_query(request.query)
    except BadFilter as exc:
        return _error(400, "invalid_request_error", "invalid_filter", str(exc), exc.param)
    reader = request.app[STATE].runtime.services.recorder.request_log()
    if reader is None:
        return _no_log()
    try:
        page = await reader.page(q)
    except READ_ERRORS as exc:
        return _store_down(exc)
    return _json({"object": "list", "data": page.rows, "next": page.next, "source": _source(reader)})


def _source(reader: object) -> str:
    return "redis" if type(reader).__name__ == "RedisLogIndex" else "file"


async def get_request(request: web.Request) -> web.Response:
    actor = require_admin_read(request)
    entry = request.match_info["entry"]
    recorder = request.app[STATE].runtime.services.recorder
    reader = recorder.request_log()
    if reader is None:
        return _no_log()
    try:
        line = await reader.record(entry)
    except READ_ERRORS as exc:
        return _store_down(exc)
    if line is None:
        return _error(404, "not_found_error", "unknown_entry", f"no request log entry '{entry[:64]}'", "entry")
    # Reading a record (prompts and answers too, when log_payloads kept them) is itself recorded.
    rid = request.headers.get("x-request-id") or "admin_" + os.urandom(12).hex()
    recorder.submit_admin(admin_record("request_log.read", entry, actor, rid[:128]))
    return web.Response(body=b'{"entry":' + orjson.dumps(entry) + b',"record":' + line + b"}",
                        content_type="application/json", headers={"Cache-Control": "no-store"})


async def history(request: web.Request) -> web.Response:
    require_admin_read(request)
    for name in request.query:
        if name != "range":
            return _error(400, "invalid_request_error", "invalid_filter", f"unknown parameter '{name}'; known: range", name)
    name = request.query.get("range", "1h")
    if name not in RANGES:
        return _error(400, "invalid_request_error", "invalid_filter",
                      f"'range' must be one of {', '.join(RANGES)}", "range")
    try:
        data = await request.app[STATE].runtime.services.recorder.history.range(name)
    except READ_ERRORS as exc:
        return _store_down(exc, "history")
    return _json(data)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/admin/requests", list_requests)
    app.router.add_get("/admin/requests/{entry}", get_request)
    app.router.add_get("/admin/history", history)
