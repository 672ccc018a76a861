"""The OpenAI Chat Completions wire, read: `chat.completion.chunk` SSE events and whole
`chat.completion` bodies into neutral events (gateway.events), and its usage object, parsed here only.

A stream that ends with neither a finish_reason nor `[DONE]` was cut: `end()` reports it as an error.
`ChatFastLane` relays the chunks no filter needs to read as the upstream's own bytes.
"""

from __future__ import annotations

from collections.abc import Callable

import orjson

from gateway.codecs import Malformed
from gateway.context import RequestContext, Usage
from gateway.errors import UpstreamError
from gateway.events import End, Error, Event, Finish, PartEnd, Raw, Start, TextDelta, ToolCallDelta, UsageReport
from gateway.translate.sse import SSEEvent
from gateway.translate.upstream_errors import openai_stream_error

CUT = "the upstream stream ended before the message was complete"


def openai_usage(u: dict) -> Usage:
    """OpenAI's usage object, and the OpenAI-compatible servers' variants of its cache fields:
    `prompt_tokens_details.cached_tokens` (OpenAI, Groq, Together, Fireworks, OpenRouter),
    `prompt_cache_hit_tokens` (DeepSeek); reasoning tokens from `completion_tokens_details`."""
    details = u.get("prompt_tokens_details") or {}
    out_details = u.get("completion_tokens_details") or u.get("output_tokens_details") or {}
    return Usage(
        input_tokens=int(u.get("prompt_tokens") or u.get("input_tokens") or 0),
        output_tokens=int(u.get("completion_tokens") or u.get("output_tokens") or 0),
        cached_tokens=int(details.get("cached_tokens") or u.get("prompt_cache_hit_tokens") or 0),
        cache_write_tokens=int(u.get("cache_creation_input_tokens") or 0),
        reasoning_tokens=int(out_details.get("reasoning_tokens") or 0),
    )


def chunk_text(data: bytes) -> str:
    """The text and tool arguments in a raw chunk (for counting usage the upstream did not send)."""
    try:
        chunk = orjson.loads(data)
    except orjson.JSONDecodeError:
        return ""
    parts: list[str] = []
    for c in (chunk.get("choices") or ()) if isinstance(chunk, dict) else ():
        d = c.get("delta") or {}
        if d.get("content"):
            parts.append(d["content"])
        for call in d.get("tool_calls") or ():
            parts.append((call.get("function") or {}).get("arguments") or "")
    return "".join(parts)


def finish_reasons_of(data: bytes) -> list[str]:
    """The finish reasons in a chunk the fast lane relays unread (read for a traced request only)."""
    try:
        choices = orjson.loads(data).get("choices") or ()
    except (orjson.JSONDecodeError, AttributeError):
        return []
    return [c["finish_reason"] for c in choices if isinstance(c, dict) and isinstance(c.get("finish_reason"), str)]


class ChatDecoder:
    """Per-request reader of one upstream answer on the chat wire."""

    __slots__ = ("started", "finished", "done", "failed", "raw", "_parts")

    def __init__(self) -> None:
        self.raw: Raw | None = None  # the upstream chunk the last `feed` read, beside its events
        self.started = False
        self.finished = False  # a finish_reason was seen
        self.done = False  # [DONE] was seen
        self.failed = False  # an error was reported: nothing more is read
        self._parts: dict[int, int] = {}  # choice -> open part: -1 text, else the tool call's index

    def feed(self, event: SSEEvent) -> list[Event]:
        data = event.data
        self.raw = None
        if self.failed or not data:
            return []  # an empty `data:` event: SDKs would fail to decode it as a chunk
        if data == b"[DONE]":
            self.done = True
            return [End()]
        try:
            chunk = orjson.loads(data)
        except orjson.JSONDecodeError:
            raise Malformed("a chat stream event is not JSON") from None
        if not isinstance(chunk, dict):
            raise Malformed("a chat stream event is not a JSON object")
        return self.read(chunk, data)

    def read(self, chunk: dict, data: bytes) -> list[Event]:
        """One parsed chunk (`data`: its bytes, re-used by a same-wire encoder, kept in `raw`)."""
        if "error" in chunk and "choices" not in chunk:
            err = chunk["error"]
            detail = err if isinstance(err, dict) else {"message": str(err)}
            self.failed = True
            gw = openai_stream_error(500, detail)
            return [Error(gw.message, gw.code, detail, data)]
        self.raw = Raw(chunk, data)
        out: list[Event] = []
        if not self.started:
            self.started = True
            out.append(Start(chunk.get("id"), chunk.get("model")))
        usage = chunk.get("usage") or (chunk["x_groq"].get("usage") if "x_groq" in chunk else None)
        if usage:
            out.append(UsageReport(openai_usage(usage), True))
        parts = self._parts
        for choice in chunk.get("choices") or ():  # inlined: this runs for every chunk of a stream
            idx = choice.get("index", 0)
            delta = choice.get("delta") or {}
            text = delta.get("content") or delta.get("refusal")
            if text:
                if parts.get(idx) != -1:
                    self._part(idx, -1, out)
                out.append(TextDelta(idx, text, delta))
            calls = delta.get("tool_calls")
            if calls:
                for call in calls:
                    fn = call.get("function") or {}
                    index = call.get("index", 0)
                    self._part(idx, index, out)
                    out.append(ToolCallDelta(idx, index, call.get("id"), fn.get("name"), fn.get("arguments") or "",
                                             fn))
            reason = choice.get("finish_reason")
            if reason is not None:
                self.finished = True
                parts.pop(idx, None)
                out.append(Finish(idx, reason))
        return out

    def _part(self, choice: int, part: int, out: list[Event]) -> None:
        """Text, then tool calls one after another: a new part ends the one before it."""
        open_part = self._parts.get(choice)
        if open_part != part:
            if open_part is not None:
                out.append(PartEnd(choice, None if open_part < 0 else open_part))
            self._parts[choice] = part

    def end(self) -> list[Event]:
        """The upstream body ended."""
        if self.failed or self.done:
            return []
        if self.finished:
            return [End()]
        self.failed = True
        return [Error(CUT, "upstream_stream_error", {"type": "api_error", "message": CUT})]

    @staticmethod
    def whole(resp: object, raw: bytes) -> list[Event]:
        """A whole chat.completion: its text slots (each message's content and tool arguments)."""
        if not isinstance(resp, dict) or "choices" not in resp:
            # Some servers answer 200 with an error body; passing it on as a completion breaks SDKs.
            raise UpstreamError("the upstream answered 200 without a completion", code="upstream_error",
                                upstream_status=200)
        out: list[Event] = [Raw(resp, raw), Start(resp.get("id"), resp.get("model"))]
        for choice in resp.get("choices") or ():
            idx = choice.get("index", 0)
            msg = choice.get("message") or {}
            text = msg.get("content")
            if isinstance(text, str) and (text or not msg.get("refusal")):
                out.append(TextDelta(idx, text, msg))
            elif msg.get("refusal"):
                out.append(TextDelta(idx, msg["refusal"], msg))
            for i, call in enumerate(msg.get("tool_calls") or ()):
                fn = call.get("function") or {}
                if isinstance(fn.get("arguments"), str) or fn.get("arguments") is None:
                    out.append(ToolCallDelta(idx, i, call.get("id"), fn.get("name"), fn.get("arguments") or "", fn))
            out.append(Finish(idx, choice.get("finish_reason")))
        out.append(UsageReport(openai_usage(resp.get("usage") or {}), True))
        return out


class ChatFastLane:
    """Chunks relayed as the upstream's bytes when no filter reads text: only a byte check, no parse.
    What a chain would do for them is done here: first-token timing, and keeping the chunk for the
    usage count in case no usage arrives. Anything else (usage, errors, odd bytes) takes the full path."""

    __slots__ = ("ctx", "dec", "keep", "full")

    def __init__(self, ctx: RequestContext, dec: ChatDecoder, keep: list, full: Callable[[SSEEvent], bytes]) -> None:
        self.ctx = ctx
        self.dec = dec
        self.full = full  # the full path: decoder, filters, encoder
        self.keep = keep  # raw chunks, decoded only if the stream ends with no usage

    def feed(self, event: SSEEvent) -> bytes:
        data = event.data
        if b'"usage":{' in data or b'"error"' in data or data[:1] != b"{" or data[-1:] != b"}":
            return self.full(event)
        if not self.ctx.timings.first_token and (b'"content":"' in data and b'"content":""' not in data
                                                or b'"tool_calls"' in data):
            self.ctx.mark_first_token()
        if not self.dec.finished and b'"finish_reason":"' in data:
            self.dec.finished = True  # the decoder tells a finished stream from a cut one
            if self.ctx.trace is not None:  # a traced request: its span names the finish reasons
                self.ctx.trace.finish_reasons.extend(finish_reasons_of(data))
        self.keep.append(data)
        return b"data: " + data + b"\n\n"
