"""Anthropic Messages from an Anthropic-format caller (/v1/messages) to an OpenAI-wire provider.

The request is translated by `gateway.translate.anthropic_to_openai` (asking for the usage chunk);
the answer is read by the chat decoder and written by the Messages encoder.
"""

from __future__ import annotations

import orjson

from gateway.adapters.base import Adapter
from gateway.codecs.messages_encoder import MessagesEncoder
from gateway.codecs.openai_chat import ChatDecoder, chunk_text
from gateway.context import RequestContext, Target
from gateway.translate.anthropic_to_openai import messages_to_chat_request


class MessagesOpenAI(Adapter):
    api = "messages"
    wire = "openai"
    upstream_api = "chat"
    text_of = staticmethod(chunk_text)

    def upstream_body(self, ctx: RequestContext, target: Target) -> bytes:
        return orjson.dumps(messages_to_chat_request(ctx.body, target.model))  # type: ignore[arg-type]

    def decoder(self) -> ChatDecoder:
        return ChatDecoder()

    def encoder(self, ctx: RequestContext) -> MessagesEncoder:
        return MessagesEncoder(relay=False, model=ctx.target.model if ctx.target else "")
