"""A hit, answered: the entry's events through the request's own filter chain (usage, output guardrails
with this request's pseudonyms, first-token timing) and the encoder of the caller's API, built from the
events as for a translated answer (the upstream's own bytes are not kept). A whole request gets a body
(`replay`). A streamed one gets a real stream (`ReplayStream`, written by the stream relay as an upstream's
answer is, with its backpressure, byte stages and in-band errors): the entry keeps each text whole (so a
detector sees values whole at rest), and the replay cuts it again into pieces of `PIECE_CHARS`, sent
`GROUP` events per write, each piece through the filters as it goes. Usage reaches the caller as it was;
the request itself used nothing (its `ctx.usage` is left at zero, so limits settle the hit at zero).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

from gateway.cache.entry import Entry
from gateway.codecs.chat_encoder import ChatEncoder
from gateway.codecs.messages_encoder import MessagesEncoder
from gateway.context import RequestContext, Usage
from gateway.events import End, Event, TextDelta, ToolCallDelta
from gateway.filters.chain import Chain

if TYPE_CHECKING:
    from gateway.guardrails.output_scan import OutputScanner


def _chat(ctx: RequestContext, entry: Entry) -> ChatEncoder:
    return ChatEncoder(relay=False, include_usage=ctx.include_usage, id="chatcmpl-" + ctx.request_id,
                       model=entry.model, created=int(time.time()))


def _messages(ctx: RequestContext, entry: Entry) -> MessagesEncoder:
    return MessagesEncoder(relay=False, model=entry.model)


# The caller APIs a hit is replayed in (gateway.cache.rules.REPLAYED_APIS): one line per API.
ENCODERS: dict[str, Callable[[RequestContext, Entry], Any]] = {"chat": _chat, "messages": _messages}


def _no_raw(raw: bytes) -> str:
    return ""  # a replay has no raw upstream events (the fast lane is never used)


async def prepare(entry: Entry, scanner: OutputScanner | None) -> None:
    """A whole hit's texts through the output scanner's NER tier, off the event loop, before `replay`
    scans them (only when the scanner has one; a stream prepares group by group, `ReplayStream.feed_slow`)."""
    if scanner is None or not scanner.slow or entry.body is not None:
        return
    texts = [ev.text for ev in entry.events if isinstance(ev, TextDelta) and ev.text]
    args = [ev.arguments for ev in entry.events if isinstance(ev, ToolCallDelta) and ev.arguments]
    await scanner.prepare_whole(texts, args)


def replay(ctx: RequestContext, entry: Entry, scanner: OutputScanner | None) -> bytes:
    """The caller's whole body from `entry` (a streamed request is a `ReplayStream`)."""
    if entry.body is not None:  # a whole-body API (embeddings): no text, nothing to scan or encode
        ctx.mark_first_token()
        return entry.body
    encoder = ENCODERS[ctx.api](ctx, entry)
    chain = Chain.compose(ctx, scanner, _no_raw, whole=True)
    try:
        out: bytes = encoder.whole(chain.run(entry.replay_events()), b"")
    finally:
        chain.close()
        ctx.usage = Usage()  # the answer's usage went to the caller; this request spent none
    ctx.mark_first_token()
    return out

PIECE_CHARS = 24  # a streamed hit's text and tool arguments, cut again to about what a model streams
GROUP = 8  # pieces per write: a few hundred bytes, so a long answer is many writes rather than one


def pieces(events: list[Event]) -> list[Event]:
    """Each text and tool call's arguments in pieces of `PIECE_CHARS` (a tool call's id and name on its first)."""
    out: list[Event] = []
    for ev in events:
        if isinstance(ev, TextDelta) and len(ev.text) > PIECE_CHARS:
            t = ev.text
            out += [TextDelta(ev.choice, t[i:i + PIECE_CHARS]) for i in range(0, len(t), PIECE_CHARS)]
        elif isinstance(ev, ToolCallDelta) and len(ev.arguments) > PIECE_CHARS:
            a = ev.arguments
            out.append(ToolCallDelta(ev.choice, ev.index, ev.id, ev.name, a[:PIECE_CHARS]))
            out += [ToolCallDelta(ev.choice, ev.index, None, None, a[i:i + PIECE_CHARS])
                    for i in range(PIECE_CHARS, len(a), PIECE_CHARS)]
        else:
            out.append(ev)
    return out


class ReplayStream:
    """A streamed hit, for the stream relay (gateway.http.relay): the source of its event groups
    (`iter_chunks`), their framer (a group is one unit) and the pipe (filters -> the caller's encoder)."""

    __slots__ = ("ctx", "entry", "enc", "chain", "error_event", "closed", "framer", "scanner", "slow")

    def __init__(self, ctx: RequestContext, entry: Entry, scanner: OutputScanner | None) -> None:
        self.ctx = ctx
        self.entry = entry
        self.enc = ENCODERS[ctx.api](ctx, entry)
        self.error_event: Callable[[str, str], bytes] = self.enc.error_event
        self.chain = Chain.compose(ctx, scanner, _no_raw)
        self.closed = False
        self.framer = _Groups()  # the relay's framer: one group of events is one unit
        self.scanner = scanner
        self.slow = bool(scanner is not None and scanner.slow)  # NER on the output: feed_slow, finish_slow

    async def iter_chunks(self) -> AsyncIterator[list[Event]]:
        events = pieces(self.entry.replay_events())
        for i in range(0, len(events), GROUP):
            yield events[i:i + GROUP]

    def feed(self, group: list[Event]) -> bytes:
        out: bytes = self.enc.encode(self.chain.run(group))
        return out

    async def feed_slow(self, group: list[Event]) -> bytes:
        """`feed` with the group's texts prepared for the NER tier off the event loop first."""
        if self.scanner is not None:
            await self.scanner.prepare(group)
        return self.feed(group)

    async def finish_slow(self) -> bytes:
        return self.finish()  # the end carries no text of its own

    def finish(self) -> bytes:
        tail = self.chain.end([End()])
        out: bytes = self.enc.encode(tail) + self.enc.finish_stream()
        return out

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.chain.close()
            self.ctx.usage = Usage()  # the answer's usage went to the caller; this request spent none


class _Groups:
    """The relay's framer for a replay: each group of events is one unit (an upstream's is SSE or its wire's)."""

    def feed(self, group: list[Event]) -> list[list[Event]]:
        return [group]

    def close(self) -> list[list[Event]]:
        return []
