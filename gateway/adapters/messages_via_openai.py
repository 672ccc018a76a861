"""Anthropic Messages from an Anthropic-format caller (/v1/messages) to an OpenAI-wire provider.

The request and response are translated by `gateway.translate.anthropic_to_openai`; streamed chunks
become Anthropic events (with their `event:` names), the output scanner is applied to them exactly as
for an Anthropic upstream, and usage is read from the usage chunk the translated request asks for.
"""

from __future__ import annotations

import orjson

from gateway.adapters.anthropic_messages import MessagesOutputScan, anthropic_error_event, content_text, scan_message
from gateway.adapters.base import Adapter, StreamAdapter
from gateway.adapters.usage import count_output
from gateway.context import RequestContext, Target
from gateway.translate.anthropic_to_openai import (
    ChatStreamToMessages,
    chat_response_to_messages,
    messages_to_chat_request,
)
from gateway.translate.sse import SSEEvent, encode_event


class ChatToMessagesStream(StreamAdapter):
    __slots__ = ("ctx", "tr", "scan", "_texts", "_reported")

    def __init__(self, ctx: RequestContext, scanner) -> None:
        self.ctx = ctx
        self.tr = ChatStreamToMessages(ctx.target.model if ctx.target else "")
        self.scan = MessagesOutputScan(scanner) if scanner is not None else None
        self._texts: list[str] = []  # streamed text, counted only if the upstream never sent usage
        self._reported = False

    def feed(self, event: SSEEvent) -> list[bytes]:
        if event.data == b"[DONE]":
            return self._emit(self.tr.done())
        try:
            chunk = orjson.loads(event.data)
        except orjson.JSONDecodeError:
            chunk = {"error": {"type": "api_error", "message": "the upstream sent a malformed stream event"}}
        return self._emit(self.tr.feed(chunk) if isinstance(chunk, dict) else [])

    def _emit(self, events: list[tuple[str, dict]]) -> list[bytes]:
        out: list[bytes] = []
        for name, data in events:
            if name == "content_block_delta":
                self.ctx.mark_first_token()
                self._texts.append(content_text(data))
            pieces = self.scan.apply(name, data) if self.scan is not None else [(name, data)]
            out += [encode_event(orjson.dumps(d), n) for n, d in pieces]
        if self.tr.error is not None and not self._reported:
            self._reported = True
            self.ctx.upstream_stream_error = self.tr.error
            err = self.tr.gateway_error()
            out.append(anthropic_error_event(err.message, err.code))  # type: ignore[union-attr]
        return out

    def finish(self) -> list[bytes]:
        return self._emit(self.tr.done())  # done() is a no-op after [DONE] or an error

    def error_event(self, message: str, code: str) -> bytes:
        return anthropic_error_event(message, code)

    def close(self) -> None:
        usage = self.tr.usage
        if usage.input_tokens or usage.output_tokens:
            self.ctx.usage = usage
        else:
            self.ctx.usage = count_output(self.ctx, "".join(self._texts))


class MessagesViaOpenAIAdapter(Adapter):
    api = "messages"
    wire = "openai"
    upstream_api = "chat"

    def upstream_body(self, ctx: RequestContext, target: Target) -> bytes:
        return orjson.dumps(messages_to_chat_request(ctx.body, target.model))  # type: ignore[arg-type]

    def response(self, ctx: RequestContext, raw: bytes, scanner) -> bytes:
        upstream = orjson.loads(raw)
        resp, ctx.usage = chat_response_to_messages(upstream, upstream.get("model") or ctx.target.model)
        if scanner is not None:
            scan_message(resp, scanner)
        return orjson.dumps(resp)

    def stream(self, ctx: RequestContext, scanner) -> StreamAdapter:
        return ChatToMessagesStream(ctx, scanner)
