"""The built-in `mock` provider: deterministic answers with no network and no keys.

It speaks OpenAI's wire format from inside the process, so every stage of the gateway (adapters,
stream relay, guardrails, limits, records) runs exactly as with a real upstream. Answers echo the
last user message (`mode = "echo"`) or generate `max_tokens` words (`mode = "lorem"`); streams are cut
into `chunks` pieces sent `chunk_delay_ms` apart. Usage counts words, which keeps it deterministic.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator
from typing import Literal

import orjson
from pydantic import Field

from gateway.providers.base import Provider, ProviderOptions, UpstreamReply, UpstreamRequest

_LOREM = ("lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut labore "
          "et dolore magna aliqua").split()


class MockOptions(ProviderOptions):
    mode: Literal["echo", "lorem"] = "echo"
    chunks: int = Field(4, ge=1, le=1000)
    chunk_delay_ms: float = Field(0.0, ge=0)
    embedding_dims: int = Field(8, ge=1, le=4096)


def _last_user_text(body: dict) -> str:
    for msg in reversed(body.get("messages") or []):
        if msg.get("role") == "user":
            content = msg.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):
                return " ".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    inp = body.get("input")
    return inp if isinstance(inp, str) else ""


def _words(text: str) -> int:
    return len(text.split())


class MockReply(UpstreamReply):
    def __init__(self, status: int, payload: bytes | None = None, events: list[bytes] | None = None, delay: float = 0.0):
        self.status = status
        self.headers = {"content-type": "text/event-stream" if events is not None else "application/json"}
        self._payload = payload or b""
        self._events = events or []
        self._delay = delay

    async def read(self) -> bytes:
        return self._payload

    async def iter_chunks(self) -> AsyncIterator[bytes]:
        for i, ev in enumerate(self._events):
            if self._delay and i:
                await asyncio.sleep(self._delay)
            yield ev


class MockProvider(Provider):
    wire = "openai"
    Options = MockOptions
    default_base_url = "mock://"

    def needs_http(self) -> bool:
        return False

    def endpoint(self, api: str, model: str, stream: bool) -> str:
        return f"mock://{api}"

    async def send(self, req: UpstreamRequest) -> UpstreamReply:
        body = orjson.loads(req.body)
        api = req.url[len("mock://"):]
        if api == "embeddings":
            return MockReply(200, self._embeddings(body))
        if api != "chat":
            msg = {"error": {"message": f"the mock provider does not serve {api}", "type": "invalid_request_error"}}
            return MockReply(400, orjson.dumps(msg))
        return self._chat(body)

    def _answer(self, body: dict) -> str:
        opts: MockOptions = self.options  # type: ignore[assignment]
        if opts.mode == "lorem":
            n = int(body.get("max_tokens") or body.get("max_completion_tokens") or 16)
            return " ".join(_LOREM[i % len(_LOREM)] for i in range(n))
        return _last_user_text(body) or "hello from the mock provider"

    def _chat(self, body: dict) -> MockReply:
        opts: MockOptions = self.options  # type: ignore[assignment]
        model = body.get("model", "mock")
        text = self._answer(body)
        n = int(body.get("n") or 1)
        prompt_tokens = sum(_words(m["content"]) for m in body.get("messages", []) if isinstance(m.get("content"), str))
        tool = self._tool_call(body, text)
        completion_tokens = _words(text) * n
        usage = {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                 "total_tokens": prompt_tokens + completion_tokens}
        rid = "chatcmpl-mock" + hashlib.sha1(text.encode()).hexdigest()[:12]
        created = int(time.time())
        finish = "tool_calls" if tool else "stop"
        if not body.get("stream"):
            message: dict = {"role": "assistant", "content": None if tool else text}
            if tool:
                message["tool_calls"] = [tool]
            choices = [{"index": i, "message": message, "logprobs": None, "finish_reason": finish} for i in range(n)]
            resp = {"id": rid, "object": "chat.completion", "created": created, "model": model,
                    "choices": choices, "usage": usage}
            return MockReply(200, orjson.dumps(resp))
        base = {"id": rid, "object": "chat.completion.chunk", "created": created, "model": model}
        events: list[bytes] = []

        def emit(choices: list, usage_value: dict | None = None) -> None:
            chunk = dict(base, choices=choices)
            if usage_value is not None or body.get("stream_options", {}).get("include_usage"):
                chunk["usage"] = usage_value
            events.append(b"data: " + orjson.dumps(chunk) + b"\n\n")

        emit([{"index": i, "delta": {"role": "assistant", "content": ""}, "finish_reason": None} for i in range(n)])
        if tool:
            emit([{"index": i, "delta": {"tool_calls": [dict(tool, index=0)]}, "finish_reason": None} for i in range(n)])
        else:
            pieces = _split(text, opts.chunks)
            for piece in pieces:
                emit([{"index": i, "delta": {"content": piece}, "finish_reason": None} for i in range(n)])
        emit([{"index": i, "delta": {}, "finish_reason": finish} for i in range(n)])
        if body.get("stream_options", {}).get("include_usage"):
            emit([], usage)
        events.append(b"data: [DONE]\n\n")
        return MockReply(200, events=events, delay=opts.chunk_delay_ms / 1000.0)

    @staticmethod
    def _tool_call(body: dict, text: str) -> dict | None:
        tools = body.get("tools") or []
        choice = body.get("tool_choice")
        if not tools or choice in (None, "none", "auto"):
            return None
        # Shapes are checked at ingress (gateway/apis), but a forced choice may name a
        # non-function tool ("custom", "allowed_tools"): answer with the first function tool there is.
        named = choice.get("function") if isinstance(choice, dict) else None
        if isinstance(named, dict):
            name = named["name"]
        else:
            names = [t["function"]["name"] for t in tools if t.get("type") == "function"]
            if not names:
                return None
            name = names[0]
        return {"id": "call_mock_1", "type": "function",
                "function": {"name": name, "arguments": orjson.dumps({"text": text}).decode()}}

    def _embeddings(self, body: dict) -> bytes:
        opts: MockOptions = self.options  # type: ignore[assignment]
        inputs = body.get("input")
        items = [inputs] if isinstance(inputs, str) else list(inputs or [])
        data = []
        for i, item in enumerate(items):
            digest = hashlib.sha256(str(item).encode()).digest()
            vec = [round((digest[j % 32] - 128) / 128.0, 6) for j in range(opts.embedding_dims)]
            data.append({"object": "embedding", "index": i, "embedding": vec})
        tokens = sum(_words(str(x)) for x in items)
        return orjson.dumps({"object": "list", "data": data, "model": body.get("model", "mock"),
                             "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})


def _split(text: str, parts: int) -> list[str]:
    if not text:
        return [""]
    size = max(1, -(-len(text) // parts))
    return [text[i:i + size] for i in range(0, len(text), size)]
