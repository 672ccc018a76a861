"""Token counting from an Anthropic-format caller to an Anthropic-wire provider: a pass-through of the
(input-guarded) body; the answer `{"input_tokens": N}` is relayed as it came and costs nothing."""

from __future__ import annotations

import orjson

from gateway.adapters.base import PassThroughAdapter
from gateway.context import RequestContext, Usage
from gateway.errors import BadRequest


class CountTokensAnthropic(PassThroughAdapter):
    api = "count_tokens"
    wire = "anthropic"
    upstream_api = "count_tokens"

    def response(self, ctx: RequestContext, raw: bytes, scanner) -> bytes:
        from gateway.adapters.pipeline import UpstreamMalformed
        try:
            ok = isinstance(orjson.loads(raw).get("input_tokens"), int)
        except (ValueError, AttributeError) as exc:
            raise UpstreamMalformed("the upstream sent a malformed response",
                                    code="upstream_malformed_response") from exc
        if not ok:
            raise UpstreamMalformed("the upstream answered 200 without input_tokens",
                                    code="upstream_malformed_response")
        ctx.usage = Usage()  # counting is free: nothing against budgets, nothing in the cost
        return raw

    def stream(self, ctx: RequestContext, scanner):
        raise BadRequest("token counting is not streamed", param="stream")
