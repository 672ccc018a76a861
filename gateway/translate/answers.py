"""Answers translated between the two wires with no filters: decode with one wire's decoder, encode
with the other API's encoder (gateway.codecs). The request path composes the same codecs with the
request's filters (gateway.adapters.pipeline); these are the plain compositions, for callers and tests
that want a translated answer as objects.
"""

from __future__ import annotations

import time

from gateway.codecs import Malformed
from gateway.codecs.anthropic_messages import MessagesDecoder
from gateway.codecs.chat_encoder import ChatEncoder
from gateway.codecs.messages_encoder import MessagesEncoder
from gateway.codecs.openai_chat import ChatDecoder
from gateway.context import Usage
from gateway.errors import GatewayError
from gateway.events import End
from gateway.translate.sse import SSEEvent
from gateway.translate.upstream_errors import anthropic_stream_error, openai_stream_error


def messages_response_to_chat(resp: dict, model: str, request_id: str,
                              created: int | None = None) -> tuple[dict, Usage]:
    enc = ChatEncoder(relay=False, include_usage=False, id=request_id, model=model,
                      created=int(time.time()) if created is None else created)
    chat = enc.build(MessagesDecoder.whole(resp, b""), model)
    return chat, enc.usage or Usage()


def chat_response_to_messages(resp: dict, model: str) -> tuple[dict, Usage]:
    enc = MessagesEncoder(relay=False, model=model)
    return enc.message(ChatDecoder.whole(resp, b""), model), enc.usage


class MessagesStreamToChat:
    """Anthropic stream events to chat.completion.chunk objects. After an upstream error (or a cut
    stream, at `done()`), `error` holds the upstream's error object and nothing more is emitted."""

    __slots__ = ("dec", "enc")

    def __init__(self, model: str, request_id: str, created: int, include_usage: bool) -> None:
        self.dec = MessagesDecoder()
        self.enc = ChatEncoder(relay=False, include_usage=include_usage, id=request_id, model=model, created=created)

    @property
    def usage(self) -> Usage:
        return self.dec.usage

    @property
    def error(self) -> dict | None:
        return self.dec.error

    def feed(self, event: SSEEvent) -> list[dict]:
        try:
            events = self.dec.feed(event)
        except Malformed:
            self.dec.failed = True
            self.dec.error = {"type": "api_error", "message": "the upstream sent a malformed stream event"}
            return []
        return [c for c in self.enc.chunks(events) if "error" not in c]

    def done(self) -> list[dict]:
        return [c for c in self.enc.chunks(self.dec.end()) if "error" not in c]

    def gateway_error(self) -> GatewayError | None:
        return anthropic_stream_error(200, self.error) if self.error is not None else None


class ChatStreamToMessages:
    """chat.completion.chunk objects to Anthropic stream events. A chunk with an `error` object sets
    `error`; `done()` (the upstream's `[DONE]` or end) without a finish reason sets it too."""

    __slots__ = ("dec", "enc")

    def __init__(self, model: str, message_id: str | None = None) -> None:
        self.dec = ChatDecoder()
        self.enc = MessagesEncoder(relay=False, model=model, message_id=message_id)

    @property
    def usage(self) -> Usage:
        return self.enc.usage

    @property
    def error(self) -> dict | None:
        return self.enc.error

    def feed(self, chunk: dict) -> list[tuple[str, dict]]:
        return [e for e in self.enc.build(self.dec.read(chunk, b"")) if e[0] != "error"]

    def done(self) -> list[tuple[str, dict]]:
        return [e for e in self.enc.build([End()]) if e[0] != "error"]

    def gateway_error(self) -> GatewayError | None:
        return openai_stream_error(500, self.error) if self.error is not None else None
