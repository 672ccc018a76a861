"""Embeddings from an OpenAI-format caller to an OpenAI-wire provider: a pass-through (never streamed)."""

from __future__ import annotations


from gateway.adapters.base import PassThroughAdapter
from gateway.adapters.usage import openai_usage
from gateway.context import RequestContext, Usage
from gateway.errors import BadRequest


class OpenAIEmbeddingsAdapter(PassThroughAdapter):
    api = "embeddings"
    wire = "openai"
    upstream_api = "embeddings"

    def usage_of(self, resp: dict) -> Usage:
        return openai_usage(resp.get("usage") or {})

    def stream(self, ctx: RequestContext, scanner):
        raise BadRequest("embeddings are not streamed", param="stream")
