"""Embeddings from an OpenAI-format caller to an OpenAI-wire provider: a pass-through (never streamed)."""

from __future__ import annotations

import orjson

from gateway.adapters.base import PassThroughAdapter
from gateway.adapters.usage import openai_usage
from gateway.context import RequestContext
from gateway.errors import BadRequest


class OpenAIEmbeddingsAdapter(PassThroughAdapter):
    api = "embeddings"
    wire = "openai"
    upstream_api = "embeddings"

    def response(self, ctx: RequestContext, raw: bytes, scanner) -> bytes:
        ctx.usage = openai_usage(orjson.loads(raw).get("usage") or {})
        return raw

    def stream(self, ctx: RequestContext, scanner):
        raise BadRequest("embeddings are not streamed", param="stream")
