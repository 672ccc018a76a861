"""Moderations from an OpenAI-format caller to an OpenAI-wire provider: a pass-through (never streamed;
categories and scores carry no text for output filters). Moderation is free and reports no usage: the
prompt is counted by the gateway for rate limits (tpm), and costs nothing against budgets."""

from __future__ import annotations

import orjson

from gateway.adapters.base import PassThroughAdapter
from gateway.context import RequestContext
from gateway.errors import BadRequest
from gateway.filters.usage import count_output


class ModerationsOpenAI(PassThroughAdapter):
    api = "moderations"
    wire = "openai"
    upstream_api = "moderations"

    def response(self, ctx: RequestContext, raw: bytes, scanner) -> bytes:
        from gateway.adapters.pipeline import UpstreamMalformed
        try:
            ok = isinstance(orjson.loads(raw).get("results"), list)
        except (ValueError, AttributeError) as exc:
            raise UpstreamMalformed("the upstream sent a malformed response",
                                    code="upstream_malformed_response") from exc
        if not ok:
            raise UpstreamMalformed("the upstream answered 200 without moderation results",
                                    code="upstream_malformed_response")
        ctx.usage = count_output(ctx, "")  # the prompt's estimate, no output; marked estimated
        return raw

    def stream(self, ctx: RequestContext, scanner):
        raise BadRequest("moderations are not streamed", param="stream")
