"""Legacy Completions from an OpenAI-format caller to an OpenAI-wire provider: the same API on both
sides, on the event model (gateway/codecs/openai_completions.py), so output guardrails scan
`choices[].text` in whole answers and streams. Streams ask the upstream for usage, as chat does."""

from __future__ import annotations

from gateway.adapters.base import UsageStreamAdapter
from gateway.codecs.openai_completions import CompletionsDecoder, CompletionsEncoder, completion_text
from gateway.context import RequestContext


class CompletionsOpenAI(UsageStreamAdapter):
    api = "completions"
    wire = "openai"
    upstream_api = "completions"
    text_of = staticmethod(completion_text)

    def decoder(self) -> CompletionsDecoder:
        return CompletionsDecoder()

    def encoder(self, ctx: RequestContext) -> CompletionsEncoder:
        return CompletionsEncoder(ctx.include_usage)
