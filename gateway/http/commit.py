"""Committing to an upstream answer: a 2xx answer is read up to its first content before the client
gets a byte, so an answer that fails before then is retried on the next target like a 5xx.

The router opens an upstream reply (2xx headers) and hands it to `Commit`, which reads on:

- a stream: upstream events go through the request's pipe (decoder, filters, encoder) and the bytes
  it makes are held, until an event carries content (text or a tool call). Then the answer is
  committed: the relay writes what was held and goes on relaying. An error event, a cut, an idle
  timeout or an unreadable event before that is the target's failure: the router closes the reply,
  counts it against the target's breaker, and tries the next target with a fresh pipe. A stream
  that ends cleanly with no content at all is committed as it is.
- a whole answer: the body is read and turned into the caller's body. A cut or stalled body, an
  unreadable one, or a 200 without an answer in it is the target's failure, retried the same way.

After the first content nothing is retried: the client has the answer's start, and a later upstream
error ends the stream in the caller's format (gateway.http.relay). A `GatewayError` that is not the
upstream's (a guardrail's decision) and any other exception propagate: they are the request's outcome,
not a reason to try another target.

What it costs: the events before the first content (a stream's first one or two) are piped here
instead of in the relay's loop, with one check per upstream read; the relay then continues with the
same pipe, parser and chunk iterator, so later events cost nothing more.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import AsyncIterator
from dataclasses import dataclass
from time import perf_counter
from typing import TYPE_CHECKING, Any

from gateway.adapters.pipeline import UpstreamMalformed, prepare_whole
from gateway.adapters.registry import ADAPTERS
from gateway.codecs import Malformed
from gateway.context import RequestContext, Usage
from gateway.errors import GatewayError, UpstreamError, UpstreamTimeout

if TYPE_CHECKING:
    from gateway.adapters.pipeline import Pipe, StreamPipe
    from gateway.guardrails.output_scan import OutputScanner
    from gateway.providers.key_scrub import KeyScrubber
    from gateway.routing.router import Opened

log = logging.getLogger("gateway.commit")

_FAILED_BEFORE_CONTENT = "the upstream's stream failed before its first content"


@dataclass(slots=True)
class Head:
    """A committed stream: what the pipe made up to the first content, and how to read on."""

    pipe: Pipe  # its `framer` cuts the upstream's bytes into events (a cache hit's: groups of events)
    chunks: AsyncIterator[Any]
    data: bytes  # the bytes held back until the first content
    tail: bytes | None  # the upstream ended already: the stream's last bytes (`pipe.finish()`)


class Commit:
    """The router's `confirm` for one request: returns None once the answer is committed (then
    `head` or `body` holds it), or the error that makes the router try the next target."""

    __slots__ = ("ctx", "scanner", "head", "body", "scrub")

    def __init__(self, ctx: RequestContext, scanner: OutputScanner | None) -> None:
        self.ctx = ctx
        self.scanner = scanner
        self.head: Head | None = None
        self.body: bytes | None = None  # a whole answer's body, in the caller's API
        self.scrub: KeyScrubber | None = None  # the committed provider's key scrubber

    async def __call__(self, opened: Opened) -> GatewayError | None:
        ctx = self.ctx
        self.scrub = opened.provider.scrubber
        adapter = ADAPTERS[(ctx.api, opened.provider.wire)]
        if not ctx.stream:
            err = await self._whole(opened)
        else:
            pipe = adapter.stream(ctx, self.scanner)
            err = await self._stream(opened, pipe)
            if err is not None:
                pipe.close()
        if err is not None:
            ctx.upstream_stream_error = None  # the next attempt starts clean
            ctx.usage = Usage()
            if ctx.cache_fill is not None:
                ctx.cache_fill.reset()
        return err

    async def _whole(self, opened: Opened) -> GatewayError | None:
        ctx = self.ctx
        try:
            raw = await opened.reply.read()
        except GatewayError as err:
            return err
        finally:
            ctx.timings.upstream_wait += perf_counter() - ctx.timings.first_byte
        adapter = ADAPTERS[(ctx.api, opened.provider.wire)]
        if self.scanner is not None and self.scanner.slow:  # the NER tier, off the event loop, first
            await prepare_whole(adapter, raw, self.scanner)
        try:
            self.body = adapter.response(ctx, raw, self.scanner)
        except UpstreamMalformed as exc:
            log.warning("request %s: unreadable upstream response\n%s", ctx.request_id,
                        upstream_exc_text(exc.__cause__ or exc, self.scrub))
            return UpstreamError("the upstream sent a malformed response", code="upstream_malformed_response")
        except UpstreamError as err:  # a 200 without an answer in it
            return err
        return None

    async def _stream(self, opened: Opened, pipe: StreamPipe) -> GatewayError | None:
        ctx = self.ctx
        timings = ctx.timings
        parser = pipe.framer
        chunks = opened.reply.iter_chunks().__aiter__()
        held: list[bytes] = []
        try:
            while True:
                t0 = perf_counter()
                try:
                    chunk = await anext(chunks, None)
                finally:
                    timings.upstream_wait += perf_counter() - t0
                if chunk is None:
                    if pipe.slow:
                        tail = b"".join([await pipe.feed_slow(e) for e in parser.close()]) + await pipe.finish_slow()
                    else:
                        tail = b"".join([pipe.feed(e) for e in parser.close()]) + pipe.finish()
                    if ctx.upstream_stream_error is not None:
                        return UpstreamError(_FAILED_BEFORE_CONTENT, code="upstream_stream_error")
                    self.head = Head(pipe, chunks, b"".join(held), tail)
                    return None
                try:
                    events = parser.feed(chunk)
                except Malformed as exc:  # binary framing (AWS event-stream) that failed its checks
                    raise UpstreamMalformed("the upstream sent a malformed stream event",
                                            code="upstream_malformed_event") from exc
                for event in events:
                    data = await pipe.feed_slow(event) if pipe.slow else pipe.feed(event)
                    if data:
                        held.append(data)
                if ctx.upstream_stream_error is not None:
                    return UpstreamError(_FAILED_BEFORE_CONTENT, code="upstream_stream_error")
                if timings.first_token or pipe.content:
                    self.head = Head(pipe, chunks, b"".join(held), None)
                    return None
        except UpstreamMalformed as exc:
            log.warning("request %s: unreadable upstream stream event before the first content\n%s",
                        ctx.request_id, upstream_exc_text(exc.__cause__ or exc, self.scrub))
            return exc
        except (UpstreamError, UpstreamTimeout) as err:  # the upstream broke or stalled
            return err


def upstream_exc_text(exc: BaseException, key_scrub: KeyScrubber | None) -> str:
    """An exception raised on upstream data, for the log: its message may quote that data (`int('...')`),
    so the provider's key is taken out of it."""
    text = "".join(traceback.format_exception(exc))
    return key_scrub.text(text) if key_scrub is not None else text
