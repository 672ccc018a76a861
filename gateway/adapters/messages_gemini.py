"""Anthropic Messages from an Anthropic-format caller (/v1/messages) to a Gemini-wire provider.

The request is translated by `gateway.translate.to_gemini`; the answer is read by the Gemini decoder
and written by the Messages encoder.
"""

from __future__ import annotations

import orjson

from gateway.adapters.base import Adapter
from gateway.codecs.gemini import GeminiDecoder, chunk_text
from gateway.codecs.messages_encoder import MessagesEncoder
from gateway.context import RequestContext, Target
from gateway.translate.to_gemini import messages_to_gemini_request


class MessagesGemini(Adapter):
    api = "messages"
    wire = "gemini"
    upstream_api = "generate_content"
    text_of = staticmethod(chunk_text)

    def upstream_body(self, ctx: RequestContext, target: Target) -> bytes:
        return orjson.dumps(messages_to_gemini_request(ctx.body))  # type: ignore[arg-type]

    def decoder(self) -> GeminiDecoder:
        return GeminiDecoder()

    def encoder(self, ctx: RequestContext) -> MessagesEncoder:
        return MessagesEncoder(relay=False, model=ctx.target.model if ctx.target else "")
