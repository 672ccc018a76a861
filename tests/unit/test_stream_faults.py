"""Errors by ownership in the stream relay, by fault injection: an exception raised at every filter
(each hook, `on_end`) and at the encoder (`encode`, `finish_stream`) is a gateway bug. The client
still gets exactly one well-formed stream in its API's format ending in one error event, the context
records a gateway error (not the upstream's `upstream_malformed_event`), and the log names the request.
Run for chat and messages callers, with the same wire (native) and the other (translated), with and
without output guardrails, through the real relay on a loopback server."""

from __future__ import annotations

import logging
from pathlib import Path
from types import SimpleNamespace

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from gateway.filters.answer import AnswerText
from gateway.shadow.pair import AnswerSink
from gateway.adapters.registry import ADAPTERS
from gateway.codecs.chat_encoder import ChatEncoder
from gateway.codecs.messages_encoder import MessagesEncoder
from gateway.config.validate import SourcedRule
from gateway.context import RequestContext, Target, TraceMarks
from gateway.filters.cache_fill import CacheFill
from gateway.filters.guardrails import OutputGuard
from gateway.filters.timing import FirstToken
from gateway.filters.trace import FinishReasons
from gateway.filters.usage import UsageFallback
from gateway.guardrails.engine import Guardrails
from gateway.http.commit import Head
from gateway.http.relay import relay_stream
from gateway.translate.sse import SSEParser

TRANSCRIPTS = Path(__file__).parent.parent / "fixtures" / "transcripts"
STREAMS = {"openai": (TRANSCRIPTS / "openai_stream_text.sse").read_bytes(),
           "anthropic": (TRANSCRIPTS / "anthropic_stream_text.sse").read_bytes()}
EMAILS = Guardrails.compile([SourcedRule("t.toml", "guardrails[0]", {"id": "pii", "type": "pii",
                                                                      "entities": ["EMAIL_ADDRESS"],
                                                                      "direction": "output"})])
PAIRS = [("chat", "openai"), ("chat", "anthropic"), ("messages", "anthropic"), ("messages", "openai")]
STREAMS["gemini"] = (TRANSCRIPTS / "gemini_stream_text.sse").read_bytes()
PAIRS += [("chat", "gemini"), ("messages", "gemini")]
# Every hook each filter has (the chain calls a filter only for the hooks it overrides).
SITES = [(UsageFallback, "on_text"), (UsageFallback, "on_usage"), (OutputGuard, "on_text"), (OutputGuard, "on_part_end"),
         (OutputGuard, "on_end"), (FirstToken, "seen"),
         ("encoder", "encode"), ("encoder", "finish_stream"),
         (CacheFill, "on_text"), (CacheFill, "on_part_end"), (FinishReasons, "on_part_end"),  # the cache fill: only where a [[cache]] rule fills
         (AnswerText, "on_text"), (AnswerText, "on_part_end")]  # the answer: only for a shadow pair's sides
# Hooks the raw-bytes fast lane stands in for on an unguarded same-API stream (the chain never sees
# these events there: the lane does their filters' work itself).
FAST_LANE = {("chat", "openai", "on_text"), ("chat", "openai", "seen"), ("messages", "anthropic", "on_text"),
             ("messages", "anthropic", "seen"), ("chat", "openai", "on_part_end")}
ENCODERS = {"chat": ChatEncoder, "messages": MessagesEncoder}


class Reply:
    status = 200
    headers: dict = {}

    def __init__(self, body: bytes) -> None:
        self.body = body

    async def iter_chunks(self):
        for i in range(0, len(self.body), 97):  # events split across reads
            yield self.body[i:i + 97]


class Tokens:
    def count_prompt(self, body, model) -> int:
        return 1

    def count_text(self, text, model) -> int:
        return 1

    def count_messages(self, messages, model) -> int:
        return 1


def _ctx(api: str) -> RequestContext:
    runtime = SimpleNamespace(services=SimpleNamespace(recorder=None), cost_usd=lambda ctx: 0.0, tokens=Tokens())
    ctx = RequestContext("req-fault", api, "anthropic" if api == "messages" else "openai", runtime, 0.0, "t", "s",
                         body={"model": "m"})
    ctx.stream = True
    ctx.target = Target("alias", "p", "model")
    return ctx


async def _run(api: str, wire: str, guard: bool, fill: bool = False,
               traced: bool = False, answer: bool = False) -> tuple[bytes, RequestContext]:
    ctx = _ctx(api)
    if traced:  # a request sampled for tracing composes the FinishReasons filter
        ctx.trace = TraceMarks()
    if fill:
        ctx.cache_fill = CacheFill(1 << 20)
    if answer:  # a shadow pair's side: the answer filter is in the chain (and the fast lane is off)
        ctx.answer = AnswerSink()

    async def handler(request: web.Request) -> web.StreamResponse:
        scanner = EMAILS.for_request(None, None).output_scanner(ctx) if guard else None
        pipe = ADAPTERS[(api, wire)].stream(ctx, scanner)
        # Nothing held: the relay reads the whole stream (faults before the first content, met by
        # gateway.http.commit in a real request, are a logged 500 there: nothing was sent yet).
        head = Head(pipe, Reply(STREAMS[wire]).iter_chunks().__aiter__(), b"", None)
        return await relay_stream(request, ctx, head)

    app = web.Application()
    app.router.add_post("/", handler)
    async with TestClient(TestServer(app)) as client:
        resp = await client.post("/")
        assert resp.status == 200
        body = await resp.read()
    return body, ctx


def _events(body: bytes) -> list[tuple[str | None, bytes]]:
    parser = SSEParser()
    events = parser.feed(body) + parser.close()
    assert body.endswith(b"\n\n"), "the stream ends on an event boundary"
    return [(e.event, e.data) for e in events]


def _is_error(api: str, name: str | None, data: bytes) -> bool:
    if data == b"[DONE]":
        return False
    obj = orjson.loads(data)  # every event is well-formed JSON
    if api == "messages":
        assert name == obj["type"]
        return obj["type"] == "error"
    return "error" in obj


@pytest.mark.parametrize("guard", [False, True], ids=["plain", "guarded"])
@pytest.mark.parametrize(("api", "wire"), PAIRS, ids=[f"{a}-{w}" for a, w in PAIRS])
async def test_a_clean_stream_has_no_error(api: str, wire: str, guard: bool) -> None:
    body, ctx = await _run(api, wire, guard)
    events = _events(body)
    assert not any(_is_error(api, n, d) for n, d in events)
    assert ctx.error is None


@pytest.mark.parametrize("site", SITES, ids=[f"{getattr(c, '__name__', c)}.{m}" for c, m in SITES])
@pytest.mark.parametrize("guard", [False, True], ids=["plain", "guarded"])
@pytest.mark.parametrize(("api", "wire"), PAIRS, ids=[f"{a}-{w}" for a, w in PAIRS])
async def test_an_exception_in_a_filter_or_encoder_ends_the_stream_once_with_an_error(
        api: str, wire: str, guard: bool, site: tuple, monkeypatch, caplog) -> None:
    cls, method = site
    cls = ENCODERS[api] if cls == "encoder" else cls
    if cls is OutputGuard and not guard:
        pytest.skip("no output guardrail in this chain")
    fill = cls is CacheFill
    answer = cls is AnswerText
    if not guard and not fill and not answer and (api, wire, method) in FAST_LANE:
        pytest.skip("the fast lane relays these events without the chain")

    def boom(self, *args, **kwargs):
        raise RuntimeError("injected fault")

    monkeypatch.setattr(cls, method, boom)
    with caplog.at_level(logging.ERROR, logger="gateway.relay"):
        body, ctx = await _run(api, wire, guard, fill, traced=cls is FinishReasons, answer=answer)
    events = _events(body)
    errors = [i for i, (n, d) in enumerate(events) if _is_error(api, n, d)]
    assert errors == [len(events) - 1], "exactly one error event, and it is the last"
    assert b"internal gateway error (request id req-fault)" in events[-1][1]
    assert ctx.error is not None and ctx.error.code == "internal_error" and ctx.error.status == 500
    assert any("req-fault" in r.getMessage() for r in caplog.records)
