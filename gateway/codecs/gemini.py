"""The Gemini wire (Google AI `generateContent` / `streamGenerateContent?alt=sse`, and Vertex AI's same
wire), read: its `GenerateContentResponse` objects, whole or one per SSE event, into neutral events
(gateway.events), and its `usageMetadata`, parsed here only.

A streamed answer is a series of whole `GenerateContentResponse` objects, each holding the next
pieces of each candidate's parts; the last one carries `finishReason` and the final usage. There is no
end marker: a stream that ends before a `finishReason` was cut, and `end()` reports it. Only candidate 0
is read (the translators refuse `n` > 1).

Parts: `text` is text; `functionCall` (name, args as an object, sent whole) is one tool call, whose id is
the upstream's `id` or one made here, carrying the part's `thoughtSignature` (Gemini 3 refuses a
function call in the history without it, and chat and Messages callers have nowhere else to keep it:
`call_id` / `signature_of` are the round trip). Thought summaries (`thought: true`) have no neutral
form and are not shown; their tokens are counted. A prompt blocked by safety (`promptFeedback`,
no candidates) finishes with `content_filter`.

Usage: `promptTokenCount` includes `cachedContentTokenCount` (the neutral `Usage` counts cached input
inside input too); `toolUsePromptTokenCount` is input; `thoughtsTokenCount` is billed as output.
"""

from __future__ import annotations

import base64
import binascii
import uuid

import orjson

from gateway.codecs import Malformed
from gateway.context import Usage
from gateway.errors import GatewayError
from gateway.events import End, Error, Event, Finish, PartEnd, Raw, Start, TextDelta, ToolCallDelta, UsageReport
from gateway.translate.sse import SSEEvent
from gateway.translate.upstream_errors import gemini_stream_error

# Gemini finish reasons in Chat Completions' words (the neutral vocabulary); anything else is "stop".
_FILTERED = ("SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY",
             "IMAGE_PROHIBITED_CONTENT", "IMAGE_RECITATION", "MODEL_ARMOR")
FINISH_REASONS: dict[str, str] = {"STOP": "stop", "MAX_TOKENS": "length", **{r: "content_filter" for r in _FILTERED}}
CUT = "the upstream stream ended before the answer was complete"
_SIG = "_ts_"  # between a made-up tool call id and the thought signature it carries


def gemini_usage(raw: dict | None) -> Usage:
    raw = raw or {}
    return Usage(
        input_tokens=(raw.get("promptTokenCount") or 0) + (raw.get("toolUsePromptTokenCount") or 0),
        output_tokens=(raw.get("candidatesTokenCount") or 0) + (raw.get("thoughtsTokenCount") or 0),
        cached_tokens=raw.get("cachedContentTokenCount") or 0,
        reasoning_tokens=raw.get("thoughtsTokenCount") or 0,
    )


def call_id(upstream_id: object, signature: object) -> str:
    """A tool call's id for the caller: the upstream's, or a new one; with the part's thought signature
    appended (URL-safe base64, so the id stays within Anthropic's `[A-Za-z0-9_-]` ids)."""
    base = upstream_id if isinstance(upstream_id, str) and upstream_id else "call_" + uuid.uuid4().hex[:24]
    if not isinstance(signature, str) or not signature:
        return base
    try:  # protobuf JSON bytes: standard or URL-safe base64, padded or not
        raw = base64.urlsafe_b64decode(signature.replace("+", "-").replace("/", "_") + "=" * (-len(signature) % 4))
        sig = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    except (binascii.Error, ValueError):
        return base  # not base64: the upstream's signature cannot be carried, and Gemini 2.x ignores it
    return base + _SIG + sig


def signature_of(tool_call_id: object) -> tuple[str, str | None]:
    """(the id without a signature, the thought signature, or None). The signature is written in URL-safe
    base64 with padding, as google-genai writes `bytes` (the API reads either alphabet)."""
    if not isinstance(tool_call_id, str):
        return "", None
    base, sep, sig = tool_call_id.rpartition(_SIG)
    if not sep or not base or not sig:
        return tool_call_id, None
    try:
        raw = base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4))
    except (binascii.Error, ValueError):
        return tool_call_id, None
    return base, base64.urlsafe_b64encode(raw).decode()


def chunk_text(data: bytes) -> str:
    """The text in a raw streamed response (for counting usage)."""
    try:
        doc = orjson.loads(data)
        parts = doc["candidates"][0]["content"]["parts"]
        return "".join(p.get("text") or "" for p in parts if not p.get("thought"))
    except (orjson.JSONDecodeError, KeyError, IndexError, TypeError, AttributeError):
        return ""


class GeminiDecoder:
    """Per-request reader of one upstream answer on the Gemini wire (one choice: 0)."""

    __slots__ = ("raw", "started", "finished", "failed", "error", "_calls", "_text_open", "_finish")

    def __init__(self) -> None:
        self.raw: Raw | None = None
        self.started = False
        self.finished = False  # a finishReason (or a blocked prompt) was seen
        self.failed = False
        self.error: dict | None = None
        self._calls = 0  # tool calls so far
        self._text_open = False
        self._finish: str | None = None

    def feed(self, event: SSEEvent) -> list[Event]:
        self.raw = None
        if self.failed:
            return []
        try:
            data = orjson.loads(event.data)
        except orjson.JSONDecodeError:
            raise Malformed("a Gemini stream event is not JSON") from None
        if not isinstance(data, dict):
            raise Malformed("a Gemini stream event is not a JSON object")
        if isinstance(data.get("error"), dict):
            return [self._fail(data["error"], event.data)]
        out: list[Event] = []
        if not self.started:
            self.started = True
            out.append(Start(data.get("responseId"), data.get("modelVersion")))
        self._read(data, out)
        self.raw = Raw(data, event.data, event.event)
        return out

    def _read(self, resp: dict, out: list[Event]) -> None:
        candidates = resp.get("candidates") or ()
        reason: str | None = None
        for cand in candidates:
            if cand.get("index", 0) != 0:
                continue
            for part in (cand.get("content") or {}).get("parts") or ():
                if part.get("thought"):
                    continue  # a thought summary: not shown to chat or Messages callers (see the module doc)
                text = part.get("text")
                if isinstance(text, str):
                    if text:
                        self._text_open = True
                        out.append(TextDelta(0, text, part))
                elif isinstance(part.get("functionCall"), dict):
                    call = part["functionCall"]
                    if self._text_open:
                        self._text_open = False
                        out.append(PartEnd(0))
                    args = call.get("args")
                    out.append(ToolCallDelta(0, self._calls, call_id(call.get("id"), part.get("thoughtSignature")),
                                             call["name"], orjson.dumps(args if args is not None else {}).decode()))
                    out.append(PartEnd(0, self._calls))
                    self._calls += 1
                # executableCode, codeExecutionResult, inlineData and other parts: not in the neutral events
            if cand.get("finishReason"):
                reason = cand["finishReason"]
        blocked = not candidates and (resp.get("promptFeedback") or {}).get("blockReason")
        if blocked:
            reason = "SAFETY"
        usage = resp.get("usageMetadata")
        if reason is not None and not self.finished:
            self.finished = True
            if self._text_open:
                self._text_open = False
                out.append(PartEnd(0))
            mapped = FINISH_REASONS.get(reason, "stop")
            self._finish = "tool_calls" if mapped == "stop" and self._calls else mapped
        if usage is not None:
            out.append(UsageReport(gemini_usage(usage), self.finished))
        if reason is not None and self._finish is not None:
            out.append(Finish(0, self._finish))
            self._finish = None

    def _fail(self, detail: dict, src: bytes | None) -> Error:
        self.failed = True
        self.error = detail
        gw: GatewayError = gemini_stream_error(detail)
        return Error(gw.message, gw.code, detail, src)

    def end(self) -> list[Event]:
        """The upstream body ended: before a finishReason, the answer is incomplete."""
        if self.failed:
            return []
        if self.finished:
            return [End()]
        err = self._fail({"code": 500, "status": "INTERNAL", "message": CUT}, None)
        err.message, err.code = CUT, "upstream_stream_error"
        return [err]

    @staticmethod
    def whole(resp: dict, raw: bytes) -> list[Event]:
        """A whole answer: its text and function calls, finish reason and usage."""
        if not isinstance(resp, dict):
            raise Malformed("a Gemini response is not a JSON object")
        dec = GeminiDecoder()
        out: list[Event] = [Raw(resp, raw), Start(resp.get("responseId"), resp.get("modelVersion"))]
        dec._read(resp, out)
        if not dec.finished:  # a whole answer is complete whatever it says
            out.append(Finish(0, "tool_calls" if dec._calls else "stop"))
        for ev in out:
            if type(ev) is UsageReport:
                ev.complete = True
        return out
