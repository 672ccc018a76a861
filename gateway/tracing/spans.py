"""A finished request as the spans of its trace: pure, no OpenTelemetry import, tested with literal
contexts.

The server span (the gateway's own span id, the one sent upstream in `traceparent`) has one child
per stage the request went through, in order: `gateway.limits`, `gateway.guardrails.input`, one
client span per upstream attempt (retries and fallbacks each their own), and
`gateway.guardrails.output` (from the first upstream byte to the end, as output scanning runs along
the answer). Attributes follow the OpenTelemetry GenAI semantic conventions where one exists
(`gen_ai.*`, `error.type`, `server.address`) and `gateway.*` otherwise. No prompt or answer text
appears unless `payloads` is given (`[tracing] export_payloads`), and then only what the guardrails
let through (the body after input redaction, the bytes the client got).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import orjson

if TYPE_CHECKING:
    from gateway.context import Decision, RequestContext

AttrValue = str | bool | int | float | list[str]

# gen_ai.operation.name per route; a route not here (models) has no GenAI operation.
OPERATIONS = {"chat": "chat", "messages": "chat", "responses": "chat", "embeddings": "embeddings"}
# gen_ai.provider.name per provider type (the semantic conventions' well-known values).
PROVIDER_NAMES = {"openai": "openai", "anthropic": "anthropic", "azure": "azure.ai.openai"}
_SEVERITY = {"allow": 0, "flag": 1, "redact": 2, "mask": 2, "hash": 2, "pseudonymize": 2, "refuse": 3, "block": 4}


@dataclass(slots=True)
class SpanSpec:
    name: str
    kind: str  # "server", "client" or "internal"
    start: float  # perf_counter() seconds, as the context's timings
    end: float
    attributes: dict[str, AttrValue] = field(default_factory=dict)
    error: bool = False  # span status ERROR


def _outcome(decisions: list[Decision], prefix: str, out: dict[str, AttrValue]) -> None:
    """The most severe action among `decisions`, its reason, and entity counts, under `prefix`."""
    action, sev, reason = "allow", -1, None
    entities: dict[str, int] = {}
    for d in decisions:
        s = _SEVERITY.get(d.action, 1)
        if s > sev:
            action, sev, reason = d.action, s, d.reason
        for name, n in d.entities.items():
            entities[name] = entities.get(name, 0) + n
    out[prefix + ".action"] = action
    if reason is not None and sev > 0:
        out[prefix + ".reason"] = reason
    if entities:
        out[prefix + ".entities"] = sorted(f"{k}={v}" for k, v in entities.items())


def build_spans(ctx: RequestContext, payloads: int | None = None) -> list[SpanSpec]:
    """The server span first, then its children. `payloads`: the byte cap of exported prompts and
    answers (None: none exported)."""
    marks = ctx.trace
    assert marks is not None, "only a traced request has spans"
    t = ctx.timings
    end = t.end or t.start
    op = OPERATIONS.get(ctx.api)
    providers = ctx.runtime.providers
    target = ctx.target

    def provider_name(name: str) -> str:
        p = providers.get(name)
        kind = p.options.type if p is not None else name
        return PROVIDER_NAMES.get(kind, kind)

    err = ctx.error
    status = ctx.status or (err.status if err is not None else 0)
    a: dict[str, AttrValue] = {"gateway.request_id": ctx.request_id, "gateway.route": ctx.api,
                               "gateway.stream": ctx.stream, "http.response.status_code": status,
                               "gateway.attempts": ctx.attempts}
    if op is not None:
        a["gen_ai.operation.name"] = op
    if ctx.alias:
        a["gen_ai.request.model"] = ctx.alias[:128]
    if target is not None:
        a["gen_ai.response.model"] = target.model
        a["gen_ai.provider.name"] = provider_name(target.provider)
        a["gateway.provider"] = target.provider
    if ctx.principal is not None:
        a["gateway.key_id"] = ctx.principal.key_id
        if ctx.principal.team:
            a["gateway.team"] = ctx.principal.team
    u = ctx.usage
    if target is not None:
        a["gen_ai.usage.input_tokens"] = u.input_tokens
        a["gen_ai.usage.output_tokens"] = u.output_tokens
        a["gen_ai.usage.cache_read.input_tokens"] = u.cached_tokens
        a["gateway.usage.estimated"] = u.estimated
        a["gateway.cache.outcome"] = "hit" if u.cached_tokens else "miss"  # the provider's prompt cache
        a["gateway.cost_usd"] = ctx.runtime.cost_usd(ctx)
    if marks.finish_reasons:
        a["gen_ai.response.finish_reasons"] = list(marks.finish_reasons)
    if err is not None:
        a["error.type"] = err.code or err.type
    elif ctx.client_disconnected:
        a["error.type"] = "client_disconnected"
    guard = [d for d in ctx.decisions if d.kind not in ("auth", "rate_limit", "budget", "store", "capacity",
                                                        "client", "server", "stream")]
    if guard or marks.output_scanned or any(st[0] == "gateway.guardrails.input" for st in marks.stages):
        _outcome(guard, "gateway.guardrail", a)  # guardrails ran: "allow" when none of them acted
    budget = [d for d in ctx.decisions if d.kind == "budget"]
    if budget:
        _outcome(budget, "gateway.budget", a)
    if payloads is not None:
        if ctx.body is not None:
            a["gateway.payload.request"] = orjson.dumps(ctx.body).decode("utf-8", "replace")[:payloads]
        out = ctx.capture()
        if out:
            a["gateway.payload.response"] = b"".join(out).decode("utf-8", "replace")[:payloads]
    name = f"{op} {ctx.alias}" if op and ctx.alias else f"gateway {ctx.api}"
    spans = [SpanSpec(name, "server", t.start, end, a, error=status >= 500)]

    for stage, s0, s1 in marks.stages:
        sa: dict[str, AttrValue] = {}
        if stage == "gateway.limits":
            limit = [d for d in ctx.decisions if d.kind in ("rate_limit", "budget", "store")]
            _outcome(limit, "gateway.limits", sa)
        elif stage == "gateway.guardrails.input":
            _outcome([d for d in guard if d.direction == "input"], "gateway.guardrail", sa)
        spans.append(SpanSpec(stage, "internal", s0, s1, sa))

    for i, at in enumerate(marks.attempts):
        p = providers.get(at.target.provider)
        ca: dict[str, AttrValue] = {"gen_ai.provider.name": provider_name(at.target.provider),
                                    "gen_ai.request.model": at.target.model, "gateway.attempt": i + 1,
                                    "gateway.provider": at.target.provider}
        if op is not None:
            ca["gen_ai.operation.name"] = op
        host = urlsplit(p.base_url).hostname if p is not None and p.base_url else None
        if host:
            ca["server.address"] = host
        if at.status:
            ca["http.response.status_code"] = at.status
        if at.error is not None:
            ca["error.type"] = at.error
        spans.append(SpanSpec(f"{op or ctx.api} {at.target.model}", "client", at.start, at.end, ca,
                              error=at.error is not None))

    if marks.output_scanned and t.first_byte:
        oa: dict[str, AttrValue] = {}
        _outcome([d for d in guard if d.direction == "output"], "gateway.guardrail", oa)
        spans.append(SpanSpec("gateway.guardrails.output", "internal", t.first_byte, end, oa))
    return spans
