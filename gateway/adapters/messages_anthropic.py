"""Anthropic Messages from an Anthropic-format caller (/v1/messages) to an Anthropic-wire provider: the
same API on both sides; the body goes upstream with the target's model name."""

from __future__ import annotations

from gateway.adapters.base import PassThroughAdapter
from gateway.codecs.anthropic_messages import MessagesDecoder, MessagesFastLane, delta_text
from gateway.codecs.messages_encoder import MessagesEncoder
from gateway.context import RequestContext


class MessagesAnthropic(PassThroughAdapter):
    api = "messages"
    wire = "anthropic"
    upstream_api = "messages"
    text_of = staticmethod(delta_text)

    def decoder(self) -> MessagesDecoder:
        return MessagesDecoder()

    def encoder(self, ctx: RequestContext) -> MessagesEncoder:
        return MessagesEncoder(relay=True, model=ctx.target.model if ctx.target else "")

    def fast_lane(self, ctx: RequestContext, decoder: MessagesDecoder, keep: list, full) -> MessagesFastLane:
        return MessagesFastLane(ctx, decoder, keep, full)
