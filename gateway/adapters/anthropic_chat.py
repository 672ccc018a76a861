"""Chat Completions from an OpenAI-format caller to an Anthropic-wire provider (its Messages API).

The request and response are translated by `gateway.translate.openai_to_anthropic`. A stream is
translated event by event into `chat.completion.chunk`s, which then go through the same
`ChatStream` as an OpenAI upstream's chunks: so the output scanner, first-token timing, the usage
chunk (sent only when the caller asked) and `[DONE]` behave identically whichever vendor answers.
"""

from __future__ import annotations

import time

import orjson

from gateway.adapters.base import Adapter, StreamAdapter
from gateway.adapters.openai_chat import ChatStream
from gateway.context import RequestContext, Target
from gateway.translate.openai_to_anthropic import (
    MessagesStreamToChat,
    chat_to_messages_request,
    messages_response_to_chat,
)
from gateway.translate.sse import SSEEvent


def _chat_id(ctx: RequestContext) -> str:
    return "chatcmpl-" + ctx.request_id


class MessagesToChatStream(StreamAdapter):
    __slots__ = ("ctx", "tr", "chat", "_reported")

    def __init__(self, ctx: RequestContext, scanner) -> None:
        self.ctx = ctx
        # Usage is always requested from the translator; ChatStream drops the chunk if the caller did not ask.
        self.tr = MessagesStreamToChat(ctx.target.model if ctx.target else "", _chat_id(ctx), int(time.time()),
                                       include_usage=True)
        self.chat = ChatStream(ctx, scanner)
        self._reported = False

    def feed(self, event: SSEEvent) -> list[bytes]:
        out: list[bytes] = []
        for chunk in self.tr.feed(event):
            out += self.chat.feed(SSEEvent(None, orjson.dumps(chunk)))
        return out + self._error()

    def _error(self) -> list[bytes]:
        if self.tr.error is None or self._reported:
            return []
        self._reported = True
        self.ctx.upstream_stream_error = self.tr.error
        err = self.tr.gateway_error()
        return [self.chat.error_event(err.message, err.code)]  # type: ignore[union-attr]

    def finish(self) -> list[bytes]:
        self.tr.done()
        if self.tr.error is not None:
            return self._error()  # no [DONE] after an error: the answer is incomplete
        return self.chat.finish()

    def error_event(self, message: str, code: str) -> bytes:
        return self.chat.error_event(message, code)

    def close(self) -> None:
        self.chat.close()
        if self.ctx.usage.estimated and self.tr.usage.input_tokens:
            # Cut before the usage chunk: message_start still told the real input count.
            self.ctx.usage.input_tokens = self.tr.usage.input_tokens
            self.ctx.usage.cached_tokens = self.tr.usage.cached_tokens


class AnthropicChatAdapter(Adapter):
    api = "chat"
    wire = "anthropic"
    upstream_api = "messages"

    def upstream_body(self, ctx: RequestContext, target: Target) -> bytes:
        return orjson.dumps(chat_to_messages_request(ctx.body, target.model))  # type: ignore[arg-type]

    def response(self, ctx: RequestContext, raw: bytes, scanner) -> bytes:
        upstream = orjson.loads(raw)
        resp, ctx.usage = messages_response_to_chat(upstream, upstream.get("model") or ctx.target.model,
                                                     _chat_id(ctx))
        if scanner is not None:
            msg = resp["choices"][0]["message"]
            if isinstance(msg.get("content"), str):
                msg["content"] = scanner.scan_text(msg["content"], 0)
            for call in msg.get("tool_calls") or ():
                call["function"]["arguments"] = scanner.scan_tool_args(call["function"]["arguments"])
        return orjson.dumps(resp)

    def stream(self, ctx: RequestContext, scanner) -> StreamAdapter:
        return MessagesToChatStream(ctx, scanner)
