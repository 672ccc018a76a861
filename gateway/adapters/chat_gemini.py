"""Chat Completions from an OpenAI-format caller to a Gemini-wire provider (Google AI or Vertex AI).

The request is translated by `gateway.translate.to_gemini`; the answer is read by the Gemini decoder
and written by the chat encoder, through the same filters as any other answer.
"""

from __future__ import annotations

import time

import orjson

from gateway.adapters.base import Adapter
from gateway.codecs.chat_encoder import ChatEncoder
from gateway.codecs.gemini import GeminiDecoder, chunk_text
from gateway.context import RequestContext, Target
from gateway.translate.to_gemini import chat_to_gemini_request


class ChatGemini(Adapter):
    api = "chat"
    wire = "gemini"
    upstream_api = "generate_content"
    text_of = staticmethod(chunk_text)

    def upstream_body(self, ctx: RequestContext, target: Target) -> bytes:
        return orjson.dumps(chat_to_gemini_request(ctx.body))  # type: ignore[arg-type]

    def decoder(self) -> GeminiDecoder:
        return GeminiDecoder()

    def encoder(self, ctx: RequestContext) -> ChatEncoder:
        return ChatEncoder(relay=False, include_usage=ctx.include_usage, id="chatcmpl-" + ctx.request_id,
                           model=ctx.target.model if ctx.target else "", created=int(time.time()))
