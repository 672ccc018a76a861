"""The hot path, in order:

    ingress (ids, load shedding) -> auth -> body (per-key slot, bounded read, in-flight slot) -> route
    -> limits (reserve) -> input guardrails -> response cache lookup (a hit is replayed: filters -> encoder,
       a stream through the relay) -> token limits and budgets (a miss, when the lookup split admission)
    -> router (attempts, retries, fallbacks) -> provider
    -> adapter pipe: decoder -> filters (usage, cache fill, output guardrails, timing) -> encoder -> key scrub
    -> cache store (a miss's answer, right before its last byte) -> response (whole, or the stream relay)

Each stage takes the request context and returns, or raises a `GatewayError`. The one request record
is submitted just before the response's last byte (gateway.http.recording), or by the `finally` when
no response got that far; the `finally` settles limits and budgets. Nothing here is called back from
below.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Callable
from time import perf_counter
from typing import TYPE_CHECKING, Any

from aiohttp import web

from gateway import reasons
from gateway.adapters.registry import adapter_for
from gateway.apis.registry import APIS
from gateway.cache import request as response_cache
from gateway.cache.entry import NotStorable
from gateway.cache.replay import ReplayStream, replay
from gateway.cache.replay import prepare as prepare_replay
from gateway.context import Decision, RequestContext
from gateway.errors import Forbidden, GatewayError, RequestTimeout, Unauthorized, UpstreamError, UpstreamTimeout
from gateway.http import ids, ingress
from gateway.http.commit import Commit, Head
from gateway.http.recording import record, record_before_last_byte
from gateway.http.relay import relay_stream
from gateway.http.responses import common_headers, error_response
from gateway.http.state import STATE, GatewayState
from gateway.shadow.pair import side_of

if TYPE_CHECKING:
    from gateway.cache.entry import Entry
    from gateway.guardrails.engine import RequestGuard
    from gateway.guardrails.output_scan import OutputScanner
    from gateway.limits import Limits
    from gateway.providers.key_scrub import KeyScrubber

log = logging.getLogger("gateway.flow")

_NO_DEADLINE = contextlib.nullcontext()


def new_context(request: web.Request, api: str, state: GatewayState) -> RequestContext:
    rt = state.runtime
    headers = request.headers
    rid, trace_id, span_id, parent = ids.new_ids(headers.get("x-request-id"), headers.get("traceparent"),
                                                 rt.server.trust_request_id)
    ctx = RequestContext(
        request_id=rid,
        api=api, shape=APIS[api].error_shape, runtime=rt, received_at=time.time(),
        trace_id=trace_id, span_id=span_id, parent_span_id=parent,
    )
    ctx.timings.start = perf_counter()
    return ctx


def _tags(request: web.Request) -> tuple[str, ...]:
    raw = request.headers.get("x-gateway-tags")
    if not raw:
        return ()
    # Printable text only: tags go into records and logs, so no control characters (ANSI escapes) and
    # no lone surrogates from non-UTF-8 header bytes, which would also make the record unserialisable.
    tags = [t.strip() for t in raw.split(",") if t.strip()]
    return tuple(t[:64] for t in tags[:16] if t.isprintable())


async def serve(request: web.Request, api: str) -> web.StreamResponse:
    state = request.app[STATE]
    spec = APIS[api]
    ctx = new_context(request, api, state)
    rt = ctx.runtime
    tracer = rt.services.tracer
    if tracer is not None:
        tracer.begin(ctx, request.headers.get("traceparent"))
    # Shed load before any work when every in-flight slot is taken (rechecked once the body is in).
    if state.in_flight >= rt.server.max_in_flight:
        resp = error_response(ctx, ingress.overloaded(ctx))
        record(ctx)
        if ctx.trace is not None and tracer is not None:
            tracer.submit(ctx)
        return resp
    key_id = None
    in_flight = False
    opened = None
    scanner = None
    cached = None
    try:
        ctx.principal = rt.keys.authenticate(request.headers)
        if await rt.services.revocations.is_revoked(ctx.principal.key_id):
            raise Unauthorized("this API key has been revoked", code="revoked_api_key", reason=reasons.AUTH_REVOKED_KEY)
        # A request is in flight only once its body has arrived: a slow body holds its key's slot
        # and a body-reader slot, bounded in time, never one of the slots finished requests need.
        key_id = ingress.hold_key_slot(state, ctx)
        body = ctx.body = await ingress.read_body(request, ctx, state)
        ingress.enter(request, state, ctx)
        in_flight = True
        spec.validate(body)
        ctx.alias = body["model"]
        ctx.stream = bool(body.get("stream"))
        if ctx.stream and api in ("chat", "completions"):
            ctx.include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        ctx.tags = _tags(request)
        route = rt.router.route(ctx.alias)
        if ctx.principal.models and ctx.alias not in ctx.principal.models:
            ctx.decisions.append(Decision("keys", "auth", "refuse", reasons.AUTH_MODEL_NOT_ALLOWED))
            raise Forbidden(f"this key may not use the model '{ctx.alias}'", code="model_not_allowed",
                            param="model", reason=reasons.AUTH_MODEL_NOT_ALLOWED)
        guard = rt.guardrails.for_request(ctx.principal, ctx.alias) if rt.guardrails is not None else None
        if rt.cache is not None:
            cached = response_cache.begin(rt.cache, rt.services.cache, ctx, request.headers, guard is not None)
        own = ctx.principal.limits  # a key's own limits (admin API), charged like `scope = "key"` rules
        limits = rt.limits if own is None else rt.key_limits
        # A request the cache may answer is admitted in two phases: rps, rpm and concurrency now (a hit
        # counts), tpm, tpd and budgets only once the lookup missed (a hit spends nothing, so they never
        # refuse it). Any other request: every limit at once, one store round trip.
        split = (cached is not None and cached.read and limits is not None
                 and (limits.needs_prompt_tokens or (own is not None and own.needs_prompt_tokens)))
        if limits is not None:
            await _admit(ctx, limits, body, requests=True, tokens=not split)
        if guard is not None:
            t0 = perf_counter() if ctx.trace is not None else 0.0
            try:
                await guard.check_input(ctx)
            finally:
                if ctx.trace is not None:
                    ctx.trace.stages.append(("gateway.guardrails.input", t0, perf_counter()))
            scanner = guard.output_scanner(ctx)
            if scanner is not None and ctx.trace is not None:
                ctx.trace.output_scanned = True
        if route.shadow is not None and rt.services.shadows is not None:
            rt.services.shadows.offer(ctx, route.shadow)  # a sampled copy, queued: never waits
        if rt.services.recorder is not None and rt.services.recorder.sample_payload():
            ctx.payload_out = []
        if cached is not None:
            hit = await cached.lookup(ctx)
            if hit is not None:  # answered from the cache: no upstream, the answer through this request's filters
                if ctx.stream and hit.body is None:  # a stream, written as an upstream's is (the relay)
                    replayed = ReplayStream(ctx, hit, scanner)
                    return await relay_stream(request, ctx, Head(replayed, replayed.iter_chunks(), b"", None))
                await prepare_replay(hit, scanner)
                return await _send(request, ctx, _replayed(ctx, hit, scanner))
            if split and limits is not None:
                await _admit(ctx, limits, body, requests=False, tokens=True)
        # Sampled unless tracing is on and this request was not sampled: the upstream follows our decision.
        flags = "00" if tracer is not None and ctx.trace is None else "01"
        trace_headers = {"traceparent": f"00-{ctx.trace_id}-{ctx.span_id}-{flags}", "x-request-id": ctx.request_id}
        # Each attempt is bounded by its provider's timeouts (first byte, idle, total); an alias's
        # `timeout_s` also bounds all its attempts together.
        timeout = route.timeout_s
        try:
            async with asyncio.timeout(timeout) if timeout else _NO_DEADLINE:
                commit = Commit(ctx, scanner)  # reads each 2xx answer up to its first content
                opened = await rt.router.open(ctx, route, trace_headers, adapter_for, commit)
                if commit.body is not None:
                    out = commit.body
                    key_scrub = commit.scrub
                    if key_scrub is not None:
                        out = key_scrub.body(out)  # the upstream's own bytes unless the key is in them
                    ctx.status = 200
                    ctx.mark_first_token()
                    capture = ctx.capture()
                    if capture is not None:
                        capture.append(out)
                    if cached is not None:
                        await cached.complete(ctx, _at_rest(guard, key_scrub), out)
                    return await _send(request, ctx, web.Response(body=out, headers=common_headers(ctx),
                                                                  content_type="application/json"))
        except TimeoutError:
            raise UpstreamTimeout(f"the request did not complete within {timeout:g}s") from None
        # After its first content a stream is bounded by the idle timeout between chunks rather than a
        # total deadline (the alias's `timeout_s` bounds the attempts up to that first content).
        assert commit.head is not None  # a stream, committed
        store = None
        if cached is not None:
            store = functools.partial(cached.complete, ctx, _at_rest(guard, commit.scrub))
        return await relay_stream(request, ctx, commit.head, commit.scrub, store)
    except GatewayError as err:
        resp = error_response(ctx, err)
        if isinstance(err, RequestTimeout):
            resp.force_close()
            await _send(request, ctx, resp)
            ingress.close_connection(request)
            return resp
        return await _send(request, ctx, resp)
    except asyncio.CancelledError:
        if state.draining and time.monotonic() >= state.drain_deadline:
            ctx.status = 503  # the drain deadline passed: the server cut the request, not the client
            ctx.decisions.append(Decision("server", "server", "abort", reasons.SERVER_DRAIN_DEADLINE))
        else:
            ctx.client_disconnected = True
            ctx.decisions.append(Decision("client", "client", "abort", reasons.CLIENT_DISCONNECTED))
        raise
    except Exception:
        log.exception("unhandled error in request %s", ctx.request_id)
        return await _send(request, ctx, error_response(ctx, GatewayError(f"internal gateway error (request id {ctx.request_id})")))
    finally:
        if in_flight:
            ingress.leave(request, state)
        if key_id is not None:
            ingress.release_key_slot(state, key_id)
        if opened is not None:
            opened.reply.close()
            rt.router.finished(opened, ctx.timings.first_token, ctx.timings.end or perf_counter())
        if scanner is not None:
            scanner.close()
        if cached is not None:
            cached.release()
        await _settle(ctx)
        record(ctx)
        if ctx.trace is not None and tracer is not None:
            tracer.submit(ctx)
        if ctx.shadow_pair is not None:
            ctx.shadow_pair.done(side_of(ctx, rt.cost_usd(ctx)))


async def _send(request: web.Request, ctx: RequestContext, resp: web.Response) -> web.Response:
    """Write the whole response now, so that settling limits (the `finally`) happens after the
    caller has its answer rather than before it. aiohttp holds the headers until the body goes out
    in `write_eof`: the record goes to the spool between the two."""
    try:
        await resp.prepare(request)
        record_before_last_byte(request, ctx)
        await resp.write_eof()
    except ConnectionError:
        ctx.client_disconnected = True
    if not ctx.timings.end:
        ctx.timings.end = perf_counter()
    return resp


def _replayed(ctx: RequestContext, hit: Entry, scanner: OutputScanner | None) -> web.Response:
    """A whole request's cache hit (a streamed one goes through the relay, as a `ReplayStream`)."""
    out = replay(ctx, hit, scanner)
    ctx.status = 200
    if ctx.payload_out is not None:
        ctx.payload_out.append(out)
    return web.Response(body=out, headers=common_headers(ctx), content_type="application/json")


def _at_rest(guard: RequestGuard | None, key_scrub: KeyScrubber | None) -> Callable[[str], str]:
    """How a cached answer's text is kept: the request's output rules (no pseudonym restored), then the
    provider's key taken out."""

    def scrub(text: str) -> str:
        if guard is not None:
            kept = guard.redact_at_rest(text)
            if kept is None:
                raise NotStorable
            text = kept
        return key_scrub.text(text) if key_scrub is not None else text

    return scrub


async def _admit(ctx: RequestContext, limits: Limits, body: dict[str, Any], *, requests: bool, tokens: bool) -> None:
    spec = APIS[ctx.api]
    own = ctx.principal.limits if ctx.principal is not None else None
    if tokens and (limits.needs_prompt_tokens or (own is not None and own.needs_prompt_tokens)):
        ctx.prompt_tokens_estimate = limits.estimate_prompt_tokens(ctx)
    t0 = perf_counter() if ctx.trace is not None else 0.0
    try:
        await limits.admit(ctx, ctx.prompt_tokens_estimate, spec.max_output_tokens(body) or 0,
                           spec.output_choices(body), requests=requests, tokens=tokens)
    finally:
        if ctx.trace is not None:
            ctx.trace.stages.append(("gateway.limits", t0, perf_counter()))


async def _settle(ctx: RequestContext) -> None:
    limits = ctx.runtime.key_limits or ctx.runtime.limits  # the same object when rules are configured
    if ctx.admission is None or limits is None:
        return
    try:
        await limits.settle(ctx)
    except Exception:
        log.exception("settling limits failed for request %s", ctx.request_id)

