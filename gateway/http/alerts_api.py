"""The alerts timeline's read API: `GET /admin/alerts/events?limit=50`, newest first.

Each event is one firing or resolution of a rule (gateway.alerts.events) with its webhooks' delivery
status; read-only admin access suffices. A shared store that cannot answer is a 503 to retry.
"""

from __future__ import annotations

from aiohttp import web

from gateway.alerts.events import KEEP, AlertEvents
from gateway.http.admin import require_admin_read
from gateway.http.console_api import READ_ERRORS, _error, _json, _store_down

EVENTS: web.AppKey[AlertEvents] = web.AppKey("alert_events", AlertEvents)


async def alert_events(request: web.Request) -> web.Response:
    require_admin_read(request)
    for name in request.query:
        if name != "limit":
            return _error(400, "invalid_request_error", "invalid_filter", f"unknown parameter '{name}'; known: limit", name)
    limit = request.query.get("limit", "50")
    if not limit.isdigit() or not 1 <= int(limit) <= KEEP:
        return _error(400, "invalid_request_error", "invalid_filter", f"'limit' must be a whole number from 1 to {KEEP}",
                      "limit")
    events = request.app[EVENTS]
    try:
        data = await events.recent(int(limit))
    except READ_ERRORS as exc:
        return _store_down(exc, "alert events")
    return _json({"object": "list", "data": data, "shared": events.store.shared})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/admin/alerts/events", alert_events)
