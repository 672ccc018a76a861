"""A hit, answered: the entry's events through the request's own filter chain (usage, output guardrails
with this request's pseudonyms, first-token timing) and the encoder of the caller's API, built from the
events as for a translated answer (the upstream's own bytes are not kept). A streamed request gets SSE
bytes, a whole one a body. Usage reaches the caller as it was; the request itself used nothing (its
`ctx.usage` is left at zero, so token limits and budgets settle the hit at zero).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from gateway.cache.entry import Entry
from gateway.codecs.chat_encoder import ChatEncoder
from gateway.codecs.messages_encoder import MessagesEncoder
from gateway.context import RequestContext, Usage
from gateway.events import End
from gateway.filters.chain import Chain

if TYPE_CHECKING:
    from gateway.guardrails.engine import OutputScanner


def _chat(ctx: RequestContext, entry: Entry) -> ChatEncoder:
    return ChatEncoder(relay=False, include_usage=ctx.include_usage, id="chatcmpl-" + ctx.request_id,
                       model=entry.model, created=int(time.time()))


def _messages(ctx: RequestContext, entry: Entry) -> MessagesEncoder:
    return MessagesEncoder(relay=False, model=entry.model)


# The caller APIs a hit is replayed in (gateway.cache.rules.REPLAYED_APIS): one line per API.
ENCODERS: dict[str, Callable[[RequestContext, Entry], Any]] = {"chat": _chat, "messages": _messages}


def _no_raw(raw: bytes) -> str:
    return ""  # a replay has no raw upstream events (the fast lane is never used)


def replay(ctx: RequestContext, entry: Entry, scanner: OutputScanner | None) -> bytes:
    """The caller's answer from `entry`: SSE bytes for a streamed request, else a whole body."""
    if entry.body is not None:  # a whole-body API (embeddings): no text, nothing to scan or encode
        ctx.mark_first_token()
        return entry.body
    encoder = ENCODERS[ctx.api](ctx, entry)
    chain = Chain.compose(ctx, scanner, _no_raw, whole=not ctx.stream)
    try:
        if not ctx.stream:
            out: bytes = encoder.whole(chain.run(entry.replay_events()), b"")
        else:
            out = encoder.encode(chain.run(entry.replay_events() + [End()]))
            tail = chain.end([])
            out = out + (encoder.encode(tail) if tail else b"") + encoder.finish_stream()
    finally:
        chain.close()
        ctx.usage = Usage()  # the answer's usage went to the caller; this request spent none
    ctx.mark_first_token()
    return out
