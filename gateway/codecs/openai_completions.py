"""OpenAI's legacy Completions wire (`text_completion`), read and written. Only a same-wire pair exists
(a completions caller to an OpenAI-compatible provider), so the encoder always relays: each upstream
chunk is re-emitted with the text filters wrote back into its choices, as the upstream's own bytes when
nothing changed; text a filter releases later goes out in a chunk with the latest chunk's fields. The
usage chunk reaches the client only when it asked (`stream_options.include_usage`).
"""

from __future__ import annotations

import orjson

from gateway.codecs import Malformed
from gateway.codecs.chat_encoder import DONE, chat_error_event
from gateway.codecs.openai_chat import openai_usage
from gateway.errors import UpstreamError
from gateway.events import End, Error, Event, Finish, Raw, Start, TextDelta, UsageReport
from gateway.translate.sse import SSEEvent
from gateway.translate.upstream_errors import openai_stream_error

CUT = "the upstream stream ended before the completion was complete"


def completion_text(data: bytes) -> str:
    """The text in a raw chunk (for counting usage the upstream did not send)."""
    try:
        chunk = orjson.loads(data)
    except orjson.JSONDecodeError:
        return ""
    choices = chunk.get("choices") if isinstance(chunk, dict) else None
    return "".join(c.get("text") or "" for c in choices or () if isinstance(c, dict))


class CompletionsDecoder:
    __slots__ = ("raw", "started", "finished", "done", "failed")

    def __init__(self) -> None:
        self.raw: Raw | None = None
        self.started = self.finished = self.done = self.failed = False

    def feed(self, event: SSEEvent) -> list[Event]:
        data = event.data
        self.raw = None
        if self.failed or not data:
            return []
        if data == b"[DONE]":
            self.done = True
            return [End()]
        chunk = orjson.loads(data)
        if not isinstance(chunk, dict):
            raise Malformed("a completions stream event is not a JSON object")
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
        if chunk.get("usage"):
            out.append(UsageReport(openai_usage(chunk["usage"]), True))
        self._choices(chunk, out)
        return out

    def _choices(self, obj: dict, out: list[Event]) -> None:
        for choice in obj.get("choices") or ():
            idx = choice.get("index", 0)
            text = choice.get("text")
            if isinstance(text, str) and text:
                out.append(TextDelta(idx, text, choice))
            reason = choice.get("finish_reason")
            if reason is not None:
                self.finished = True
                out.append(Finish(idx, reason))

    def end(self) -> list[Event]:
        if self.failed or self.done:
            return []
        if self.finished:
            return [End()]
        self.failed = True
        return [Error(CUT, "upstream_stream_error", {"type": "api_error", "message": CUT})]

    def whole(self, resp: object, raw: bytes) -> list[Event]:
        if not isinstance(resp, dict) or "choices" not in resp:
            raise UpstreamError("the upstream answered 200 without a completion", code="upstream_error",
                                upstream_status=200)
        out: list[Event] = [Raw(resp, raw), Start(resp.get("id"), resp.get("model"))]
        self._choices(resp, out)
        out.append(UsageReport(openai_usage(resp.get("usage") or {}), True))
        return out


class CompletionsEncoder:
    __slots__ = ("include_usage", "error", "_last", "_dirty")

    error_event = staticmethod(chat_error_event)

    def __init__(self, include_usage: bool) -> None:
        self.include_usage = include_usage
        self.error: dict | None = None
        self._last: dict | None = None
        self._dirty = False

    def encode(self, events: list[Event], raw: Raw | None = None) -> bytes:
        if self.error is not None:
            return b""
        out: list[bytes] = []
        if raw is not None:
            self._last = raw.data
        for ev in events:
            kind = type(ev)
            if kind is TextDelta:
                if ev.src is not None:
                    if ev.src.get("text") != ev.text:
                        ev.src["text"] = ev.text
                        self._dirty = True
                elif ev.text:  # released by a filter
                    out.append(self._sse(self._chunk(ev.choice, ev.text)))
            elif kind is Error:
                self.error = ev.detail or {"message": ev.message}
                out.append(b"data: " + ev.src + b"\n\n" if ev.src is not None
                           else chat_error_event(ev.message, ev.code))
                return b"".join(out)
        if raw is not None:
            chunk = raw.data
            choices = chunk.get("choices")
            # The usage-only chunk goes out only when the client asked for it.
            if choices or not chunk.get("usage") or self.include_usage:
                dirty, self._dirty = self._dirty, False
                if choices and any(c.get("text") == "" and c.get("finish_reason") is None for c in choices):
                    chunk["choices"] = [c for c in choices if c.get("text") != "" or c.get("finish_reason")]
                    dirty = True
                    if not chunk["choices"]:
                        return b"".join(out)
                if not self.include_usage and "usage" in chunk:
                    del chunk["usage"]
                    dirty = True
                out.append(b"data: " + (orjson.dumps(chunk) if dirty else raw.raw) + b"\n\n")
        return b"".join(out)

    def _chunk(self, choice: int, text: str) -> dict:
        base = {k: v for k, v in (self._last or {"object": "text_completion"}).items() if k not in ("choices", "usage")}
        base["choices"] = [{"index": choice, "text": text, "logprobs": None, "finish_reason": None}]
        return base

    @staticmethod
    def _sse(chunk: dict) -> bytes:
        return b"data: " + orjson.dumps(chunk) + b"\n\n"

    def finish_stream(self) -> bytes:
        return b"" if self.error is not None else DONE

    def whole(self, events: list[Event], raw: bytes) -> bytes:
        changed = False
        for ev in events:
            if type(ev) is TextDelta and ev.src is not None and ev.src.get("text") != ev.text:
                ev.src["text"] = ev.text
                changed = True
        first = events[0] if events else None
        return orjson.dumps(first.data) if changed and type(first) is Raw else raw
