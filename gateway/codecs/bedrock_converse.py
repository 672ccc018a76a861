"""The AWS Bedrock Converse wire, read: ConverseStream events (framed by `aws_eventstream`) and whole
Converse bodies into neutral events (gateway.events), and its usage object, parsed here only.

A stream is `messageStart`, then per content block `contentBlockStart` (tool calls only: a text block
starts with its first delta), `contentBlockDelta`s and `contentBlockStop`, then `messageStop` (the stop
reason) and last `metadata` (usage and latency). So `Finish` comes before the usage here, as on the chat
wire; the answer is complete at `metadata`. An exception frame (`throttlingException`,
`modelStreamErrorException`, ...) is an `Error` in the caller's format. A body that ends before
`messageStop` was cut: `end()` reports it; one that ends after it without `metadata` is complete but
reports no usage (the usage fallback counts it, marked estimated).

Usage: Bedrock's `inputTokens` leaves out the prompt-cache reads and writes (`cacheReadInputTokens`,
`cacheWriteInputTokens`), as Anthropic's does; the neutral `Usage` counts all input, with the reads as
`cached_tokens`. Reasoning blocks (`reasoningContent`) have no neutral form and are not relayed.
"""

from __future__ import annotations

import orjson

from gateway.codecs import Malformed
from gateway.context import Usage
from gateway.events import End, Error, Event, Finish, PartEnd, Raw, Start, TextDelta, ToolCallDelta, UsageReport
from gateway.translate.sse import SSEEvent
from gateway.translate.upstream_errors import bedrock_stream_error

# Converse stop reasons in Chat Completions' words (the neutral vocabulary).
FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "guardrail_intervened": "content_filter",
    "content_filtered": "content_filter",
    "malformed_model_output": "stop",
    "malformed_tool_use": "tool_calls",
}
CUT = "the upstream stream ended before the message was complete"
_EXCEPTIONS = frozenset({"internalServerException", "modelStreamErrorException", "validationException",
                         "throttlingException", "serviceUnavailableException", "error", "exception"})


def bedrock_usage(raw: dict | None) -> Usage:
    raw = raw or {}
    read = raw.get("cacheReadInputTokens") or 0
    written = raw.get("cacheWriteInputTokens") or 0
    return Usage(input_tokens=(raw.get("inputTokens") or 0) + read + written,
                 output_tokens=raw.get("outputTokens") or 0, cached_tokens=read, cache_write_tokens=written)


def delta_text(data: bytes) -> str:
    """The text or tool-input piece in a raw contentBlockDelta payload (for counting usage)."""
    try:
        delta = orjson.loads(data).get("delta") or {}
    except (orjson.JSONDecodeError, AttributeError):
        return ""
    return delta.get("text") or (delta.get("toolUse") or {}).get("input") or ""


class ConverseDecoder:
    """Per-request reader of one upstream answer on the Converse wire (one choice: 0)."""

    __slots__ = ("raw", "finished", "stopped", "failed", "error", "_blocks")

    def __init__(self) -> None:
        self.raw: Raw | None = None  # the upstream event the last `feed` read, beside its events
        self.finished = False  # messageStop was seen
        self.stopped = False  # metadata was seen: the answer is complete
        self.failed = False
        self.error: dict | None = None
        self._blocks: dict[int, int] = {}  # contentBlockIndex -> tool call index, or -1 for text

    def feed(self, event: SSEEvent) -> list[Event]:
        self.raw = None
        if self.failed or self.stopped:
            return []
        name = event.event or ""
        try:
            data = orjson.loads(event.data) if event.data else {}
        except orjson.JSONDecodeError:
            raise Malformed("a Bedrock stream event is not JSON") from None
        if not isinstance(data, dict):
            raise Malformed("a Bedrock stream event is not a JSON object")
        out: list[Event] = []
        if name == "contentBlockDelta":
            delta = data.get("delta") or {}
            index = data.get("contentBlockIndex", 0)
            if "text" in delta:
                self._blocks.setdefault(index, -1)
                if delta["text"]:
                    out.append(TextDelta(0, delta["text"], delta))
            elif "toolUse" in delta:
                call = self._blocks.get(index)
                piece = (delta["toolUse"] or {}).get("input")
                if call is not None and call >= 0 and piece:
                    out.append(ToolCallDelta(0, call, arguments=piece, src=delta["toolUse"]))
            # reasoningContent and citation deltas: no neutral form
        elif name == "contentBlockStart":
            tool = (data.get("start") or {}).get("toolUse")
            if isinstance(tool, dict):
                call = self._blocks[data.get("contentBlockIndex", len(self._blocks))] = sum(
                    1 for v in self._blocks.values() if v >= 0)
                out.append(ToolCallDelta(0, call, tool.get("toolUseId"), tool.get("name")))
        elif name == "contentBlockStop":
            call = self._blocks.get(data.get("contentBlockIndex", -1))
            if call is not None:
                out.append(PartEnd(0, None if call < 0 else call))
        elif name == "messageStart":
            out.append(Start(None, None))
        elif name == "messageStop":
            self.finished = True
            out.append(Finish(0, FINISH_REASONS.get(data.get("stopReason") or "", "stop")))
        elif name == "metadata":
            self.stopped = True
            if isinstance(data.get("usage"), dict):
                out.append(UsageReport(bedrock_usage(data["usage"]), True))
            out.append(End())
        elif name in _EXCEPTIONS or name.endswith("Exception"):
            return [self._fail(name, data, event.data)]
        self.raw = Raw(data, event.data, name)
        return out  # event types added after this was written: read and ignored

    def _fail(self, name: str, detail: dict, src: bytes | None) -> Error:
        self.failed = True
        self.error = {"type": name, **detail}
        gw = bedrock_stream_error(name, detail)
        return Error(gw.message, gw.code, self.error, None)

    def end(self) -> list[Event]:
        """The upstream body ended: before messageStop the answer is incomplete; after it, complete."""
        if self.failed or self.stopped:
            return []
        if self.finished:
            self.stopped = True
            return [End()]
        self.failed = True
        self.error = {"type": "api_error", "message": CUT}
        return [Error(CUT, "upstream_stream_error", self.error)]

    @staticmethod
    def whole(resp: dict, raw: bytes) -> list[Event]:
        """A whole Converse answer: its text blocks and tool inputs (as JSON text)."""
        out: list[Event] = [Raw(resp, raw), Start(None, None)]
        message = (resp.get("output") or {}).get("message") or {}
        call = 0
        for block in message.get("content") or ():
            if isinstance(block.get("text"), str):
                out.append(TextDelta(0, block["text"], block))
            elif isinstance(block.get("toolUse"), dict):
                tool = block["toolUse"]
                out.append(ToolCallDelta(0, call, tool.get("toolUseId"), tool.get("name"),
                                         orjson.dumps(tool.get("input") or {}).decode(), tool))
                call += 1
            # reasoningContent, citationsContent: no neutral form
        out.append(Finish(0, FINISH_REASONS.get(resp.get("stopReason") or "", "stop")))
        out.append(UsageReport(bedrock_usage(resp.get("usage")), True))
        return out
