"""Anthropic Messages from an Anthropic-format caller (/v1/messages) to AWS Bedrock's Converse API, so
Anthropic models on Bedrock (and any other Bedrock model) serve `/v1/messages` callers.

The request is mapped by `anthropic_to_converse` (docs/providers.md lists what is kept, mapped and
dropped); the answer is read by the Converse decoder and written by the Messages encoder.
"""

from __future__ import annotations

import orjson

from gateway.adapters.base import Adapter
from gateway.codecs.aws_eventstream import EventStreamFramer
from gateway.codecs.bedrock_converse import ConverseDecoder, delta_text
from gateway.codecs.messages_encoder import MessagesEncoder
from gateway.context import RequestContext, Target
from gateway.translate.anthropic_to_converse import messages_to_converse


class MessagesBedrock(Adapter):
    api = "messages"
    wire = "bedrock"
    upstream_api = "converse"
    text_of = staticmethod(delta_text)

    def upstream_body(self, ctx: RequestContext, target: Target) -> bytes:
        return orjson.dumps(messages_to_converse(ctx.body))  # type: ignore[arg-type]

    def framer(self) -> EventStreamFramer:
        return EventStreamFramer()

    def decoder(self) -> ConverseDecoder:
        return ConverseDecoder()

    def encoder(self, ctx: RequestContext) -> MessagesEncoder:
        return MessagesEncoder(relay=False, model=ctx.target.model if ctx.target else "")
