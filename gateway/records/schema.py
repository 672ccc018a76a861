"""The request record: one per request, built once in the request's `finally`.

`build_record` is the only producer of the record; `RECORD_FIELDS` is its documented field list
(docs/records.md is tested against it). The chain fields (`writer`, `seq`, `prev_hash`, `hash`) are
added by `gateway.records.chain.Chain.seal`. Prompts and answers are never stored here.
"""

from __future__ import annotations

import hashlib
import hmac
import time

from gateway.context import RequestContext

SCHEMA_VERSION = 1

# (name, type, meaning). Order is the documentation order.
RECORD_FIELDS: tuple[tuple[str, str, str], ...] = (
    ("v", "int", "record schema version"),
    ("type", "str", '"request" (checkpoint records are described separately)'),
    ("request_id", "str", "the gateway's request id (x-request-id)"),
    ("trace_id", "str", "W3C trace id"),
    ("span_id", "str", "the gateway's span id"),
    ("parent_span_id", "str|null", "the caller's span id, when it sent traceparent"),
    ("time", "float", "unix seconds when the request was received"),
    ("key_id", "str|null", "virtual key id; null when authentication failed"),
    ("team", "str|null", "team of the key"),
    ("user_hash", "str|null", "HMAC-SHA256 (keyed, truncated to 32 hex chars) of the end user id"),
    ("tags", "list[str]", "request tags"),
    ("route", "str", "API route: chat, embeddings, messages, responses, models"),
    ("shape", "str", "caller's API shape: openai or anthropic"),
    ("stream", "bool", "streaming response requested"),
    ("alias", "str|null", "model alias the caller asked for (at most 128 chars)"),
    ("provider", "str|null", "provider of the last attempt"),
    ("model", "str|null", "upstream model of the last attempt"),
    ("status", "int", "HTTP status returned to the caller (0: none sent)"),
    ("error_type", "str|null", "error type (invalid_request_error, rate_limit_error, api_error, ...)"),
    ("error_code", "str|null", "stable error code (rate_limit_exceeded, upstream_timeout, ...)"),
    ("upstream_status", "int|null", "upstream HTTP status when the upstream failed"),
    ("client_disconnected", "bool", "the client went away before the response ended"),
    ("attempts", "int", "upstream attempts (retries and fallbacks included)"),
    ("input_tokens", "int", "prompt tokens"),
    ("output_tokens", "int", "completion tokens"),
    ("cached_tokens", "int", "prompt tokens served from the provider's cache"),
    ("cache_write_tokens", "int", "prompt tokens written to the provider's prompt cache (billed at its cache-write price)"),
    ("reasoning_tokens", "int", "output tokens spent on reasoning (part of output_tokens)"),
    ("usage_estimated", "bool", "token counts were estimated by the gateway"),
    ("cost_usd", "float", "cost of the request in USD"),
    ("latency_ms", "float", "total time in the gateway"),
    ("ttft_ms", "float|null", "time to the first content chunk sent to the client"),
    ("upstream_ms", "float", "time spent waiting on upstreams, all attempts"),
    ("overhead_ms", "float", "gateway overhead: latency_ms minus upstream_ms and time waiting for a slow client"),
    ("guardrail_action", "str", "most severe action: allow < flag < redact/mask/hash/pseudonymize < refuse < block"),
    ("entities", "dict[str,int]", "entity counts summed over all decisions"),
    ("injection_score", "float|null", "highest prompt-injection score"),
    ("unscanned_chars", "int", "characters no guardrail scanned"),
    ("block_reason", "str|null", "reason code of the decision that refused the request"),
    ("decisions", "list[object]", "policy decisions: policy, kind, action, reason, direction, entities, score, unscanned_chars"),
    ("payload", "object (optional)", "only with [audit] log_payloads, sampled: request (JSON sent upstream) and response (bytes sent to the client), both after redaction, each cut to payload_max_bytes; truncated"),
    ("cache", "str|null", "response cache outcome under a [[cache]] rule: hit, miss or bypass; null when no rule applies"),
    ("cache_saved_usd", "float", "a cache hit: what its answer cost when it was fetched (USD not spent); else 0"),
    ("writer", "str", "chain id: host:pid:random, one per gateway process"),
    ("seq", "int", "position in the writer's chain, from 0"),
    ("prev_hash", "str", "hash of the writer's previous record (64 zeros for seq 0)"),
    ("hash", "str", "SHA-256 (HMAC-SHA256 with a key) of prev_hash + canonical JSON of the record without hash"),
)

CHECKPOINT_FIELDS: tuple[tuple[str, str, str], ...] = (
    ("v", "int", "record schema version"),
    ("type", "str", '"checkpoint"'),
    ("time", "float", "unix seconds when the trim happened"),
    ("reason", "str", "why records were removed (retention)"),
    ("covers", "list[[str,int,str]]", "per chain trimmed: [writer, last removed seq, its hash]"),
    ("writer", "str", "the trimmer's own chain id"),
    ("seq", "int", "position in the trimmer's chain"),
    ("prev_hash", "str", "hash of the trimmer's previous checkpoint"),
    ("hash", "str", "as for request records"),
)

# An operator's action through the admin API, recorded in the same chains (e.g. reading a request's
# detail in the request log). Added by the request-log console (#17).
ADMIN_FIELDS: tuple[tuple[str, str, str], ...] = (
    ("v", "int", "record schema version"),
    ("type", "str", '"admin"'),
    ("time", "float", "unix seconds of the action"),
    ("action", "str", 'what was done, e.g. "request_log.read"'),
    ("target", "str", "what it was done to, e.g. the log entry read"),
    ("actor", "str", '"admin_key" or "admin_session" (the dashboard\'s login), with ":ID" for an [[admin.keys]] key; "open" without admin keys'),
    ("request_id", "str", "the admin request's own id"),
    ("writer", "str", "as for request records"),
    ("seq", "int", "as for request records"),
    ("prev_hash", "str", "as for request records"),
    ("hash", "str", "as for request records"),
)


# Feedback on a request (`POST /v1/feedback`, gateway.records.feedback), in the same chains. It names the
# judged record by its chain position and hash, so `gateway audit verify` vouches for the link too.
FEEDBACK_FIELDS: tuple[tuple[str, str, str], ...] = (
    ("v", "int", "record schema version"),
    ("type", "str", '"feedback"'),
    ("time", "float", "unix seconds when the feedback was received"),
    ("request_id", "str", "the feedback request's own id"),
    ("judged_request_id", "str", "request_id of the judged request"),
    ("judged_entry", "str", "request log entry of the judged record"),
    ("judged_writer", "str", "writer (chain) of the judged record"),
    ("judged_seq", "int", "seq of the judged record in that chain"),
    ("judged_hash", "str", "hash of the judged record"),
    ("actor", "str", '"key" (the key that made the request) or "admin_key"'),
    ("key_id", "str|null", "the key that sent the feedback; null for the admin key"),
    ("judged_key_id", "str|null", "the key that made the judged request"),
    ("alias", "str|null", "the judged request's alias"),
    ("provider", "str|null", "the judged request's provider"),
    ("model", "str|null", "the judged request's upstream model"),
    ("score", "str|int", '"up", "down" or 1..5, as sent'),
    ("score_normalised", "float", "0..1: up 1, down 0, n of 5 is (n - 1) / 4"),
    ("labels", "list[str]", "labels as sent (at most 16 of at most 64 characters)"),
    ("comment", "str|null", "the comment after the input PII/secret/deny-list guardrails (at most 2000 characters)"),
    ("comment_entities", "dict[str,int]", "entity counts the guardrails found in the comment"),
    ("writer", "str", "as for request records"),
    ("seq", "int", "as for request records"),
    ("prev_hash", "str", "as for request records"),
    ("hash", "str", "as for request records"),
)

# One shadow pair (gateway.shadow): the caller's request and its sampled copy to the candidate alias.
SHADOW_SIDE = "{status, latency_ms, ttft_ms, input_tokens, output_tokens, cost_usd, finish_reason, answer_chars, error_code, provider, model}"
SHADOW_FIELDS: tuple[tuple[str, str, str], ...] = (
    ("v", "int", "record schema version"),
    ("type", "str", '"shadow"'),
    ("time", "float", "unix seconds when the pair was complete"),
    ("request_id", "str", "the caller's request id (its own request record has it too)"),
    ("alias", "str", "the alias the caller asked for"),
    ("candidate", "str", "the shadow alias the copy went to"),
    ("key_id", "str|null", "the caller's key (the copy is never charged to it)"),
    ("outcome", "str", "compared, primary_failed, shadow_error, timeout, or refused (the shadow budget)"),
    ("primary", "object", "the caller's side: " + SHADOW_SIDE),
    ("shadow", "object", "the copy's side, the same fields; ttft_ms is its time to the upstream's first byte (sent unstreamed)"),
    ("jaccard", "float|null", "word-set Jaccard index of the two answers (first choice, first 4096 chars); null unless compared"),
    ("cosine", "float|null", "cosine of the answers' character-trigram counts; null unless compared"),
    ("writer", "str", "as for request records"),
    ("seq", "int", "as for request records"),
    ("prev_hash", "str", "as for request records"),
    ("hash", "str", "as for request records"),
)


def shadow_record(request_id: str, alias: str, candidate: str, key_id: str | None, outcome: str, primary: dict,
                  shadow: dict, jaccard: float | None, cosine: float | None, now: float | None = None) -> dict:
    return {"v": SCHEMA_VERSION, "type": "shadow", "time": time.time() if now is None else now,
            "request_id": request_id, "alias": alias, "candidate": candidate, "key_id": key_id, "outcome": outcome,
            "primary": primary, "shadow": shadow, "jaccard": jaccard, "cosine": cosine}

def admin_record(action: str, target: str, actor: str, request_id: str, now: float | None = None) -> dict:
    return {"v": SCHEMA_VERSION, "type": "admin", "time": time.time() if now is None else now, "action": action,
            "target": target, "actor": actor, "request_id": request_id}


_SEVERITY = {"allow": 0, "flag": 1, "redact": 2, "mask": 2, "hash": 2, "pseudonymize": 2, "refuse": 3, "block": 4}
_BLOCKING = ("block", "refuse")


def user_hash(key: bytes, user: str) -> str:
    return hmac.new(key, user.encode(), hashlib.sha256).hexdigest()[:32]


def _end_user(ctx: RequestContext) -> str | None:
    if ctx.principal is not None and ctx.principal.user:
        return ctx.principal.user
    body = ctx.body
    if body:
        user = body.get("user")
        if isinstance(user, str) and user:
            return user
        meta = body.get("metadata")
        if isinstance(meta, dict) and isinstance(meta.get("user_id"), str) and meta["user_id"]:
            return meta["user_id"]
    return None


def _ms(seconds: float) -> float:
    return round(seconds * 1000.0, 3)


def build_record(ctx: RequestContext, *, cost_usd: float, user_hash_key: bytes, payload_max_bytes: int = 65536) -> dict:
    """The record of a finished request. Pure and cheap: no I/O, no clock reads unless `end` is unset."""
    t = ctx.timings
    end = t.end or time.perf_counter()
    total = max(end - t.start, 0.0) if t.start else 0.0
    upstream = t.upstream_wait
    p = ctx.principal
    target = ctx.target
    err = ctx.error

    action, sev, score, unscanned, block = "allow", 0, None, 0, None
    entities: dict[str, int] = {}
    decisions = []
    for d in ctx.decisions:
        s = _SEVERITY.get(d.action, 1)
        if s > sev:
            action, sev = d.action, s
        if d.entities:
            for name, n in d.entities.items():
                entities[name] = entities.get(name, 0) + n
        if d.score is not None and d.kind == "injection" and (score is None or d.score > score):
            score = d.score
        unscanned += d.unscanned_chars
        if block is None and d.action in _BLOCKING:
            block = d.reason
        decisions.append({
            "policy": d.policy, "kind": d.kind, "action": d.action, "reason": d.reason,
            "direction": d.direction, "entities": d.entities, "score": d.score,
            "unscanned_chars": d.unscanned_chars,
        })

    u = ctx.usage
    end_user = _end_user(ctx)
    rec = {
        "v": SCHEMA_VERSION,
        "type": "request",
        "request_id": ctx.request_id,
        "trace_id": ctx.trace_id,
        "span_id": ctx.span_id,
        "parent_span_id": ctx.parent_span_id,
        "time": ctx.received_at,
        "key_id": p.key_id if p is not None else None,
        "team": p.team if p is not None else None,
        "user_hash": user_hash(user_hash_key, end_user) if end_user is not None else None,
        "tags": list(ctx.tags),
        "route": ctx.api,
        "shape": ctx.shape,
        "stream": ctx.stream,
        "alias": ctx.alias[:128] if ctx.alias else None,
        "provider": target.provider if target is not None else None,
        "model": target.model if target is not None else None,
        "status": ctx.status or (err.status if err is not None else 0),
        "error_type": err.type if err is not None else None,
        "error_code": err.code if err is not None else None,
        "upstream_status": err.upstream_status if err is not None else None,
        "client_disconnected": ctx.client_disconnected,
        "attempts": ctx.attempts,
        "input_tokens": u.input_tokens,
        "output_tokens": u.output_tokens,
        "cached_tokens": u.cached_tokens,
        "cache_write_tokens": u.cache_write_tokens,
        "reasoning_tokens": u.reasoning_tokens,
        "usage_estimated": u.estimated,
        "cost_usd": cost_usd,
        "latency_ms": _ms(total),
        "ttft_ms": _ms(t.first_token - t.start) if t.first_token and t.start else None,
        "upstream_ms": _ms(upstream),
        "overhead_ms": _ms(max(total - upstream - t.client_wait, 0.0)),
        "guardrail_action": action,
        "entities": entities,
        "injection_score": score,
        "unscanned_chars": unscanned,
        "block_reason": block,
        "decisions": decisions,
        "cache": ctx.cache,
        "cache_saved_usd": ctx.cache_saved_usd,
    }
    if ctx.payload_out is not None:
        rec["payload"] = _payload(ctx, payload_max_bytes)
    return rec


def _payload(ctx: RequestContext, limit: int) -> dict:
    """The request body as sent upstream and the response as sent to the client (both after guardrail
    redaction), each cut to `limit` bytes."""
    import orjson

    request = orjson.dumps(ctx.body).decode("utf-8", "replace") if ctx.body is not None else None
    response = b"".join(ctx.payload_out or ()).decode("utf-8", "replace")
    return {"request": request[:limit] if request else None, "response": response[:limit],
            "truncated": bool(request and len(request) > limit) or len(response) > limit}


# An operator's change through the admin API (a key created, updated, revoked, restored or rotated),
# sealed into the same chain as the request records. Never a secret, nor its digest.
KEY_CHANGE_FIELDS: tuple[tuple[str, str, str], ...] = (
    ("v", "int", "record schema version"),
    ("type", "str", '"key_change"'),
    ("time", "float", "unix seconds of the change"),
    ("request_id", "str", "the admin request's id (x-request-id when sent)"),
    ("action", "str", "create, update, revoke, unrevoke or rotate"),
    ("key_id", "str", "the key changed"),
    ("key_source", "str", '"api" (a managed key) or "config" (a [[keys]] rule: revoke and unrevoke only)'),
    ("actor", "object", "who: id (the admin key's id, or \"open\"), role, via (key or session)"),
    ("changes", "object", "the fields set and their new values; rotate: grace_s and previous_valid_until"),
    ("writer", "str", "chain id, as for request records"),
    ("seq", "int", "position in the writer's chain"),
    ("prev_hash", "str", "hash of the writer's previous record"),
    ("hash", "str", "as for request records"),
)


def build_key_change(action: str, key_id: str, key_source: str, actor: dict[str, str], changes: dict,
                     request_id: str) -> dict:
    return {"v": SCHEMA_VERSION, "type": "key_change", "time": time.time(), "request_id": request_id,
            "action": action, "key_id": key_id, "key_source": key_source, "actor": actor, "changes": changes}
