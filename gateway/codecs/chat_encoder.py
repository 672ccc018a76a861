"""The Chat Completions API, written: neutral events into `chat.completion.chunk` SSE bytes or a whole
`chat.completion` body.

`relay=True` (the upstream speaks the chat wire too): each upstream chunk (the `Raw` beside its
events) is re-emitted with the text filters wrote back into it, as the upstream's own bytes when
nothing changed; a choice whose only text a filter held back is left out of its chunk; text a filter
releases later goes out in a chunk with the latest chunk's id, model and other fields. `relay=False`
(translated): chunks are built from the events. Either way the usage chunk and `usage` fields reach
the client only when it asked (`stream_options.include_usage`), `[DONE]` ends a stream that did not
fail, and nothing is written after an error.
"""

from __future__ import annotations

import orjson

from gateway.context import Usage
from gateway.events import End, Error, Event, Finish, Raw, Start, TextDelta, ToolCallDelta, UsageReport

DONE = b"data: [DONE]\n\n"


def chat_error_event(message: str, code: str) -> bytes:
    return b"data: " + orjson.dumps({"error": {"message": message, "type": "api_error", "param": None,
                                               "code": code}}) + b"\n\n"


def usage_to_chat(usage: Usage) -> dict:
    return {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.input_tokens + usage.output_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cached_tokens},
        **({"completion_tokens_details": {"reasoning_tokens": usage.reasoning_tokens}} if usage.reasoning_tokens else {}),
        # Not in OpenAI's schema (it has no cache-write charge); the field LiteLLM and others add for
        # Anthropic's, so a chat caller can see what it is billed for. SDKs keep unknown usage fields.
        **({"cache_creation_input_tokens": usage.cache_write_tokens} if usage.cache_write_tokens else {}),
    }


def _text_key(src: dict) -> str:
    return "refusal" if not src.get("content") and src.get("refusal") else "content"


def _held(choice: dict) -> bool:
    """A choice with nothing to send now: its only text is held back by a filter."""
    delta = choice.get("delta") or {}
    return (choice.get("finish_reason") is None and len(delta) == 1 and delta.get("content") is not None
            and not delta["content"])


class ChatEncoder:
    __slots__ = ("relay", "include_usage", "id", "model", "created", "error", "usage", "finish",
                 "_last", "_dirty", "_held")

    error_event = staticmethod(chat_error_event)

    def __init__(self, *, relay: bool, include_usage: bool, id: str = "", model: str = "", created: int = 0) -> None:
        self.relay = relay
        self.include_usage = include_usage
        self.id, self.model, self.created = id, model, created
        self.error: dict | None = None  # set once an error event was written: the stream is over
        self.usage: Usage | None = None
        self.finish: str | None = None  # whole answers: the (first) choice's finish reason
        self._last: dict | None = None  # the latest upstream chunk: the fields of chunks built later
        self._dirty = False
        self._held = False

    # -- streams ---------------------------------------------------------------------------------
    def encode(self, events: list[Event], raw: Raw | None = None) -> bytes:
        """`raw`: the upstream chunk these events were read from (None: events of no chunk)."""
        if self.error is not None:
            return b""
        if not self.relay:
            return b"".join([self._sse(c) for c in self.chunks(events)])
        out: list[bytes] = []
        if raw is not None:
            self._last = raw.data
        for ev in events:
            kind = type(ev)
            if kind is TextDelta:
                src = ev.src
                if src is not None:
                    if src.get("content") != ev.text:  # unchanged text: nothing to write
                        key = "refusal" if not src.get("content") and src.get("refusal") else "content"  # _text_key
                        if src.get(key) != ev.text:
                            self._held |= not ev.text
                            src[key] = ev.text
                            self._dirty = True
                elif ev.text:  # released by a filter
                    out.append(self._sse(self._chunk(ev.choice, {"content": ev.text})))
            elif kind is ToolCallDelta:
                if ev.src is not None:
                    if (ev.src.get("arguments") or "") != ev.arguments:
                        ev.src["arguments"] = ev.arguments
                        self._dirty = True
                elif ev.arguments:
                    call = {"index": ev.index, "function": {"arguments": ev.arguments}}
                    out.append(self._sse(self._chunk(ev.choice, {"tool_calls": [call]})))
            elif kind is Error:
                if raw is not None:
                    self._emit(raw, out)
                self.error = ev.detail or {"message": ev.message}
                out.append(b"data: " + ev.src + b"\n\n" if ev.src is not None
                           else chat_error_event(ev.message, ev.code))
                return b"".join(out)
            # Start, Finish, UsageReport, End: the upstream's chunks carry them
        if raw is not None:
            if not out and not self._dirty and not self._held and raw.data.get("choices") and (
                    self.include_usage or "usage" not in raw.data):
                return b"data: " + raw.raw + b"\n\n"  # the common chunk: relayed as it came
            self._emit(raw, out)
        return out[0] if len(out) == 1 else b"".join(out)

    def chunks(self, events: list[Event]) -> list[dict]:
        """Translated: chat.completion.chunk objects for events read from another wire."""
        out: list[dict] = []
        for ev in events:
            if self.error is not None:
                break
            kind = type(ev)
            if kind is TextDelta:
                if ev.text and not ev.signed:  # signed text (thinking) has no form in Chat Completions
                    out.append(self._chunk(ev.choice, {"content": ev.text}, flushed=ev.src is None))
            elif kind is ToolCallDelta:
                if ev.id is not None or ev.name is not None:
                    call = {"index": ev.index, "id": ev.id, "type": "function",
                            "function": {"name": ev.name, "arguments": ev.arguments}}
                    out.append(self._chunk(ev.choice, {"tool_calls": [call]}))
                elif ev.arguments:
                    call = {"index": ev.index, "function": {"arguments": ev.arguments}}
                    out.append(self._chunk(ev.choice, {"tool_calls": [call]}, flushed=ev.src is None))
            elif kind is Start:
                out.append(self._chunk(0, {"role": "assistant", "content": ""}))
            elif kind is Finish:
                out.append(self._chunk(ev.choice, {}, ev.reason))
            elif kind is UsageReport:
                self.usage = ev.usage
            elif kind is End:
                if self.include_usage:
                    out.append({"id": self.id, "object": "chat.completion.chunk", "created": self.created,
                                "model": self.model, "choices": [], "usage": usage_to_chat(self.usage or Usage())})
            elif kind is Error:
                self.error = ev.detail or {"message": ev.message}
                out.append({"error": {"message": ev.message, "type": "api_error", "param": None, "code": ev.code}})
        return out

    def finish_stream(self) -> bytes:
        return b"" if self.error is not None else DONE

    def _emit(self, raw: Raw, out: list[bytes]) -> None:
        chunk, dirty = raw.data, self._dirty
        self._dirty = False
        choices = chunk.get("choices")
        if not choices:
            # The usage-only chunk: passed on only when the client asked for it.
            if not (chunk.get("usage") and not self.include_usage):
                out.append(b"data: " + raw.raw + b"\n\n")
            return
        if self._held:
            self._held = False
            kept = [c for c in choices if not _held(c)]
            if not kept:
                return
            chunk["choices"] = kept
        if not self.include_usage and "usage" in chunk:
            del chunk["usage"]
            dirty = True
        out.append(b"data: " + (orjson.dumps(chunk) if dirty else raw.raw) + b"\n\n")

    def _chunk(self, choice: int, delta: dict, reason: str | None = None, *, flushed: bool = False) -> dict:
        if self._last is not None:  # relayed: the latest upstream chunk's fields
            chunk = {k: v for k, v in self._last.items() if k not in ("choices", "usage")}
            chunk["choices"] = [{"index": choice, "delta": delta, "finish_reason": reason}]
            return chunk
        chunk = {"id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model}
        if flushed:  # text a filter held back: no per-token fields to claim
            chunk["choices"] = [{"index": choice, "delta": delta, "finish_reason": reason}]
            return chunk
        chunk["choices"] = [{"index": choice, "delta": delta, "logprobs": None, "finish_reason": reason}]
        if self.include_usage:
            chunk["usage"] = None  # as OpenAI sends it on every chunk but the last
        return chunk

    @staticmethod
    def _sse(chunk: dict) -> bytes:
        return b"data: " + orjson.dumps(chunk) + b"\n\n"

    # -- whole answers ---------------------------------------------------------------------------
    def whole(self, events: list[Event], raw: bytes) -> bytes:
        """The caller's body: relayed, the upstream's bytes unless a filter rewrote text in them."""
        if not self.relay:
            return orjson.dumps(self.build(events))
        changed = False
        for ev in events:
            kind = type(ev)
            if kind is TextDelta and ev.src is not None and ev.src.get(_text_key(ev.src)) != ev.text:
                ev.src[_text_key(ev.src)] = ev.text
                changed = True
            elif kind is ToolCallDelta and ev.src is not None and (ev.src.get("arguments") or "") != ev.arguments:
                ev.src["arguments"] = ev.arguments
                changed = True
        first = events[0] if events else None
        return orjson.dumps(first.data) if changed and type(first) is Raw else raw

    def build(self, events: list[Event], model: str | None = None) -> dict:
        """A chat.completion made from a translated answer's events; its model is `model`, else the
        upstream's, else the target's."""
        texts: list[str] = []
        calls: list[dict] = []
        upstream_model = None
        usage = Usage()
        for ev in events:
            kind = type(ev)
            if kind is TextDelta and not ev.signed:
                texts.append(ev.text)
            elif kind is ToolCallDelta:
                calls.append({"id": ev.id, "type": "function",
                              "function": {"name": ev.name, "arguments": ev.arguments}})
            elif kind is Finish:
                self.finish = ev.reason
            elif kind is UsageReport:
                usage = ev.usage
            elif kind is Start:
                upstream_model = ev.model
        message: dict = {"role": "assistant", "content": "".join(texts) if texts else None, "refusal": None}
        if calls:
            message["tool_calls"] = calls
        self.usage = usage
        return {
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": model or upstream_model or self.model,
            "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": self.finish or "stop"}],
            "usage": usage_to_chat(usage),
        }
