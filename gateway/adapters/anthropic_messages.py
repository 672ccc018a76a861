"""Anthropic Messages from an Anthropic-format caller (/v1/messages) to an Anthropic-wire provider: a
pass-through.

The body goes upstream with the target's model name. Streamed events keep their `event:` names;
with no output scanner most are relayed as the upstream's own bytes, and only the events that carry
usage (message_start, message_delta), the end (message_stop) or an error are parsed. With a scanner,
text_delta and input_json_delta are scanned per content block and what the scanner held back is sent
as one more delta just before the block's content_block_stop. `MessagesOutputScan` and
`anthropic_error_event` are shared with the adapter that reaches OpenAI-wire providers from
/v1/messages.
"""

from __future__ import annotations

import orjson

from gateway.adapters.base import PassThroughAdapter, StreamAdapter
from gateway.adapters.usage import count_output
from gateway.context import RequestContext, Usage
from gateway.translate.openai_to_anthropic import anthropic_usage
from gateway.translate.sse import SSEEvent, encode_event

# Gateway error codes whose Anthropic error type is not api_error.
_ERROR_TYPES = {
    "content_policy_violation": "invalid_request_error",
    "rate_limit_exceeded": "rate_limit_error",
    "overloaded": "overloaded_error",
    "upstream_timeout": "timeout_error",
}
_CUT = {"type": "api_error", "message": "the upstream stream ended before the message was complete"}
# Events relayed untouched when there is no scanner (once usage is known).
_AS_IS = frozenset({"content_block_start", "content_block_delta", "content_block_stop", "ping"})


def anthropic_error_event(message: str, code: str) -> bytes:
    data = {"type": "error", "error": {"type": _ERROR_TYPES.get(code, "api_error"), "message": message}}
    return encode_event(orjson.dumps(data), "error")


class MessagesOutputScan:
    """The output scanner over Anthropic stream events (one choice: 0; tool input keyed by block)."""

    __slots__ = ("scanner", "_open")

    def __init__(self, scanner) -> None:
        self.scanner = scanner
        self._open: dict[int, str] = {}  # content block index -> "text" or "tool", until its stop

    def apply(self, name: str, data: dict) -> list[tuple[str, dict]]:
        kind = data.get("type")
        index = data.get("index", 0)
        if kind == "content_block_delta":
            delta = data.get("delta") or {}
            if delta.get("type") == "text_delta":
                self._open.setdefault(index, "text")
                text = self.scanner.feed(0, delta.get("text") or "")
                if not text:
                    return []  # held back for now
                delta["text"] = text
            elif delta.get("type") == "input_json_delta" and delta.get("partial_json"):
                self._open.setdefault(index, "tool")
                part = self.scanner.feed_tool_args(0, index, delta["partial_json"])
                if not part:
                    return []
                delta["partial_json"] = part
            return [(name, data)]
        if kind == "content_block_start":
            block = data.get("content_block") or {}
            if block.get("type") == "text":
                self._open[index] = "text"
                if block.get("text"):
                    block["text"] = self.scanner.feed(0, block["text"])
            elif block.get("type") == "tool_use":
                self._open[index] = "tool"
            return [(name, data)]
        if kind == "content_block_stop":
            return self._flush(index) + [(name, data)]
        return [(name, data)]

    def _flush(self, index: int) -> list[tuple[str, dict]]:
        kind = self._open.pop(index, None)
        if kind == "text":
            delta = {"type": "text_delta", "text": self.scanner.flush(0)}
            rest = delta["text"]
        elif kind == "tool":
            delta = {"type": "input_json_delta", "partial_json": self.scanner.flush_tool_args(0, index)}
            rest = delta["partial_json"]
        else:
            return []
        if not rest:
            return []
        return [("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta})]

    def finish(self) -> list[tuple[str, dict]]:
        """Blocks the upstream never stopped: what is held back is scanned and sent."""
        out: list[tuple[str, dict]] = []
        for index in sorted(self._open):
            out += self._flush(index)
        return out


def scan_message(resp: dict, scanner) -> None:
    """The output scanner over a whole Messages response, in place."""
    for block in resp.get("content") or ():
        if block.get("type") == "text" and isinstance(block.get("text"), str):
            block["text"] = scanner.scan_text(block["text"], 0)
        elif block.get("type") == "tool_use" and block.get("input"):
            raw = orjson.dumps(block["input"]).decode()
            scanned = scanner.scan_tool_args(raw)
            if scanned != raw:
                block["input"] = orjson.loads(scanned)


def content_text(event_data: dict) -> str:
    delta = event_data.get("delta") or {}
    return delta.get("text") or delta.get("partial_json") or ""


class MessagesStream(StreamAdapter):
    __slots__ = ("ctx", "scan", "usage", "_texts", "_stopped")

    def __init__(self, ctx: RequestContext, scanner) -> None:
        self.ctx = ctx
        self.scan = MessagesOutputScan(scanner) if scanner is not None else None
        self.usage: Usage | None = None
        self._texts: list[str] = []  # streamed text, counted only if the upstream never sent usage
        self._stopped = False

    def feed(self, event: SSEEvent) -> list[bytes]:
        name = event.event
        if self.scan is None and name in _AS_IS and self.usage is not None:
            if name == "content_block_delta":
                self.ctx.mark_first_token()
            return [encode_event(event.data, name)]
        try:
            data = orjson.loads(event.data)
        except orjson.JSONDecodeError:
            self.ctx.upstream_stream_error = {"type": "api_error", "message": "malformed upstream stream event"}
            return [anthropic_error_event("the upstream sent a malformed stream event", "upstream_stream_error")]
        kind = data.get("type") if isinstance(data, dict) else None
        name = name or kind
        if kind == "message_start":
            self.usage = anthropic_usage((data.get("message") or {}).get("usage"))
        elif kind == "message_delta":
            self._delta_usage(data.get("usage"))
        elif kind == "message_stop":
            self._stopped = True
        elif kind == "error":
            err = data.get("error")
            self.ctx.upstream_stream_error = err if isinstance(err, dict) else dict(_CUT)
        elif kind == "content_block_delta":
            self.ctx.mark_first_token()
            if self.usage is None:
                self._texts.append(content_text(data))
        if self.scan is None or name is None:
            return [encode_event(event.data, name)]
        return [encode_event(orjson.dumps(d), n) for n, d in self.scan.apply(name, data)]

    def _delta_usage(self, raw: dict | None) -> None:
        if not raw:
            return
        usage = self.usage or Usage()
        if raw.get("output_tokens") is not None:
            usage.output_tokens = raw["output_tokens"]  # cumulative
        if raw.get("input_tokens") is not None:
            merged = anthropic_usage(raw)
            usage.input_tokens, usage.cached_tokens = merged.input_tokens, merged.cached_tokens
        self.usage = usage

    def finish(self) -> list[bytes]:
        out = [encode_event(orjson.dumps(d), n) for n, d in self.scan.finish()] if self.scan is not None else []
        if not self._stopped and self.ctx.upstream_stream_error is None:
            self.ctx.upstream_stream_error = dict(_CUT)
            out.append(anthropic_error_event(_CUT["message"], "upstream_stream_error"))
        return out

    def error_event(self, message: str, code: str) -> bytes:
        return anthropic_error_event(message, code)

    def close(self) -> None:
        self.ctx.usage = self.usage if self.usage is not None else count_output(self.ctx, "".join(self._texts))


class AnthropicMessagesAdapter(PassThroughAdapter):
    api = "messages"
    wire = "anthropic"
    upstream_api = "messages"

    def usage_of(self, resp: dict) -> Usage:
        return anthropic_usage(resp.get("usage"))

    def scan(self, resp: dict, scanner) -> None:
        scan_message(resp, scanner)

    def stream(self, ctx: RequestContext, scanner) -> StreamAdapter:
        return MessagesStream(ctx, scanner)
