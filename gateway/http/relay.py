"""The stream relay: upstream SSE bytes -> adapter (translation, usage, output guardrails) -> client.

Events are relayed as they arrive: each upstream read is parsed, translated and written before the
next read, and `write` waits while the client's socket buffer is full, so a slow client slows the
upstream read (backpressure) instead of filling memory. A client that goes away raises on write (or
cancels the handler); the `finally` of the flow then closes the upstream connection. An upstream that
stalls past the idle timeout, breaks, or sends an error ends the stream with an error event in the
caller's format; nothing is retried once bytes have gone to the client. So does an upstream event the
adapter cannot read (malformed JSON, a wrong type): once the response has started, nothing may escape
to the flow, whose error response would be written into the middle of the stream. The request's
record is submitted right before the stream's last events are written (gateway.http.recording).
"""

from __future__ import annotations

import logging
import traceback
from time import perf_counter

from aiohttp import web

from gateway import reasons
from gateway.adapters.base import Adapter
from gateway.context import Decision, RequestContext
from gateway.errors import GatewayError, UpstreamError
from gateway.http.recording import record_before_last_byte
from gateway.http.responses import common_headers
from gateway.providers.base import UpstreamReply
from gateway.providers.key_scrub import KeyScrubber, StreamScrub
from gateway.translate.sse import SSEParser

log = logging.getLogger("gateway.relay")

# What an adapter raises on an upstream event it cannot read (orjson.JSONDecodeError is a ValueError).
MALFORMED_UPSTREAM = (ValueError, TypeError, KeyError, AttributeError, IndexError)


def upstream_exc_text(exc: BaseException, key_scrub: KeyScrubber | None) -> str:
    """An exception raised on upstream data, for the log: its message may quote that data (`int('...')`),
    so the provider's key is taken out of it."""
    text = "".join(traceback.format_exception(exc))
    return key_scrub.text(text) if key_scrub is not None else text


async def relay_stream(request: web.Request, ctx: RequestContext, adapter: Adapter, reply: UpstreamReply,
                       scanner, key_scrub: KeyScrubber | None = None) -> web.StreamResponse:
    """`key_scrub`: the provider's credential, taken out of everything relayed (an upstream error event
    may quote it, a model may repeat it), also when it is split across two events."""
    resp = web.StreamResponse(status=200, headers=common_headers(ctx))
    resp.content_type = "text/event-stream"
    resp.headers["Cache-Control"] = "no-cache"
    resp.headers["X-Accel-Buffering"] = "no"
    await resp.prepare(request)
    ctx.status = 200
    stream = adapter.stream(ctx, scanner)
    scrub = key_scrub.stream() if key_scrub is not None else None
    parser = SSEParser()
    chunks = reply.iter_chunks().__aiter__()
    timings = ctx.timings
    try:
        try:
            while True:
                t0 = perf_counter()
                chunk = await anext(chunks, None)
                t1 = perf_counter()
                timings.upstream_wait += t1 - t0
                if chunk is None:
                    break
                out: list[bytes] = []
                for event in parser.feed(chunk):
                    out += stream.feed(event)
                if out:
                    data = b"".join(out) if len(out) > 1 else out[0]
                    if scrub is not None:
                        data = scrub.feed(data)
                    if ctx.payload_out is not None:
                        ctx.payload_out.append(data)
                    await resp.write(data)
                    timings.client_wait += perf_counter() - t1
            out = []
            for event in parser.close():
                out += stream.feed(event)
            out += stream.finish()
            data = b"".join(out)
            if scrub is not None:
                data = scrub.feed(data) + scrub.finish()
            if ctx.payload_out is not None:
                ctx.payload_out.append(data)
            if ctx.upstream_stream_error is not None:
                ctx.error = UpstreamError("the upstream reported an error mid-stream", code="upstream_stream_error")
            record_before_last_byte(request, ctx)
            await resp.write(data)
        except GatewayError as err:
            ctx.error = err
            if err.reason:
                ctx.decisions.append(Decision("stream", "stream", "abort", err.reason, direction="output"))
            record_before_last_byte(request, ctx)
            await resp.write(_held(scrub, ctx) + stream.error_event(err.message, err.code))
        except MALFORMED_UPSTREAM as exc:
            log.warning("request %s: unreadable upstream stream event\n%s", ctx.request_id,
                        upstream_exc_text(exc, key_scrub))
            err = ctx.error = UpstreamError("the upstream sent a malformed stream event", code="upstream_malformed_event")
            record_before_last_byte(request, ctx)
            await resp.write(_held(scrub, ctx) + stream.error_event(err.message, err.code))
        await resp.write_eof()
    except ConnectionError:
        # The client went away mid-stream (aiohttp raises ClientConnectionResetError on write).
        ctx.client_disconnected = True
        ctx.decisions.append(Decision("client", "client", "abort", reasons.CLIENT_DISCONNECTED, direction="output"))
    finally:
        stream.close()
        if not ctx.timings.end:
            ctx.timings.end = perf_counter()
    return resp


def _held(scrub: StreamScrub | None, ctx: RequestContext) -> bytes:
    """Events held back by the key scrub (a possible key start), released before a closing error event."""
    if scrub is None:
        return b""
    data = scrub.finish()
    if data and ctx.payload_out is not None:
        ctx.payload_out.append(data)
    return data
