"""Embeddings from an OpenAI-format caller to an OpenAI-wire provider: a pass-through (never streamed)."""

from __future__ import annotations

import orjson

from gateway.adapters.base import Adapter
from gateway.adapters.usage import openai_usage
from gateway.context import RequestContext, Target
from gateway.errors import BadRequest


class OpenAIEmbeddingsAdapter(Adapter):
    api = "embeddings"
    wire = "openai"
    upstream_api = "embeddings"

    def upstream_body(self, ctx: RequestContext, target: Target) -> bytes:
        body = dict(ctx.body)  # type: ignore[arg-type]
        body["model"] = target.model
        return orjson.dumps(body)

    def response(self, ctx: RequestContext, raw: bytes, scanner) -> bytes:
        ctx.usage = openai_usage(orjson.loads(raw).get("usage") or {})
        return raw

    def stream(self, ctx: RequestContext, scanner):
        raise BadRequest("embeddings are not streamed", param="stream")
