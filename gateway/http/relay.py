"""The stream relay: upstream bytes -> SSE events -> the request's pipe (decoder, filters, encoder)
-> byte stages (key scrub, capture) -> client.

It starts from a committed `Head` (gateway.http.commit): what the pipe made up to the upstream's
first content, held until then so that an answer failing before it could go to another target.

Events are relayed as they arrive: each upstream read is parsed, piped and written before the next
read, and `write` waits while the client's socket buffer is full, so a slow client slows the upstream
read (backpressure) instead of filling memory. A client that goes away raises on write (or cancels the
handler); the `finally` of the flow then closes the upstream connection. An upstream that stalls past
the idle timeout, breaks, or sends an error ends the stream with an error event in the caller's format;
nothing is retried once bytes have gone to the client. The request's record is submitted right before
the stream's last events are written (gateway.http.recording).

Once the response is prepared, this function is the only writer: every exception is caught here and
ends the stream with one in-band error event (or, if writing fails, nothing more), so nothing can
reach the flow and write a second response. Who is blamed depends on where it came from: the decoder
(`UpstreamMalformed`: the upstream), a filter's policy decision (`GatewayError`), or anything else (a
gateway bug, logged with the request id).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from time import perf_counter

from aiohttp import web

from gateway import reasons
from gateway.adapters.pipeline import Pipe, UpstreamMalformed
from gateway.codecs import Malformed
from gateway.context import Decision, RequestContext
from gateway.errors import GatewayError, UpstreamError
from gateway.filters.byte_stages import ByteStages
from gateway.http.commit import Head, upstream_exc_text
from gateway.http.recording import record_before_last_byte
from gateway.http.responses import common_headers
from gateway.providers.key_scrub import KeyScrubber

log = logging.getLogger("gateway.relay")

__all__ = ["relay_stream", "upstream_exc_text"]


async def relay_stream(request: web.Request, ctx: RequestContext, head: Head,
                       key_scrub: KeyScrubber | None = None,
                       before_last: Callable[[], Awaitable[None]] | None = None) -> web.StreamResponse:
    """`key_scrub`: the provider's credential, taken out of everything relayed (an upstream error event
    may quote it, a model may repeat it), also when it is split across two events. `before_last`: awaited
    once the answer is complete and well, right before its last bytes (the response cache stores it then,
    so a caller that has the whole answer finds it cached)."""
    resp = web.StreamResponse(status=200, headers=common_headers(ctx))
    resp.content_type = "text/event-stream"
    resp.headers["Cache-Control"] = "no-cache"
    resp.headers["X-Accel-Buffering"] = "no"
    await resp.prepare(request)
    ctx.status = 200
    stages = ByteStages(ctx, key_scrub)
    pipe, chunks = head.pipe, head.chunks
    parser = pipe.framer
    timings = ctx.timings
    slow = pipe.slow  # NER on the output: each event's text is prepared off the event loop first
    try:
        try:
            if head.data:
                await resp.write(stages.feed(head.data))
            data = head.tail
            if data is None:
                while True:
                    t0 = perf_counter()
                    chunk = await anext(chunks, None)
                    t1 = perf_counter()
                    timings.upstream_wait += t1 - t0
                    if chunk is None:
                        break
                    try:
                        events = parser.feed(chunk)
                    except Malformed as exc:  # binary framing (AWS event-stream) that failed its checks
                        raise UpstreamMalformed("the upstream sent a malformed stream event",
                                                code="upstream_malformed_event") from exc
                    if not events:
                        continue
                    if slow:
                        data = b"".join([await pipe.feed_slow(e) for e in events])
                    else:
                        data = pipe.feed(events[0]) if len(events) == 1 else b"".join([pipe.feed(e) for e in events])
                    if data:
                        if ctx.upstream_stream_error is not None and not ctx.recorded:
                            # The upstream's error event ends the caller's answer: its record goes first.
                            ctx.error = UpstreamError("the upstream reported an error mid-stream",
                                                      code="upstream_stream_error")
                            pipe.close()
                            record_before_last_byte(request, ctx)
                        await resp.write(stages.feed(data))
                        timings.client_wait += perf_counter() - t1
                if slow:
                    data = b"".join([await pipe.feed_slow(e) for e in parser.close()]) + await pipe.finish_slow()
                else:
                    data = b"".join([pipe.feed(e) for e in parser.close()]) + pipe.finish()
            data = stages.finish(data)
            if ctx.upstream_stream_error is not None:
                ctx.error = UpstreamError("the upstream reported an error mid-stream", code="upstream_stream_error")
            pipe.close()  # usage settles now: the record below carries it (closing again later is harmless)
            if before_last is not None and ctx.error is None:
                await before_last()
            record_before_last_byte(request, ctx)
            await resp.write(data)
        except ConnectionError:
            raise
        except UpstreamMalformed as err:
            log.warning("request %s: unreadable upstream stream event\n%s", ctx.request_id,
                        upstream_exc_text(err.__cause__ or err, key_scrub))
            await _end_with_error(request, resp, ctx, pipe, stages, err)
        except GatewayError as err:
            if err.reason:
                ctx.decisions.append(Decision("stream", "stream", "abort", err.reason, direction="output"))
            await _end_with_error(request, resp, ctx, pipe, stages, err)
        except Exception:
            log.exception("request %s: gateway error while relaying the stream", ctx.request_id)
            bug = GatewayError(f"internal gateway error (request id {ctx.request_id})")
            await _end_with_error(request, resp, ctx, pipe, stages, bug)
        await resp.write_eof()
    except ConnectionError:
        # The client went away mid-stream (aiohttp raises ClientConnectionResetError on write).
        ctx.client_disconnected = True
        ctx.decisions.append(Decision("client", "client", "abort", reasons.CLIENT_DISCONNECTED, direction="output"))
    except Exception:
        # Writing the closing error failed in an unforeseen way: the response has started, so no
        # second one; the connection is closed by aiohttp when the handler returns.
        log.exception("request %s: could not end the stream", ctx.request_id)
    finally:
        try:
            pipe.close()
        except Exception:
            log.exception("request %s: closing the stream's filters failed", ctx.request_id)
        if not ctx.timings.end:
            ctx.timings.end = perf_counter()
    return resp


async def _end_with_error(request: web.Request, resp: web.StreamResponse, ctx: RequestContext, pipe: Pipe,
                          stages: ByteStages, err: GatewayError) -> None:
    """One closing error event in the caller's format, after what the key scrub still holds."""
    ctx.error = err
    try:
        pipe.close()  # the usage so far (or counted), for the record
    except Exception:
        log.exception("request %s: closing the stream's filters failed", ctx.request_id)
    record_before_last_byte(request, ctx)
    try:
        held = stages.finish()
    except Exception:
        log.exception("request %s: the key scrub failed while ending the stream", ctx.request_id)
        held = b""  # what it held may hold the key: dropped
    await resp.write(held + pipe.error_event(err.message, err.code))
