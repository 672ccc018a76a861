"""Chat Completions from an OpenAI-format caller to an Anthropic-wire provider (its Messages API).

The request is translated by `gateway.translate.openai_to_anthropic`; the answer is read by the
Anthropic decoder and written by the chat encoder, through the same filters as any other answer.
"""

from __future__ import annotations

import time

import orjson

from gateway.adapters.base import Adapter
from gateway.codecs.anthropic_messages import MessagesDecoder, delta_text
from gateway.codecs.chat_encoder import ChatEncoder
from gateway.context import RequestContext, Target
from gateway.translate.openai_to_anthropic import chat_to_messages_request


class ChatAnthropic(Adapter):
    api = "chat"
    wire = "anthropic"
    upstream_api = "messages"
    text_of = staticmethod(delta_text)

    def upstream_body(self, ctx: RequestContext, target: Target) -> bytes:
        return orjson.dumps(chat_to_messages_request(ctx.body, target.model))  # type: ignore[arg-type]

    def decoder(self) -> MessagesDecoder:
        return MessagesDecoder()

    def encoder(self, ctx: RequestContext) -> ChatEncoder:
        return ChatEncoder(relay=False, include_usage=ctx.include_usage, id="chatcmpl-" + ctx.request_id,
                           model=ctx.target.model if ctx.target else "", created=int(time.time()))
