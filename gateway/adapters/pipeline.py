"""One answer's way through the gateway: decoder -> filter chain -> encoder, then the byte stages
(in the relay). `StreamPipe` does it per upstream SSE event; `whole_response` for a whole body.

Ownership of failures, by structure: only the decoder reads upstream data, so only what the decoder
raises becomes `UpstreamMalformed` (the upstream's fault, 502 / `upstream_malformed_event`). A
`GatewayError` from a filter (a guardrail blocking) is the policy's answer. Anything else a filter or
an encoder raises is a gateway bug, left to propagate to the relay (which ends the stream in-band) or
the flow (a logged 500).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

import orjson

from gateway.codecs import Malformed
from gateway.context import RequestContext
from gateway.errors import UpstreamError
from gateway.events import Event, TextDelta, ToolCallDelta
from gateway.filters.chain import Chain
from gateway.translate.sse import SSEEvent

if TYPE_CHECKING:
    from gateway.adapters.base import Adapter
    from gateway.guardrails.output_scan import OutputScanner

# What reading unexpected upstream data raises (orjson.JSONDecodeError is a ValueError).
_UNREADABLE = (Malformed, ValueError, TypeError, KeyError, AttributeError, IndexError)


class Framer(Protocol):
    """Cuts upstream body bytes into events: `SSEParser`, or a wire's own framing (AWS event-stream).
    It raises `Malformed` for framing it cannot read."""

    def feed(self, chunk: bytes) -> list[SSEEvent]: ...

    def close(self) -> list[SSEEvent]: ...


class Units(Protocol):
    """What a relayed pipe's `framer` is: a `Framer` (an upstream's bytes into events), or a cache hit's
    (gateway.cache.replay: each group of events is one unit)."""

    def feed(self, chunk: Any) -> list[Any]: ...

    def close(self) -> list[Any]: ...


class Pipe(Protocol):
    """What the stream relay runs each unit through: `StreamPipe` (an upstream's answer) or a cache hit's
    `gateway.cache.replay.ReplayStream`."""

    @property
    def framer(self) -> Units: ...

    @property
    def feed(self) -> Callable[[Any], bytes]: ...

    @property
    def error_event(self) -> Callable[[str, str], bytes]: ...

    @property
    def slow(self) -> bool: ...  # an output scanner with an NER tier: the relay awaits feed_slow / finish_slow

    def finish(self) -> bytes: ...

    async def feed_slow(self, unit: Any) -> bytes: ...

    async def finish_slow(self) -> bytes: ...

    def close(self) -> None: ...


class UpstreamMalformed(UpstreamError):
    """Upstream data the decoder could not read; `__cause__` holds what it raised."""


class StreamPipe:
    __slots__ = ("ctx", "framer", "dec", "enc", "chain", "feed", "error_event", "content", "scanner", "slow",
                 "_decode", "_run", "_encode")

    def __init__(self, adapter: Adapter, ctx: RequestContext, scanner: OutputScanner | None) -> None:
        self.ctx = ctx
        self.framer: Framer = adapter.framer()  # the relay cuts the upstream's bytes into events with it
        self.dec: Any = adapter.decoder()
        self.enc: Any = adapter.encoder(ctx)
        self.error_event = self.enc.error_event  # an in-band error event in the caller's format
        self.chain = Chain.compose(ctx, scanner, adapter.text_of)
        # The upstream sent content (text or a tool call), whether or not a filter still holds it:
        # the point after which the answer is not retried on another target (gateway.http.commit).
        # Without output guardrails the first-token mark says the same, so the fast lane skips this.
        self.content = False
        self.scanner = scanner
        self.slow = bool(scanner is not None and scanner.slow)  # the relay awaits feed_slow / finish_slow
        self._decode, self._run, self._encode = self.dec.feed, self.chain.run, self.enc.encode  # bound once
        # `feed(event) -> bytes`: when no filter rewrites text, the fast lane relays the events it
        # recognises as the upstream's bytes and hands the others to the full path (one call per event).
        # The fast lane only when no filter reads or rewrites text (guardrails, cache fill, shadow answer).
        plain = scanner is None and ctx.cache_fill is None and ctx.answer is None
        fast = adapter.fast_lane(ctx, self.dec, self.chain.usage.parts, self._feed) if plain else None
        self.feed = fast.feed if fast is not None else self._feed

    def _feed(self, event: SSEEvent) -> bytes:
        return self._pass(self._decoded(event))

    def _decoded(self, event: SSEEvent) -> list[Event]:
        try:
            events: list[Event] = self._decode(event)
        except _UNREADABLE as exc:
            raise UpstreamMalformed("the upstream sent a malformed stream event",
                                    code="upstream_malformed_event") from exc
        if not self.content:
            for ev in events:
                if type(ev) is TextDelta and ev.text or type(ev) is ToolCallDelta:
                    self.content = True
                    break
        return events

    async def feed_slow(self, event: SSEEvent) -> bytes:
        """`feed` where the output scanner has an NER tier: its findings for the event's texts are
        computed off the event loop first (gateway.guardrails.slow_tier)."""
        events = self._decoded(event)
        if self.scanner is not None:
            await self.scanner.prepare(events)
        return self._pass(events)

    def _pass(self, events: list[Event]) -> bytes:
        out = self._encode(self._run(events), self.dec.raw)
        if self.enc.error is not None and self.ctx.upstream_stream_error is None:
            self.ctx.upstream_stream_error = self.enc.error
        return out

    async def finish_slow(self) -> bytes:
        """`finish` with the decoder's last events prepared for the NER tier first."""
        events = self.dec.end()
        if self.scanner is not None:
            await self.scanner.prepare(events)
        return self.finish(events)

    def finish(self, last: list[Event] | None = None) -> bytes:
        """The upstream body ended: what the filters still hold, and the stream's last events."""
        events = self.chain.end(self.dec.end() if last is None else last)
        out = self.enc.encode(events) + self.enc.finish_stream() if events else self.enc.finish_stream()
        if self.enc.error is not None and self.ctx.upstream_stream_error is None:
            self.ctx.upstream_stream_error = self.enc.error
        return out

    def close(self) -> None:
        """However the stream ended: ctx.usage holds what was used. Idempotent: the relay closes before
        it records the request (so the record has the usage) and again in its `finally`."""
        self.chain.close()


async def prepare_whole(adapter: Adapter, raw: bytes, scanner: OutputScanner) -> None:
    """The NER tier over a whole answer's texts, off the event loop, before `whole_response` scans them.
    An unreadable body is left to `whole_response` to report."""
    try:
        events = adapter.decoder().whole(orjson.loads(raw), raw)
    except _UNREADABLE:
        return
    texts = [ev.text for ev in events if isinstance(ev, TextDelta) and ev.text]
    args = [ev.arguments for ev in events if isinstance(ev, ToolCallDelta) and ev.arguments]
    await scanner.prepare_whole(texts, args)


def whole_response(adapter: Adapter, ctx: RequestContext, raw: bytes, scanner: OutputScanner | None) -> bytes:
    """The caller's body for a whole upstream body; sets ctx.usage."""
    try:
        events = adapter.decoder().whole(orjson.loads(raw), raw)
    except _UNREADABLE as exc:
        raise UpstreamMalformed("the upstream sent a malformed response",
                                code="upstream_malformed_response") from exc
    chain = Chain.compose(ctx, scanner, adapter.text_of, whole=True)
    try:
        return adapter.encoder(ctx).whole(chain.run(events), raw)
    finally:
        chain.close()
