"""Chat Completions from an OpenAI-format caller to an OpenAI-wire provider: the same API on both sides.

The body goes upstream with the target's model name and `stream_options.include_usage` forced on, so
the gateway always learns usage; the encoder passes the usage chunk on only when the caller asked.
"""

from __future__ import annotations

from gateway.adapters.base import UsageStreamAdapter
from gateway.codecs.chat_encoder import ChatEncoder
from gateway.codecs.openai_chat import ChatDecoder, ChatFastLane, chunk_text
from gateway.context import RequestContext


class ChatOpenAI(UsageStreamAdapter):
    api = "chat"
    wire = "openai"
    upstream_api = "chat"
    text_of = staticmethod(chunk_text)

    def decoder(self) -> ChatDecoder:
        return ChatDecoder()

    def encoder(self, ctx: RequestContext) -> ChatEncoder:
        return ChatEncoder(relay=True, include_usage=ctx.include_usage)

    def fast_lane(self, ctx: RequestContext, decoder: ChatDecoder, keep: list, full) -> ChatFastLane:
        return ChatFastLane(ctx, decoder, keep, full)
