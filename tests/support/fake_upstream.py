"""A fake provider upstream that replays recorded wire transcripts over a real socket.

Tests queue behaviours (`push`); with none queued it answers like OpenAI with the recorded text
transcript. It records every request it saw and every response the client (the gateway) abandoned,
so tests can assert that a disconnect reached the upstream.
"""

from __future__ import annotations

import asyncio
import random
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import orjson
from aiohttp import web
from multidict import CIMultiDict

TRANSCRIPTS = Path(__file__).resolve().parent.parent / "fixtures" / "transcripts"


def transcript(name: str) -> bytes:
    return (TRANSCRIPTS / name).read_bytes()


def sse_events(raw: bytes) -> list[bytes]:
    """The transcript's events, each with its blank-line terminator."""
    text = raw.replace(b"\r\n", b"\n")
    return [e + b"\n\n" for e in text.split(b"\n\n") if e.strip()]


def completion_reply(pieces: list[str], *, model: object = "m", stream: bool, prompt_tokens: int = 5) -> "Reply":
    """A legacy `text_completion` answer, as OpenAI sends it (with usage in a last chunk when streamed)."""
    usage = {"prompt_tokens": prompt_tokens, "completion_tokens": len(pieces),
             "total_tokens": prompt_tokens + len(pieces)}
    base = {"id": "cmpl-1", "object": "text_completion", "created": 1, "model": model}
    if not stream:
        choice = {"text": "".join(pieces), "index": 0, "logprobs": None, "finish_reason": "stop"}
        return Reply(body=orjson.dumps({**base, "choices": [choice], "usage": usage}))
    events = [{**base, "choices": [{"text": p, "index": 0, "logprobs": None, "finish_reason": None}]} for p in pieces]
    events.append({**base, "choices": [{"text": "", "index": 0, "logprobs": None, "finish_reason": "stop"}]})
    events.append({**base, "choices": [], "usage": usage})
    return Reply(sse=b"".join(b"data: " + orjson.dumps(e) + b"\n\n" for e in events) + b"data: [DONE]\n\n")


@dataclass
class Reply:
    """One upstream answer. `sse` replays events; `body` answers whole; the rest inject faults."""

    status: int = 200
    body: bytes | None = None
    sse: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    event_delay: float = 0.0
    stall_after: int | None = None  # send this many events, then go silent (until the client leaves)
    reset_after: int | None = None  # send this many events, then drop the connection
    hang: bool = False  # never send headers
    header_delay: float = 0.0
    hold: asyncio.Event | None = None  # answer only once this is set (set it on the servers' loop)
    writes: list[bytes] | None = None  # stream these bytes as they are, one write each (event_delay apart)


@dataclass
class Seen:
    path: str
    headers: CIMultiDict
    body: dict
    query: str = ""


class FakeUpstream:
    def __init__(self) -> None:
        self.script: deque[Reply] = deque()
        self.requests: list[Seen] = []
        self.abandoned = 0  # responses the client stopped reading (connection closed on us)
        self.abandoned_event = asyncio.Event()
        self.completed = 0
        self.url = ""
        # With no reply queued: wait this long before answering, and fail this share of requests (500).
        self.delay = 0.0
        self.fail_rate = 0.0
        self.rng = random.Random(0)

    def push(self, *replies: Reply) -> None:
        self.script.extend(replies)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("POST", "/{tail:.*}", self._handle)
        return app

    def _default(self, path: str, body: dict) -> Reply:
        if path.endswith("/embeddings"):
            inputs = body.get("input")
            items = [inputs] if isinstance(inputs, str) else inputs
            data = [{"object": "embedding", "index": i, "embedding": [0.1, 0.2, 0.3]} for i in range(len(items))]
            return Reply(body=orjson.dumps({"object": "list", "data": data, "model": body.get("model"),
                                            "usage": {"prompt_tokens": 5, "total_tokens": 5}}))
        if path.endswith("/completions") and not path.endswith("/chat/completions"):
            return completion_reply(["Hello", " there", "!"], model=body.get("model"), stream=bool(body.get("stream")))
        if path.endswith("/messages/count_tokens"):
            return Reply(body=orjson.dumps({"input_tokens": 42}))
        if path.endswith("/moderations"):
            return Reply(body=orjson.dumps({"id": "modr-1", "model": "omni-moderation-latest", "results": [
                {"flagged": False, "categories": {"violence": False}, "category_scores": {"violence": 0.001}}]}))
        if path.endswith("/responses"):
            if body.get("stream"):
                return Reply(sse=transcript("openai_responses_stream_text.sse"))
            return Reply(body=transcript("openai_responses_text.json"))
        if path.endswith("/messages"):
            if body.get("stream"):
                return Reply(sse=transcript("anthropic_stream_text.sse"))
            return Reply(body=transcript("anthropic_message_text.json"))
        if body.get("stream"):
            return Reply(sse=transcript("openai_stream_text.sse"))
        return Reply(body=transcript("openai_chat_text.json"))

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        body = orjson.loads(raw) if raw else {}
        self.requests.append(Seen(request.path, CIMultiDict(request.headers), body, request.query_string))
        if self.script:
            reply = self.script.popleft()
        elif self.fail_rate and self.rng.random() < self.fail_rate:
            reply = Reply(status=500, body=b'{"error": {"message": "injected failure", "type": "server_error"}}')
        else:
            reply = self._default(request.path, body)
            reply.header_delay = reply.header_delay or self.delay
        try:
            if reply.hang:
                await asyncio.sleep(3600)
            if reply.header_delay:
                await asyncio.sleep(reply.header_delay)
            if reply.hold is not None:
                await reply.hold.wait()
            if reply.writes is not None:  # cut anywhere, even inside an event, to test reassembly
                resp = web.StreamResponse(status=reply.status, headers=reply.headers)
                resp.content_type = "text/event-stream"
                await resp.prepare(request)
                for i, part in enumerate(reply.writes):
                    if i and reply.event_delay:
                        await asyncio.sleep(reply.event_delay)
                    await resp.write(part)
                await resp.write_eof()
                self.completed += 1
                return resp
            if reply.sse is None:
                resp = web.Response(status=reply.status, body=reply.body or b"", headers=reply.headers,
                                    content_type="application/json")
                self.completed += 1
                return resp
            resp = web.StreamResponse(status=reply.status, headers=reply.headers)
            resp.content_type = "text/event-stream"
            await resp.prepare(request)
            for i, event in enumerate(sse_events(reply.sse)):
                if reply.stall_after is not None and i >= reply.stall_after:
                    await asyncio.sleep(3600)
                if reply.reset_after is not None and i >= reply.reset_after:
                    assert request.transport is not None
                    request.transport.abort()
                    return resp
                if reply.event_delay and i:
                    await asyncio.sleep(reply.event_delay)
                await resp.write(event)
            await resp.write_eof()
            self.completed += 1
            return resp
        except (asyncio.CancelledError, ConnectionError):
            self.abandoned += 1
            self.abandoned_event.set()
            raise
