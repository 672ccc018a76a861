"""Legacy Completions from an OpenAI-format caller to an OpenAI-wire provider: the same API on both
sides, on the event model (gateway/codecs/openai_completions.py), so output guardrails scan
`choices[].text` in whole answers and streams. Streams ask the upstream for usage, as chat does."""

from __future__ import annotations

import orjson

from gateway.adapters.base import PassThroughAdapter
from gateway.codecs.openai_completions import CompletionsDecoder, CompletionsEncoder, completion_text
from gateway.context import RequestContext, Target


class CompletionsOpenAI(PassThroughAdapter):
    api = "completions"
    wire = "openai"
    upstream_api = "completions"
    text_of = staticmethod(completion_text)

    def upstream_body(self, ctx: RequestContext, target: Target) -> bytes:
        if not ctx.stream:
            return super().upstream_body(ctx, target)
        body = dict(ctx.body)  # type: ignore[arg-type]
        body["model"] = target.model
        body["stream_options"] = {**(body.get("stream_options") or {}), "include_usage": True}
        return orjson.dumps(body)

    def decoder(self) -> CompletionsDecoder:
        return CompletionsDecoder()

    def encoder(self, ctx: RequestContext) -> CompletionsEncoder:
        return CompletionsEncoder(ctx.include_usage)
