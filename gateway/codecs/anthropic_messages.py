"""The Anthropic Messages wire, read: its SSE events and whole `message` bodies into neutral events
(gateway.events), and its usage object, parsed here only.

Anthropic counts cached input apart from `input_tokens`; the neutral `Usage` counts all input, as
OpenAI's prompt_tokens does. `message_start` tells the input count, `message_delta` the final
(cumulative) output count. A stream that ends before `message_stop` was cut: `end()` reports it.
`MessagesFastLane` relays the events no filter needs to read as the upstream's own bytes.
"""

from __future__ import annotations

from collections.abc import Callable

import orjson

from gateway.codecs import Malformed
from gateway.context import RequestContext, Usage
from gateway.events import End, Error, Event, Finish, PartEnd, Raw, Start, TextDelta, ToolCallDelta, UsageReport
from gateway.translate.sse import SSEEvent, encode_event
from gateway.translate.upstream_errors import anthropic_stream_error

# Anthropic stop reasons in Chat Completions' words (the neutral vocabulary).
FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
CUT = "the upstream stream ended before the message was complete"
_INPUT_KEYS = ("input_tokens", "cache_read_input_tokens", "cache_creation_input_tokens")


def anthropic_usage(raw: dict | None) -> Usage:
    raw = raw or {}
    read = raw.get("cache_read_input_tokens") or 0
    written = raw.get("cache_creation_input_tokens") or 0
    return Usage(
        input_tokens=(raw.get("input_tokens") or 0) + read + written,
        output_tokens=raw.get("output_tokens") or 0,
        cached_tokens=read,
        cache_write_tokens=written,
    )


def delta_text(data: bytes) -> str:
    """The text or tool-argument piece in a raw content_block_delta (for counting usage)."""
    try:
        delta = orjson.loads(data).get("delta") or {}
    except (orjson.JSONDecodeError, AttributeError):
        return ""
    return delta.get("text") or delta.get("partial_json") or ""


class MessagesDecoder:
    """Per-request reader of one upstream answer on the Anthropic wire (one choice: 0)."""

    __slots__ = ("usage", "started", "stopped", "failed", "error", "raw", "_blocks")

    def __init__(self) -> None:
        self.raw: Raw | None = None  # the upstream event the last `feed` read, beside its events
        self.usage = Usage()
        self.started = False  # message_start was seen
        self.stopped = False  # message_stop was seen
        self.failed = False
        self.error: dict | None = None  # the upstream's error object, once one was reported
        self._blocks: dict[int, int] = {}  # content block index -> tool call index, or -1 for text

    def feed(self, event: SSEEvent) -> list[Event]:
        self.raw = None
        if self.failed or self.stopped:
            return []
        try:
            data = orjson.loads(event.data)
        except orjson.JSONDecodeError:
            raise Malformed("an Anthropic stream event is not JSON") from None
        if not isinstance(data, dict):
            raise Malformed("an Anthropic stream event is not a JSON object")
        kind = data.get("type") or event.event
        out: list[Event] = []
        if kind == "content_block_delta":
            delta = data.get("delta") or {}
            dkind = delta.get("type")
            if dkind == "text_delta":
                if delta.get("text"):
                    out.append(TextDelta(0, delta["text"], delta))
            elif dkind == "input_json_delta" and delta.get("partial_json"):
                call = self._blocks.get(data.get("index", -1))
                if call is not None and call >= 0:
                    out.append(ToolCallDelta(0, call, arguments=delta["partial_json"], src=delta))
            elif dkind == "thinking_delta" and delta.get("thinking"):
                out.append(TextDelta(0, delta["thinking"], delta, True))
            # signature and citation deltas: no neutral form, relayed by a same-wire encoder
        elif kind == "content_block_start":
            block = data.get("content_block") or {}
            index = data.get("index", len(self._blocks))
            if block.get("type") == "tool_use":
                call = self._blocks[index] = sum(1 for v in self._blocks.values() if v >= 0)
                out.append(ToolCallDelta(0, call, block.get("id"), block.get("name")))
            elif block.get("type") == "text":
                self._blocks[index] = -1
                if block.get("text"):
                    out.append(TextDelta(0, block["text"], block))
            elif block.get("type") == "thinking":
                self._blocks[index] = -1
                if block.get("thinking"):
                    out.append(TextDelta(0, block["thinking"], block, True))
        elif kind == "content_block_stop":
            call = self._blocks.get(data.get("index", -1))
            if call is not None:
                out.append(PartEnd(0, None if call < 0 else call))
        elif kind == "message_start":
            self.started = True
            msg = data.get("message") or {}
            self.usage = anthropic_usage(msg.get("usage"))
            out += (Start(msg.get("id"), msg.get("model")), UsageReport(self._usage(), False))
        elif kind == "message_delta":
            self._delta_usage(data.get("usage"))
            reason = (data.get("delta") or {}).get("stop_reason")
            out += (UsageReport(self._usage(), True), Finish(0, FINISH_REASONS.get(reason or "", "stop")))
        elif kind == "message_stop":
            self.stopped = True
            out.append(End())
        elif kind == "error":
            err = data.get("error")
            return [self._fail(err if isinstance(err, dict) else {"type": "api_error",
                                                                   "message": "upstream stream error"}, event.data)]
        self.raw = Raw(data, event.data, event.event or kind)
        return out  # ping, and event types added after this was written: relayed as they are

    def _usage(self) -> Usage:
        u = self.usage
        return Usage(u.input_tokens, u.output_tokens, u.cached_tokens, False, u.cache_write_tokens)

    def _delta_usage(self, raw: dict | None) -> None:
        # message_delta usage is cumulative; input counts appear there only on some API versions.
        if not raw:
            return
        if raw.get("output_tokens") is not None:
            self.usage.output_tokens = raw["output_tokens"]
        if any(raw.get(k) is not None for k in _INPUT_KEYS):
            merged = anthropic_usage(raw)
            if merged.input_tokens:
                self.usage.input_tokens = merged.input_tokens
                self.usage.cached_tokens = merged.cached_tokens
                self.usage.cache_write_tokens = merged.cache_write_tokens

    def _fail(self, detail: dict, src: bytes | None) -> Error:
        self.failed = True
        self.error = detail
        gw = anthropic_stream_error(200, detail)
        return Error(gw.message, gw.code, detail, src)

    def end(self) -> list[Event]:
        """The upstream body ended: before message_stop, the answer is incomplete."""
        if self.failed or self.stopped:
            return []
        err = self._fail({"type": "api_error", "message": CUT}, None)
        err.message, err.code = CUT, "upstream_stream_error"
        return [err]

    @staticmethod
    def whole(resp: dict, raw: bytes) -> list[Event]:
        """A whole message: its text blocks and tool inputs (as JSON text)."""
        out: list[Event] = [Raw(resp, raw), Start(resp.get("id"), resp.get("model"))]
        call = 0
        for block in resp.get("content") or ():
            kind = block.get("type")
            if kind == "text" and isinstance(block.get("text"), str):
                out.append(TextDelta(0, block["text"], block))
            elif kind == "tool_use":
                out.append(ToolCallDelta(0, call, block.get("id"), block.get("name"),
                                         orjson.dumps(block.get("input") or {}).decode(), block))
                call += 1
            elif kind == "thinking" and isinstance(block.get("thinking"), str):
                out.append(TextDelta(0, block["thinking"], block, True))
            # redacted_thinking and server tool blocks: kept by a same-wire encoder only
        out.append(Finish(0, FINISH_REASONS.get(resp.get("stop_reason") or "", "stop")))
        out.append(UsageReport(anthropic_usage(resp.get("usage")), True))
        return out


_AS_IS = frozenset({"content_block_start", "content_block_delta", "content_block_stop", "ping"})


class MessagesFastLane:
    """Events relayed as the upstream's bytes when no filter reads text (once message_start told the
    input usage): first-token timing and keeping deltas for a usage count are done here."""

    __slots__ = ("ctx", "dec", "keep", "full")

    def __init__(self, ctx: RequestContext, dec: MessagesDecoder, keep: list,
                 full: Callable[[SSEEvent], bytes]) -> None:
        self.ctx = ctx
        self.dec = dec
        self.full = full  # the full path: decoder, filters, encoder
        self.keep = keep

    def feed(self, event: SSEEvent) -> bytes:
        name = event.event
        if name not in _AS_IS or not self.dec.started:
            return self.full(event)
        if name == "content_block_delta":
            self.ctx.mark_first_token()
            self.keep.append(event.data)
        return encode_event(event.data, name)
