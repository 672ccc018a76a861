"""The Responses API from an OpenAI-format caller to an OpenAI-wire provider: a pass-through.

Not yet on the event model (gateway.events): its stream object applies the output scanner itself and
offers the relay the same interface as `gateway.adapters.pipeline.StreamPipe`.

Events are relayed as they come, with their `event:` names. Usage is read from the terminal event
(`response.completed`, `.incomplete` or `.failed`). With no output scanner the upstream's bytes are
relayed untouched. With one, `response.output_text.delta` text and function-call argument deltas are
scanned per output item; what the scanner held back is sent as one more delta before the item's
`.done` event, the full-text echoes (`.done`, `content_part.done`, `output_item.done`, the final
response) are replaced by the scanned text, and sequence numbers are renumbered to stay contiguous.
"""

from __future__ import annotations

import orjson

from gateway.adapters.base import PassThroughAdapter
from gateway.adapters.pipeline import UpstreamMalformed
from gateway.context import RequestContext, Usage
from gateway.events import TextDelta, ToolCallDelta
from gateway.filters.usage import count_output
from gateway.translate.sse import SSEEvent, SSEParser, encode_event

_TERMINAL = frozenset({"response.completed", "response.incomplete", "response.failed"})
_DELTAS = frozenset({"response.output_text.delta", "response.function_call_arguments.delta"})
_CUT = "the upstream stream ended before the response was complete"


def responses_usage(u: dict | None) -> Usage:
    u = u or {}
    details = u.get("input_tokens_details") or {}
    out_details = u.get("output_tokens_details") or {}
    return Usage(input_tokens=int(u.get("input_tokens") or 0), output_tokens=int(u.get("output_tokens") or 0),
                 cached_tokens=int(details.get("cached_tokens") or 0),
                 reasoning_tokens=int(out_details.get("reasoning_tokens") or 0))


def scan_response(resp: dict, scanner) -> None:
    """The output scanner over a whole Response object, in place."""
    for oi, item in enumerate(resp.get("output") or ()):
        if item.get("type") == "message":
            for part in item.get("content") or ():
                if part.get("type") == "output_text" and isinstance(part.get("text"), str):
                    part["text"] = scanner.scan_text(part["text"], oi)
        elif item.get("type") == "function_call" and isinstance(item.get("arguments"), str):
            item["arguments"] = scanner.scan_tool_args(item["arguments"])


class ResponsesStream:
    __slots__ = ("ctx", "scanner", "slow", "framer", "content", "_usage", "_deltas", "_ended", "_seq", "_text",
                 "_args")

    def __init__(self, ctx: RequestContext, scanner) -> None:
        self.ctx = ctx
        self.scanner = scanner
        # An output rule with an NER tier: each delta's text is prepared off the event loop (feed_slow) as
        # StreamPipe does, on the channels _scan feeds (text: the output index; arguments: (index, 0)).
        self.slow = bool(scanner is not None and scanner.slow)
        self.framer = SSEParser()
        # Content arrived, even if the scanner still holds it (gateway.http.commit: no retry after it).
        self.content = False
        self._usage: Usage | None = None
        self._deltas: list[bytes | str] = []  # streamed text, counted only if no usage arrives
        self._ended = False
        self._seq = 0  # the next sequence number the client should see
        self._text: dict[tuple[int, int], list[str]] = {}  # scanned text by (output_index, content_index)
        self._args: dict[int, list[str]] = {}  # scanned function-call arguments by output_index

    def feed(self, event: SSEEvent) -> bytes:
        return b"".join(self._feed(event))

    def _feed(self, event: SSEEvent) -> list[bytes]:
        name = event.event
        if self.scanner is None and name is not None and name not in _TERMINAL and name != "error":
            if name in _DELTAS:
                self.ctx.mark_first_token()
                self._deltas.append(event.data)
            self._seq += 1
            return [encode_event(event.data, name)]
        try:
            data = orjson.loads(event.data)
        except orjson.JSONDecodeError as exc:
            raise UpstreamMalformed("the upstream sent a malformed stream event",
                                    code="upstream_malformed_event") from exc
        if not isinstance(data, dict):
            return []
        kind = data.get("type") or name
        if kind in _TERMINAL:
            self._ended = True
            resp = data.get("response") or {}
            if resp.get("usage"):
                self._usage = responses_usage(resp["usage"])
            if kind == "response.failed":
                self.ctx.upstream_stream_error = resp.get("error") or {"message": "the response failed"}
        elif kind == "error":
            self._ended = True
            self.ctx.upstream_stream_error = data
        elif kind in _DELTAS and self.scanner is None:
            self.ctx.mark_first_token()
            self._deltas.append(data.get("delta") or "")
        if self.scanner is None:
            self._seq += 1
            return [encode_event(event.data, name or kind)]
        return [self._encode(d) for d in self._scan(kind, data)]

    def _encode(self, data: dict) -> bytes:
        data["sequence_number"] = self._seq
        self._seq += 1
        return encode_event(orjson.dumps(data), data.get("type"))

    def _scan(self, kind: str | None, data: dict) -> list[dict]:
        scanner = self.scanner
        oi = data.get("output_index", 0)
        if kind == "response.output_text.delta":
            self.content = True
            text = scanner.feed(oi, data.get("delta") or "")
            if not text:
                return []
            self.ctx.mark_first_token()
            self._deltas.append(text)
            self._text.setdefault((oi, data.get("content_index", 0)), []).append(text)
            data["delta"] = text
            return [data]
        if kind == "response.output_text.done":
            key = (oi, data.get("content_index", 0))
            rest = scanner.flush(oi)
            out = []
            if rest:
                self._text.setdefault(key, []).append(rest)
                out.append({"type": "response.output_text.delta", "item_id": data.get("item_id"), "output_index": oi,
                            "content_index": key[1], "delta": rest, "logprobs": []})
            data["text"] = "".join(self._text.get(key, ()))
            return out + [data]
        if kind == "response.function_call_arguments.delta":
            self.content = True
            part = scanner.feed_tool_args(oi, 0, data.get("delta") or "")
            if not part:
                return []
            self.ctx.mark_first_token()
            self._deltas.append(part)
            self._args.setdefault(oi, []).append(part)
            data["delta"] = part
            return [data]
        if kind == "response.function_call_arguments.done":
            rest = scanner.flush_tool_args(oi, 0)
            out = []
            if rest:
                self._args.setdefault(oi, []).append(rest)
                out.append({"type": "response.function_call_arguments.delta", "item_id": data.get("item_id"),
                            "output_index": oi, "delta": rest})
            data["arguments"] = "".join(self._args.get(oi, ()))
            return out + [data]
        if kind == "response.content_part.done":
            self._fix_part(oi, data.get("content_index", 0), data.get("part") or {})
        elif kind == "response.output_item.done":
            self._fix_item(oi, data.get("item") or {})
        elif kind in _TERMINAL:
            for i, item in enumerate((data.get("response") or {}).get("output") or ()):
                self._fix_item(i, item)
        return [data]

    def _fix_part(self, oi: int, ci: int, part: dict) -> None:
        if part.get("type") == "output_text" and (oi, ci) in self._text:
            part["text"] = "".join(self._text[(oi, ci)])

    def _fix_item(self, oi: int, item: dict) -> None:
        if item.get("type") == "message":
            for ci, part in enumerate(item.get("content") or ()):
                self._fix_part(oi, ci, part)
        elif item.get("type") == "function_call" and oi in self._args:
            item["arguments"] = "".join(self._args[oi])

    async def feed_slow(self, event: SSEEvent) -> bytes:
        kind = event.event
        if self.scanner is not None and (kind in _DELTAS or kind is None):
            try:
                data = orjson.loads(event.data)
            except orjson.JSONDecodeError:
                data = None  # feed() reports it
            kind = kind or (data.get("type") if isinstance(data, dict) else None)
            if kind in _DELTAS and isinstance(data, dict) and isinstance(data.get("delta"), str) and data["delta"]:
                oi = data.get("output_index", 0)
                await self.scanner.prepare([TextDelta(oi, data["delta"]) if kind == "response.output_text.delta"
                                            else ToolCallDelta(oi, 0, arguments=data["delta"])])
        return self.feed(event)

    async def finish_slow(self) -> bytes:
        return self.finish()

    def finish(self) -> bytes:
        if self._ended:
            return b""
        self.ctx.upstream_stream_error = {"message": _CUT}
        return self.error_event(_CUT, "upstream_stream_error")

    def error_event(self, message: str, code: str) -> bytes:
        data = {"type": "error", "code": code, "message": message, "param": None, "sequence_number": self._seq}
        self._seq += 1
        return encode_event(orjson.dumps(data), "error")

    def close(self) -> None:
        if self._usage is not None:
            self.ctx.usage = self._usage
            return
        parts = []
        for d in self._deltas:
            if isinstance(d, bytes):
                try:
                    d = orjson.loads(d).get("delta") or ""
                except (orjson.JSONDecodeError, AttributeError):
                    continue
            parts.append(d)
        self.ctx.usage = count_output(self.ctx, "".join(parts))


class ResponsesOpenAI(PassThroughAdapter):
    api = "responses"
    wire = "openai"
    upstream_api = "responses"

    def response(self, ctx: RequestContext, raw: bytes, scanner) -> bytes:
        """The upstream's bytes as they are, unless the output scanner rewrote text in them."""
        try:
            resp = orjson.loads(raw)
            ctx.usage = responses_usage(resp.get("usage"))
        except (ValueError, TypeError, AttributeError) as exc:
            raise UpstreamMalformed("the upstream sent a malformed response",
                                    code="upstream_malformed_response") from exc
        if scanner is None:
            return raw
        rewritten = scanner.rewritten
        scan_response(resp, scanner)
        return raw if scanner.rewritten == rewritten else orjson.dumps(resp)

    def stream(self, ctx: RequestContext, scanner) -> ResponsesStream:  # type: ignore[override]
        return ResponsesStream(ctx, scanner)
