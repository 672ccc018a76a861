"""When a request's record is submitted: before the last byte of its response, once.

A client that has read a whole answer must find its record after any process kill. The recorder's
`submit` writes the record to the spool (a returned write(2), no fsync) before it returns, so the
flow and the stream relay submit it right before the write that carries the response's last byte
(a non-stream body; a stream's final events, which precede the chunked terminator). A request whose
response never reached that write (the client left, the handler was cancelled) is recorded by the
flow's `finally` instead.
"""

from __future__ import annotations

from time import perf_counter

from aiohttp import web

from gateway.context import RequestContext


def record(ctx: RequestContext) -> None:
    """Submit the request record with what the context holds now; a second call does nothing."""
    if ctx.recorded:
        return
    ctx.recorded = True
    if not ctx.timings.end:  # latency ends when the caller has the whole answer, before settling
        ctx.timings.end = perf_counter()
    if not ctx.status:
        ctx.status = 499 if ctx.client_disconnected else 200
    recorder = ctx.runtime.services.recorder
    if recorder is not None:
        recorder.submit(ctx, ctx.runtime.cost_usd(ctx))


def record_before_last_byte(request: web.Request, ctx: RequestContext) -> None:
    """Record now, unless the connection is already closing: then the last write fails, the caller
    marks the client as gone and the flow's `finally` records that."""
    transport = request.transport
    if transport is not None and not transport.is_closing():
        ctx.timings.end = perf_counter()
        record(ctx)
