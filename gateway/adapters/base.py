"""The adapter contract."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import orjson

from gateway.context import RequestContext, Target, Usage

if TYPE_CHECKING:
    from gateway.guardrails.engine import OutputScanner
    from gateway.translate.sse import SSEEvent


class StreamAdapter:
    """Per-request translator of upstream SSE events into client-ready SSE bytes."""

    def feed(self, event: SSEEvent) -> list[bytes]:
        raise NotImplementedError

    def finish(self) -> list[bytes]:
        """The upstream ended: trailing events for the client (flushed text, final markers)."""
        raise NotImplementedError

    def error_event(self, message: str, code: str) -> bytes:
        """An in-band error event in the caller's format, to end a stream that cannot go on."""
        raise NotImplementedError

    def close(self) -> None:
        """The stream is over, however it ended: make sure ctx.usage holds what was used (counting
        the streamed text when the upstream sent no usage)."""


class Adapter:
    api: ClassVar[str]  # the caller's API: "chat", "embeddings", "messages", "responses"
    wire: ClassVar[str]  # the provider's wire: "openai" or "anthropic"
    upstream_api: ClassVar[str]  # which provider endpoint it calls

    def upstream_body(self, ctx: RequestContext, target: Target) -> bytes:
        raise NotImplementedError

    def response(self, ctx: RequestContext, raw: bytes, scanner: OutputScanner | None) -> bytes:
        """The caller's response body for a whole upstream response; sets ctx.usage."""
        raise NotImplementedError

    def stream(self, ctx: RequestContext, scanner: OutputScanner | None) -> StreamAdapter:
        raise NotImplementedError


class PassThroughAdapter(Adapter):
    """Same API on both sides: the caller's body goes upstream unchanged but for the target's model."""

    def upstream_body(self, ctx: RequestContext, target: Target) -> bytes:
        body = dict(ctx.body or {})  # the flow has read and checked the body before any adapter runs
        body["model"] = target.model
        return orjson.dumps(body)

    def response(self, ctx: RequestContext, raw: bytes, scanner: OutputScanner | None) -> bytes:
        """The upstream's bytes as they are, unless the output scanner rewrote text in them."""
        resp = orjson.loads(raw)
        ctx.usage = self.usage_of(resp)
        if scanner is None:
            return raw
        rewritten = scanner.rewritten
        self.scan(resp, scanner)
        return raw if scanner.rewritten == rewritten else orjson.dumps(resp)

    def usage_of(self, resp: dict[str, Any]) -> Usage:
        raise NotImplementedError

    def scan(self, resp: dict[str, Any], scanner: OutputScanner) -> None:
        """Rewrite the answer's text in place through the scanner."""
