"""A cheap upstream for benchmarks: canned OpenAI JSON and SSE answers, aiohttp on uvloop.

    python benchmarks/canned_upstream.py PORT
"""

from __future__ import annotations

import sys

import orjson
import uvloop
from aiohttp import web

USAGE = {"prompt_tokens": 300, "completion_tokens": 20, "total_tokens": 320}
WORDS = ["Hello", " there", ",", " this", " is", " a", " canned", " answer", " from", " the", " upstream", "."] * 2

JSON_BODY = orjson.dumps({
    "id": "chatcmpl-bench", "object": "chat.completion", "created": 1764139200, "model": "bench-model",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "".join(WORDS)}, "finish_reason": "stop"}],
    "usage": USAGE,
})


def _chunk(delta: dict, finish: str | None = None, usage: dict | None = None, choices: bool = True) -> bytes:
    body = {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1764139200, "model": "bench-model",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}] if choices else [], "usage": usage}
    return b"data: " + orjson.dumps(body) + b"\n\n"


SSE_EVENTS = ([_chunk({"role": "assistant", "content": ""})] + [_chunk({"content": w}) for w in WORDS]
              + [_chunk({}, "stop"), _chunk({}, usage=USAGE, choices=False), b"data: [DONE]\n\n"])


async def chat(request: web.Request) -> web.StreamResponse:
    body = await request.read()
    if b'"stream":true' not in body.replace(b" ", b""):
        return web.Response(body=JSON_BODY, content_type="application/json")
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await resp.prepare(request)
    for ev in SSE_EVENTS:
        await resp.write(ev)
    await resp.write_eof()
    return resp


async def traces(request: web.Request) -> web.Response:
    """An OTLP/HTTP trace sink for the "tracing" row: takes the batch, answers success (an empty
    ExportTraceServiceResponse is zero bytes of protobuf)."""
    await request.read()
    return web.Response(body=b"", content_type="application/x-protobuf")


def main() -> None:
    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    app.router.add_post("/v1/traces", traces)
    uvloop.install()
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=lambda *_: None, backlog=4096)


if __name__ == "__main__":
    main()
