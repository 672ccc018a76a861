"""Chat Completions from an OpenAI-format caller to an OpenAI-wire provider: a pass-through.

The body goes upstream with the target's model name and `stream_options.include_usage` forced on, so
the gateway always learns usage; the usage chunk reaches the client only when it asked for it. With
no output scanner, streamed events are relayed as the upstream's own bytes; with one, each chunk's
text is scanned and the chunk re-encoded.
"""

from __future__ import annotations

import orjson

from gateway.adapters.base import PassThroughAdapter, StreamAdapter
from gateway.adapters.usage import count_output, openai_usage
from gateway.context import RequestContext, Target, Usage
from gateway.errors import UpstreamError

_DONE = b"data: [DONE]\n\n"


class ChatStream(StreamAdapter):
    __slots__ = ("ctx", "scanner", "_texts", "_usage_seen", "_open_choices", "_last")

    def __init__(self, ctx: RequestContext, scanner) -> None:
        self.ctx = ctx
        self.scanner = scanner
        self._texts: list[bytes | str] = []  # raw events or scanned text, used only if no usage arrives
        self._usage_seen = False
        self._open_choices: set[int] = set()
        self._last: dict | None = None  # the last chunk scanned

    def feed(self, event) -> list[bytes]:
        data = event.data
        if data == b"[DONE]":
            return []  # finish() sends it, after any text still held back
        if not data:
            return []  # an empty `data:` event: SDKs would fail to decode it as a chunk
        if (self.scanner is None and b'"usage":{' not in data and b'"error"' not in data
                and data[:1] == b"{" and data[-1:] == b"}"):
            # Fast path: relay the upstream's bytes as they are.
            if not self.ctx.timings.first_token and (b'"content":"' in data and b'"content":""' not in data
                                                    or b'"tool_calls"' in data):
                self.ctx.mark_first_token()
            if not self._usage_seen:
                self._texts.append(data)
            return [b"data: " + data + b"\n\n"]
        chunk = orjson.loads(data)  # a malformed event raises here; the relay ends the stream in-band
        if not isinstance(chunk, dict):
            raise TypeError("a chat stream event is not a JSON object")
        if "error" in chunk and "choices" not in chunk:
            self.ctx.upstream_stream_error = chunk["error"]
            return [b"data: " + data + b"\n\n"]
        usage = chunk.get("usage")
        if usage:
            self._usage_seen = True
            self._texts.clear()
            self.ctx.usage = openai_usage(usage)
        choices = chunk.get("choices") or []
        if not choices:
            # The usage-only chunk: passed on only when the client asked for it.
            if usage and not self.ctx.include_usage:
                return []
            return [b"data: " + data + b"\n\n"]
        if self.scanner is None:
            if not self._usage_seen:
                self._texts.append(data)
            if not self.ctx.include_usage and "usage" in chunk:
                del chunk["usage"]
                return [b"data: " + orjson.dumps(chunk) + b"\n\n"]
            return [b"data: " + data + b"\n\n"]
        return self._scan_chunk(chunk)

    def _scan_chunk(self, chunk: dict) -> list[bytes]:
        out: list[bytes] = []
        scanner = self.scanner
        self._last = chunk  # flushed text goes out in chunks with this one's id, model and other fields
        kept: list[dict] = []
        for choice in chunk["choices"]:
            idx = choice.get("index", 0)
            delta = choice.get("delta") or {}
            content = delta.get("content")
            if content:
                self._texts.append(content)
                self._open_choices.add(idx)
                delta["content"] = scanner.feed(idx, content)
            for call in delta.get("tool_calls") or ():
                fn = call.get("function") or {}
                if fn.get("arguments"):
                    self._open_choices.add(idx)
                    fn["arguments"] = scanner.feed_tool_args(idx, call.get("index", 0), fn["arguments"])
            if choice.get("finish_reason") is not None:
                self._open_choices.discard(idx)
                out += self._flush_choice(idx)
            elif content is not None and not delta["content"] and len(delta) == 1:
                continue  # everything in this delta is held back for now
            kept.append(choice)
        if kept:
            if not self.ctx.timings.first_token and any(
                    (c.get("delta") or {}).get("content") or (c.get("delta") or {}).get("tool_calls") for c in kept):
                self.ctx.mark_first_token()
            chunk["choices"] = kept
            if not self.ctx.include_usage:
                chunk.pop("usage", None)
            out.append(b"data: " + orjson.dumps(chunk) + b"\n\n")
        return out  # flushed text precedes the chunk that finishes its choice

    def _flush_choice(self, idx: int) -> list[bytes]:
        """Release what the scanner still holds for a finishing choice: text, then tool arguments."""
        out: list[bytes] = []
        rest = self.scanner.flush(idx)
        if rest:
            out.append(self._delta_chunk(idx, {"content": rest}))
        for call in self.scanner.open_tool_calls(idx):
            args = self.scanner.flush_tool_args(idx, call)
            if args:
                out.append(self._delta_chunk(idx, {"tool_calls": [{"index": call, "function": {"arguments": args}}]}))
        return out

    def _delta_chunk(self, idx: int, delta: dict) -> bytes:
        self.ctx.mark_first_token()
        last = self._last or {}
        chunk = {k: v for k, v in last.items() if k not in ("choices", "usage")}
        chunk["choices"] = [{"index": idx, "delta": delta, "finish_reason": None}]
        return b"data: " + orjson.dumps(chunk) + b"\n\n"

    def finish(self) -> list[bytes]:
        out: list[bytes] = []
        if self.scanner is not None:
            for idx in sorted(self._open_choices):
                out += self._flush_choice(idx)
        out.append(_DONE)
        return out

    def close(self) -> None:
        if not self._usage_seen:
            self.ctx.usage = count_output(self.ctx, _stream_text(self._texts))

    def error_event(self, message: str, code: str) -> bytes:
        return b"data: " + orjson.dumps({"error": {"message": message, "type": "api_error", "param": None,
                                                    "code": code}}) + b"\n\n"


def _stream_text(items: list) -> str:
    parts: list[str] = []
    for item in items:
        if isinstance(item, str):
            parts.append(item)
            continue
        if item.startswith(b"{"):
            try:
                chunk = orjson.loads(item)
            except orjson.JSONDecodeError:
                continue
            for c in chunk.get("choices") or ():
                d = c.get("delta") or {}
                if d.get("content"):
                    parts.append(d["content"])
                for call in d.get("tool_calls") or ():
                    parts.append((call.get("function") or {}).get("arguments") or "")
    return "".join(parts)


class OpenAIChatAdapter(PassThroughAdapter):
    api = "chat"
    wire = "openai"
    upstream_api = "chat"

    def upstream_body(self, ctx: RequestContext, target: Target) -> bytes:
        if not ctx.stream:
            return super().upstream_body(ctx, target)
        body = dict(ctx.body)  # type: ignore[arg-type]
        body["model"] = target.model
        body["stream_options"] = {**(body.get("stream_options") or {}), "include_usage": True}
        return orjson.dumps(body)

    def usage_of(self, resp) -> Usage:
        if not isinstance(resp, dict) or "choices" not in resp:
            # Some servers answer 200 with an error body; passing it on as a completion breaks SDKs.
            raise UpstreamError("the upstream answered 200 without a completion", code="upstream_error",
                                upstream_status=200)
        return openai_usage(resp.get("usage") or {})

    def scan(self, resp: dict, scanner) -> None:
        for choice in resp.get("choices") or ():
            msg = choice.get("message") or {}
            idx = choice.get("index", 0)
            if isinstance(msg.get("content"), str):
                msg["content"] = scanner.scan_text(msg["content"], idx)
            for call in msg.get("tool_calls") or ():
                fn = call.get("function") or {}
                if isinstance(fn.get("arguments"), str):
                    fn["arguments"] = scanner.scan_tool_args(fn["arguments"])

    def stream(self, ctx: RequestContext, scanner) -> StreamAdapter:
        return ChatStream(ctx, scanner)
