"""Embeddings from an OpenAI-format caller to an OpenAI-wire provider: a pass-through (never streamed,
no text for output filters), reading only usage."""

from __future__ import annotations

import orjson

from gateway.adapters.base import PassThroughAdapter
from gateway.codecs.openai_chat import openai_usage
from gateway.context import RequestContext
from gateway.errors import BadRequest


class EmbeddingsOpenAI(PassThroughAdapter):
    api = "embeddings"
    wire = "openai"
    upstream_api = "embeddings"

    def response(self, ctx: RequestContext, raw: bytes, scanner) -> bytes:
        from gateway.adapters.pipeline import UpstreamMalformed
        try:
            ctx.usage = openai_usage(orjson.loads(raw).get("usage") or {})
        except (ValueError, TypeError, AttributeError) as exc:
            raise UpstreamMalformed("the upstream sent a malformed response",
                                    code="upstream_malformed_response") from exc
        return raw

    def stream(self, ctx: RequestContext, scanner):
        raise BadRequest("embeddings are not streamed", param="stream")
