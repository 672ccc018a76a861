"""`POST /v1/feedback`: a caller's judgement of one of its requests, recorded in the audit chain.

Who may send it: the virtual key that made the judged request, or an admin key with the "admin" role
(`[admin] key_env` or `[[admin.keys]]`, as `Authorization: Bearer` or `x-admin-key`). Which record it
judges: request ids are the caller's and may repeat, so feedback links to the **newest** request-log record with that id made by the sending key (by
any key for the admin key), or to exactly the record named by `entry` (a request-log entry id, from
`/admin/requests`). The judged record is found through the request-log index (`[[audit.sinks]]` file or
redis); a record reaches the index once shipped (`ship_interval_ms`, milliseconds), so feedback sent the
instant an answer arrives may get a 404 and can be retried.

Refusals, in OpenAI's error shape: 400 a body it cannot use (`param` names the field), 401 no or a wrong
key, 403 the request was made by another key, 404 no such request (or no request log configured), 503
the log's store is down. The comment goes through the input PII, secret and deny-list guardrails that
apply to the sending key and the judged alias (a `block` rule refuses the feedback) before it is stored.
"""

from __future__ import annotations

import logging
import time

import orjson
from aiohttp import web

from gateway import reasons
from gateway.context import Principal, RequestContext
from gateway.errors import BadRequest, Forbidden, GatewayError, NotFound, Unauthorized, render
from gateway.http import ids
from gateway.http.admin_auth import ADMIN, match_key
from gateway.http.console_api import READ_ERRORS
from gateway.http.state import STATE
from gateway.records.feedback import Feedback, feedback_record, parse_feedback
from gateway.records.log_query import LogQuery

log = logging.getLogger(__name__)


def _error(err: GatewayError, rid: str) -> web.Response:
    headers = {"x-request-id": rid, **err.headers}
    return web.Response(status=err.status, body=render(err, "openai"), headers=headers, content_type="application/json")


def _is_admin(request: web.Request) -> bool:
    """An admin key with the "admin" role (a "read" key may not act); none configured: nobody is."""
    auth = request.headers.get("Authorization", "")
    given = auth[7:].strip() if auth[:7].lower() == "bearer " else request.headers.get("x-admin-key", "")
    if not given:
        return False
    k = match_key(request.app, given)
    return k is not None and k.role == ADMIN


async def _judged(reader, fb: Feedback, key_id: str | None) -> tuple[str, dict]:
    """(entry, record) of the judged request; NotFound or Forbidden when the sender may not judge it."""
    if fb.entry is not None:
        line = await reader.record(fb.entry)
        rec = orjson.loads(line) if line is not None else None
        if not isinstance(rec, dict) or rec.get("type") != "request" or rec.get("request_id") != fb.request_id:
            raise NotFound(f"no request '{fb.request_id[:64]}' at entry '{fb.entry}'", code="unknown_request",
                           param="entry")
        if key_id is not None and rec.get("key_id") != key_id:
            raise Forbidden("that request was made with another key", code="foreign_request", param="request_id")
        return fb.entry, rec
    page = await reader.page(LogQuery(request_id=fb.request_id, key=key_id, limit=1))
    if not page.rows:
        if key_id is not None and (await reader.page(LogQuery(request_id=fb.request_id, limit=1))).rows:
            raise Forbidden("that request was made with another key", code="foreign_request", param="request_id")
        raise NotFound(f"no request '{fb.request_id[:64]}' in the request log (records arrive within about a "
                       "second of the answer)", code="unknown_request", param="request_id")
    entry = page.rows[0]["entry"]
    line = await reader.record(entry)
    if line is None:  # trimmed between the two reads
        raise NotFound(f"no request '{fb.request_id[:64]}' in the request log", code="unknown_request",
                       param="request_id")
    return entry, orjson.loads(line)


async def feedback(request: web.Request) -> web.Response:
    state = request.app[STATE]
    rt = state.runtime
    rid, _, _, _ = ids.new_ids(request.headers.get("x-request-id"), None, rt.server.trust_request_id)
    try:
        principal: Principal | None = None
        if not _is_admin(request):
            principal = rt.keys.authenticate(request.headers)
            if await rt.services.revocations.is_revoked(principal.key_id):
                raise Unauthorized("this API key has been revoked", code="revoked_api_key",
                                   reason=reasons.AUTH_REVOKED_KEY)
        try:
            body = orjson.loads(await request.read())
        except orjson.JSONDecodeError:
            raise BadRequest("the body must be JSON") from None
        fb = parse_feedback(body)
        recorder = rt.services.recorder
        reader = recorder.request_log() if recorder is not None else None
        if reader is None:
            raise NotFound("no request log to find the request in: configure an audit sink of type 'file' or "
                           "'redis' ([[audit.sinks]])", code="request_log_unavailable")
        key_id = principal.key_id if principal is not None else None
        try:
            entry, judged = await _judged(reader, fb, key_id)
        except READ_ERRORS as exc:
            log.warning("request log read failed: %s", exc)
            raise GatewayError("the request log's store is unavailable; try again", status=503,
                               code="request_log_unavailable", headers={"retry-after": "1"}) from None
        alias = judged.get("alias")
        comment, entities = fb.comment, {}
        if comment and rt.guardrails is not None:
            guard = rt.guardrails.for_request(principal, alias)
            if guard is not None:
                ctx = RequestContext(request_id=rid, api="chat", shape="openai", runtime=rt, received_at=time.time(),
                                     trace_id="", span_id="", principal=principal, alias=alias)
                comment = await guard.scan_note(ctx, comment)
                for d in ctx.decisions:
                    for name, n in d.entities.items():
                        entities[name] = entities.get(name, 0) + n
        rec = feedback_record(fb, judged, entry, actor="key" if principal is not None else "admin_key",
                              key_id=key_id, comment=comment, entities=entities, request_id=rid)
        recorder.submit_feedback(rec, alias in rt.router.routes)
    except GatewayError as err:
        return _error(err, rid)
    out = {"object": "feedback", "id": rid, "request_id": fb.request_id, "entry": entry, "alias": alias,
           "score": fb.score, "labels": list(fb.labels), "comment": comment}
    return web.Response(body=orjson.dumps(out), content_type="application/json", headers={"x-request-id": rid})


def add_routes(app: web.Application) -> None:
    app.router.add_post("/v1/feedback", feedback)
