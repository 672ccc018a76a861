"""The adapter contract: a (caller API, provider wire) pair."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

import orjson

from gateway.context import RequestContext, Target

from gateway.adapters.pipeline import Framer, StreamPipe, whole_response
from gateway.translate.sse import SSEParser

if TYPE_CHECKING:
    from gateway.guardrails.output_scan import OutputScanner


class Adapter:
    api: ClassVar[str]  # the caller's API: "chat", "embeddings", "messages", "responses"
    wire: ClassVar[str]  # the provider's wire: "openai" or "anthropic"
    upstream_api: ClassVar[str]  # which provider endpoint it calls
    text_of: ClassVar[Callable[[bytes], str]]  # the text in a raw upstream event the fast lane relayed

    def upstream_body(self, ctx: RequestContext, target: Target) -> bytes:
        raise NotImplementedError

    def framer(self) -> Framer:
        """A new reader of the provider's stream framing, for one answer: SSE unless the wire says
        otherwise (Bedrock's binary event-stream)."""
        return SSEParser()

    def decoder(self) -> Any:
        """A new decoder of the provider's wire, for one answer."""
        raise NotImplementedError

    def encoder(self, ctx: RequestContext) -> Any:
        """A new encoder of the caller's API, for one answer."""
        raise NotImplementedError

    def fast_lane(self, ctx: RequestContext, decoder: Any, keep: list[Any], full: Callable[[Any], bytes]) -> Any:
        """Same API on both sides: a lane whose `feed(event) -> bytes` relays what no filter reads as the
        upstream's bytes and hands anything else to `full` (None: no such lane)."""
        return None

    def stream(self, ctx: RequestContext, scanner: OutputScanner | None) -> StreamPipe:
        return StreamPipe(self, ctx, scanner)

    def response(self, ctx: RequestContext, raw: bytes, scanner: OutputScanner | None) -> bytes:
        """The caller's response body for a whole upstream response; sets ctx.usage."""
        return whole_response(self, ctx, raw, scanner)


class PassThroughAdapter(Adapter):
    """Same API on both sides: the caller's body goes upstream unchanged but for the target's model."""

    def upstream_body(self, ctx: RequestContext, target: Target) -> bytes:
        body = dict(ctx.body or {})  # the flow has read and checked the body before any adapter runs
        body["model"] = target.model
        return orjson.dumps(body)


class UsageStreamAdapter(PassThroughAdapter):
    """An OpenAI streaming API (chat, completions): streams go upstream with `stream_options.include_usage`
    forced on, so the gateway always learns usage; the encoder passes it on only when the caller asked."""

    def upstream_body(self, ctx: RequestContext, target: Target) -> bytes:
        if not ctx.stream:
            return super().upstream_body(ctx, target)
        body = dict(ctx.body or {})
        body["model"] = target.model
        body["stream_options"] = {**(body.get("stream_options") or {}), "include_usage": True}
        return orjson.dumps(body)
