"""The Anthropic Messages API, written: neutral events into Anthropic SSE events (with their `event:`
names) or a whole `message` body.

`relay=True` (the upstream speaks the Anthropic wire too): each upstream event (the `Raw` beside its
events) is re-emitted with the text filters wrote back into it, as the upstream's own bytes when
nothing changed; a delta whose text a filter holds back is left out, and text it releases goes out
as one more delta of the open block, before that block's `content_block_stop`. `relay=False`
(translated from the chat wire): events are built: content blocks opened and closed as text and tool
calls come, and `message_delta` (stop reason and usage together) plus `message_stop` once the
upstream finished, since OpenAI sends usage after the finish. Nothing is written after an error.
"""

from __future__ import annotations

import uuid

import orjson

from gateway.context import Usage
from gateway.errors import UpstreamError
from gateway.events import End, Error, Event, Finish, Raw, Start, TextDelta, ToolCallDelta, UsageReport
from gateway.translate.sse import encode_event

STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}
# Gateway error codes whose Anthropic error type is not api_error.
_ERROR_TYPES = {
    "content_policy_violation": "invalid_request_error",
    "rate_limit_exceeded": "rate_limit_error",
    "overloaded": "overloaded_error",
    "upstream_timeout": "timeout_error",
}
CUT = "the upstream stream ended before the message was complete"


def _error(message: str, code: str) -> tuple[str, dict]:
    return "error", {"type": "error", "error": {"type": _ERROR_TYPES.get(code, "api_error"), "message": message}}


def anthropic_error_event(message: str, code: str) -> bytes:
    return encode_event(orjson.dumps(_error(message, code)[1]), "error")


def usage_to_messages(usage: Usage) -> dict:
    """Anthropic's input_tokens leaves out cached input, which OpenAI's prompt_tokens includes."""
    return {
        "input_tokens": usage.input_tokens - usage.cached_tokens - usage.cache_write_tokens,
        "output_tokens": usage.output_tokens,
        "cache_creation_input_tokens": usage.cache_write_tokens,
        "cache_read_input_tokens": usage.cached_tokens,
    }


def message_id(openai_id: object) -> str:
    if isinstance(openai_id, str) and openai_id:
        return "msg_" + openai_id.removeprefix("chatcmpl-")
    return "msg_" + uuid.uuid4().hex


def parse_arguments(raw: object, *, truncated: bool) -> dict:
    if raw is None or raw == "":
        return {}
    try:
        value = orjson.loads(raw) if isinstance(raw, str) else raw
    except orjson.JSONDecodeError:
        value = None
    if isinstance(value, dict):
        return value
    if truncated:  # cut by max_tokens: Anthropic also returns what there is
        return {}
    raise UpstreamError("the upstream model returned tool arguments that are not a JSON object")


class MessagesEncoder:
    __slots__ = ("relay", "model", "message_id", "usage", "error", "closed", "finish",
                 "_out", "_dirty", "_drop", "_block", "_open", "_tools", "_next", "_started")

    error_event = staticmethod(anthropic_error_event)

    def __init__(self, *, relay: bool, model: str, message_id: str | None = None) -> None:
        self.relay = relay
        self.model = model
        self.message_id = message_id
        self.usage = Usage()
        self.error: dict | None = None  # set once an error event was written: the stream is over
        self.closed = False  # message_stop was written
        self.finish: str | None = None
        self._out: list[tuple[str, dict]] = []  # built events (translated), before they are bytes
        self._dirty = False
        self._drop = False
        self._block = -1  # index of the open content block, -1 when none is open
        self._open: str | None = None  # "text" or "tool" for the open block (translated)
        self._tools: dict[int, int] = {}  # tool call index -> content block index (translated)
        self._next = 0
        self._started = False

    # -- streams ---------------------------------------------------------------------------------
    def encode(self, events: list[Event], raw: Raw | None = None) -> bytes:
        """`raw`: the upstream event these events were read from (None: events of no event)."""
        out: list[bytes] = []
        if self.error is not None:
            return b""
        if not self.relay:
            for name, data in self.build(events):
                out.append(encode_event(orjson.dumps(data), name))
            return b"".join(out)
        if raw is not None and raw.name == "content_block_start" and raw.data is not None:
            self._block = raw.data.get("index", self._block)
        for ev in events:
            kind = type(ev)
            if kind is TextDelta:
                key = "thinking" if ev.signed else "text"  # signed text is only ever re-cut, not changed
                if ev.src is not None:
                    if ev.src.get(key) != ev.text:
                        ev.src[key] = ev.text
                        self._dirty = True
                        self._drop |= not ev.text
                elif ev.text:
                    out.append(self._delta({"type": "thinking_delta", "thinking": ev.text} if ev.signed
                                           else {"type": "text_delta", "text": ev.text}))
            elif kind is ToolCallDelta:
                if ev.src is not None:
                    if ev.src.get("partial_json") != ev.arguments:
                        ev.src["partial_json"] = ev.arguments
                        self._dirty = True
                        self._drop |= not ev.arguments
                elif ev.arguments:
                    out.append(self._delta({"type": "input_json_delta", "partial_json": ev.arguments}))
            elif kind is Error:
                if raw is not None:
                    self._emit(raw, out)
                    raw = None
                self.error = ev.detail or {"type": "api_error", "message": ev.message}
                out.append(encode_event(ev.src, "error") if ev.src is not None
                           else anthropic_error_event(ev.message, ev.code))
                break
        if raw is not None:
            if not out and not self._dirty:  # the common event: relayed as it came
                return encode_event(raw.raw, raw.name)
            self._emit(raw, out)
        return out[0] if len(out) == 1 else b"".join(out)

    def _delta(self, delta: dict) -> bytes:
        data = {"type": "content_block_delta", "index": self._block, "delta": delta}
        return encode_event(orjson.dumps(data), "content_block_delta")

    def _emit(self, raw: Raw, out: list[bytes]) -> None:
        dirty, drop = self._dirty, self._drop
        self._dirty = self._drop = False
        if drop and raw.name == "content_block_delta":
            return  # held back for now
        out.append(encode_event(orjson.dumps(raw.data) if dirty else raw.raw, raw.name))

    def build(self, events: list[Event]) -> list[tuple[str, dict]]:
        """Translated: Anthropic events (name, data) for events read from another wire."""
        self._out = out = []
        for ev in events:
            if self.error is not None or self.closed:
                break
            kind = type(ev)
            if kind is Start:
                self._start_message(ev.id)
            elif kind is TextDelta:
                if ev.choice == 0 and ev.text and not ev.signed:
                    if self._open != "text":
                        self._start_block("text", {"type": "text", "text": ""})
                    out.append(("content_block_delta", {"type": "content_block_delta", "index": self._block,
                                                        "delta": {"type": "text_delta", "text": ev.text}}))
            elif kind is ToolCallDelta:
                if ev.choice == 0:
                    self._tool(ev)
            elif kind is Finish:
                if ev.choice == 0 and ev.reason:
                    self.finish = ev.reason
                    self._stop_block()
            elif kind is UsageReport:
                self.usage = ev.usage
            elif kind is End:
                self._end()
            elif kind is Error:
                self.error = ev.detail or {"type": "api_error", "message": ev.message}
                out.append(_error(ev.message, ev.code))
        return out

    def finish_stream(self) -> bytes:
        """The upstream body ended (translated: what `End` would have written, if it never came)."""
        if self.relay or self.error is not None or self.closed:
            return b""
        return self.encode([End()])

    def _start_message(self, upstream_id: str | None) -> None:
        if self._started:
            return
        self._started = True
        if self.message_id is None:
            self.message_id = message_id(upstream_id)
        self._out.append(("message_start", {"type": "message_start", "message": {
            "id": self.message_id, "type": "message", "role": "assistant", "model": self.model,
            "content": [], "stop_reason": None, "stop_sequence": None,
            "usage": {"input_tokens": 0, "output_tokens": 0},
        }}))

    def _tool(self, ev: ToolCallDelta) -> None:
        block = self._tools.get(ev.index)
        if block is None:
            self._start_block("tool", {"type": "tool_use", "id": ev.id or "toolu_" + uuid.uuid4().hex,
                                       "name": ev.name or "", "input": {}})
            block = self._tools[ev.index] = self._block
        if ev.arguments:
            delta = {"type": "input_json_delta", "partial_json": ev.arguments}
            self._out.append(("content_block_delta", {"type": "content_block_delta", "index": block, "delta": delta}))

    def _start_block(self, kind: str, block: dict) -> None:
        self._stop_block()
        self._block = self._next
        self._next += 1
        self._open = kind
        self._out.append(("content_block_start", {"type": "content_block_start", "index": self._block,
                                                  "content_block": block}))

    def _stop_block(self) -> None:
        if self._open is not None:
            self._out.append(("content_block_stop", {"type": "content_block_stop", "index": self._block}))
            self._open = None

    def _end(self) -> None:
        if self.finish is None:  # [DONE] or the end of the body without a finish_reason: cut
            self.error = {"type": "api_error", "message": CUT}
            self._out.append(_error(CUT, "upstream_stream_error"))
            return
        self.closed = True
        self._stop_block()
        self._out.append(("message_delta", {
            "type": "message_delta",
            "delta": {"stop_reason": STOP_REASONS.get(self.finish, "end_turn"), "stop_sequence": None},
            "usage": usage_to_messages(self.usage),
        }))
        self._out.append(("message_stop", {"type": "message_stop"}))

    # -- whole answers ---------------------------------------------------------------------------
    def whole(self, events: list[Event], raw: bytes) -> bytes:
        if not self.relay:
            return orjson.dumps(self.message(events))
        changed = False
        for ev in events:
            src = ev.src if type(ev) in (TextDelta, ToolCallDelta) else None  # type: ignore[union-attr]
            if src is None:
                continue
            if type(ev) is TextDelta:
                if ev.signed:  # never changed: a finding in it refuses the answer instead
                    continue
                if src.get("text") != ev.text:
                    src["text"], changed = ev.text, True
            elif orjson.dumps(src.get("input") or {}).decode() != ev.arguments:  # type: ignore[union-attr]
                src["input"], changed = orjson.loads(ev.arguments), True  # type: ignore[union-attr]
        first = events[0] if events else None
        return orjson.dumps(first.data) if changed and type(first) is Raw else raw

    def message(self, events: list[Event], model: str | None = None) -> dict:
        """A Messages response made from a translated answer's events; its model is `model`, else the
        upstream's, else the target's."""
        texts: list[str] = []
        calls: list[ToolCallDelta] = []
        upstream_model = upstream_id = None
        for ev in events:
            kind = type(ev)
            if kind is TextDelta and ev.choice == 0 and not ev.signed:
                texts.append(ev.text)
            elif kind is ToolCallDelta and ev.choice == 0:
                calls.append(ev)
            elif kind is Finish and ev.choice == 0:
                self.finish = ev.reason
            elif kind is UsageReport:
                self.usage = ev.usage
            elif kind is Start:
                upstream_model, upstream_id = ev.model, ev.id
        content: list[dict] = []
        text = "".join(texts)
        if text:
            content.append({"type": "text", "text": text})
        for call in calls:
            content.append({"type": "tool_use", "id": call.id or "toolu_" + uuid.uuid4().hex, "name": call.name or "",
                            "input": parse_arguments(call.arguments, truncated=self.finish == "length")})
        return {
            "id": message_id(upstream_id),
            "type": "message",
            "role": "assistant",
            "model": model or upstream_model or self.model,
            "content": content,
            "stop_reason": STOP_REASONS.get(self.finish or "", "end_turn"),
            "stop_sequence": None,
            "usage": usage_to_messages(self.usage),
        }
