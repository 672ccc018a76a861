"""Chat Completions from an OpenAI-format caller to AWS Bedrock's Converse API.

The request goes through the Anthropic translation first (`openai_to_anthropic`), then to Converse
(`anthropic_to_converse`), so both caller APIs share one Converse mapping; the answer is read by the
Converse decoder (framed by the AWS event-stream framer) and written by the chat encoder.
"""

from __future__ import annotations

import time

import orjson

from gateway.adapters.base import Adapter
from gateway.codecs.aws_eventstream import EventStreamFramer
from gateway.codecs.bedrock_converse import ConverseDecoder, delta_text
from gateway.codecs.chat_encoder import ChatEncoder
from gateway.context import RequestContext, Target
from gateway.translate.anthropic_to_converse import messages_to_converse
from gateway.translate.openai_to_anthropic import chat_to_messages_request


class ChatBedrock(Adapter):
    api = "chat"
    wire = "bedrock"
    upstream_api = "converse"
    text_of = staticmethod(delta_text)

    def upstream_body(self, ctx: RequestContext, target: Target) -> bytes:
        return orjson.dumps(messages_to_converse(chat_to_messages_request(ctx.body, target.model)))  # type: ignore[arg-type]

    def framer(self) -> EventStreamFramer:
        return EventStreamFramer()

    def decoder(self) -> ConverseDecoder:
        return ConverseDecoder()

    def encoder(self, ctx: RequestContext) -> ChatEncoder:
        return ChatEncoder(relay=False, include_usage=ctx.include_usage, id="chatcmpl-" + ctx.request_id,
                           model=ctx.target.model if ctx.target else "", created=int(time.time()))
