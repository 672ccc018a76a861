"""Every request on every surface leaves exactly one record with its tokens and cost: chat, completions,
responses, embeddings, moderations, count_tokens, messages, to OpenAI-, Anthropic-, Gemini- and
Bedrock-wire fakes, whole and streamed, and a stream the client leaves mid-way. One gateway for the
module's surfaces; official openai / anthropic SDKs (httpx for the disconnects) over real sockets."""

from __future__ import annotations

import time

import anthropic
import httpx
import openai
import pytest

import tests.support.fake_bedrock as fb
from gateway.records.recorder import Recorder
from tests.integration.test_providers_bedrock import HAIKU, aws_env, bedrock, bedrock_config  # noqa: F401
from tests.integration.test_providers_gemini import gem, gemini_config  # noqa: F401
from tests.support.fake_gemini import GReply, part, response, usage
from tests.support.fake_upstream import Reply, completion_reply
from tests.support.gateway import TEST_KEY

MSGS = [{"role": "user", "content": "Say hello"}]
EXTRA = """
[providers.claude]
type = "anthropic"
base_url = "{up}/v1"
api_key_env = "TEST_UPSTREAM_KEY"

[models.claude]
targets = [{{ provider = "claude", model = "claude-sonnet-4-5" }}]

[models.instruct]
targets = [{{ provider = "up", model = "gpt-3.5-turbo-instruct" }}]

[models.mod]
targets = [{{ provider = "up", model = "omni-moderation-latest" }}]

[models.embed]
targets = [{{ provider = "up", model = "text-embedding-3-small" }}]
"""


@pytest.fixture
def records(monkeypatch):
    built: list[dict] = []
    original = Recorder.submit

    def capture(self, ctx, cost_usd):
        from gateway.records.schema import build_record
        built.append(build_record(ctx, cost_usd=cost_usd, user_hash_key=b"k"))
        original(self, ctx, cost_usd)

    monkeypatch.setattr(Recorder, "submit", capture)
    return built


@pytest.fixture
def gw(make_gateway, upstream, gem, bedrock, aws_env):  # noqa: F811
    return make_gateway(extra=EXTRA.format(up=upstream.url) + gemini_config(gem.url) + bedrock_config(bedrock.url))


def _calls(gw):
    oa = openai.OpenAI(base_url=gw.v1, api_key=TEST_KEY, max_retries=0)
    an = anthropic.Anthropic(base_url=gw.url, api_key=TEST_KEY, max_retries=0)

    def drain(stream):
        for _ in stream:
            pass

    def messages_stream(model):
        with an.messages.stream(model=model, max_tokens=20, messages=MSGS) as s:
            s.get_final_message()

    # (name, call, billed: the record must carry a cost)
    return [
        ("chat openai", lambda: oa.chat.completions.create(model="gpt", messages=MSGS), True),
        ("chat openai stream", lambda: drain(oa.chat.completions.create(model="gpt", messages=MSGS, stream=True)), True),
        ("completions", lambda: oa.completions.create(model="instruct", prompt="hi", max_tokens=5), True),
        ("completions stream", lambda: drain(oa.completions.create(model="instruct", prompt="hi", stream=True)), True),
        ("responses", lambda: oa.responses.create(model="gpt", input="hi"), True),
        ("responses stream", lambda: drain(oa.responses.create(model="gpt", input="hi", stream=True)), True),
        ("embeddings", lambda: oa.embeddings.create(model="embed", input="hi"), True),
        ("moderations", lambda: oa.moderations.create(model="mod", input="hi"), False),
        ("count_tokens", lambda: an.messages.count_tokens(model="claude", messages=MSGS), False),
        ("messages anthropic", lambda: an.messages.create(model="claude", max_tokens=20, messages=MSGS), True),
        ("messages anthropic stream", lambda: messages_stream("claude"), True),
        ("chat gemini", lambda: oa.chat.completions.create(model="flash", messages=MSGS), True),
        ("chat gemini stream", lambda: drain(oa.chat.completions.create(model="flash", messages=MSGS, stream=True)), True),
        ("messages gemini", lambda: an.messages.create(model="flash", max_tokens=20, messages=MSGS), True),
        ("messages gemini stream", lambda: messages_stream("flash"), True),
        ("chat bedrock", lambda: oa.chat.completions.create(model="haiku", messages=MSGS), True),
        ("chat bedrock stream", lambda: drain(oa.chat.completions.create(model="haiku", messages=MSGS, stream=True)), True),
        ("messages bedrock", lambda: an.messages.create(model="haiku", max_tokens=20, messages=MSGS), True),
        ("messages bedrock stream", lambda: messages_stream("haiku"), True),
    ]


def test_every_surface_leaves_exactly_one_record_with_tokens_and_cost(gw, records):
    for name, call, billed in _calls(gw):
        before = len(records)
        call()
        assert len(records) == before + 1, f"{name}: {len(records) - before} records"
        rec = records[-1]
        assert rec["status"] == 200, (name, rec)
        # Token counting uses nothing (documented in gateway/apis/count_tokens.py): its record has no usage.
        assert rec["input_tokens"] > 0 if name != "count_tokens" else rec["input_tokens"] == 0, (name, rec)
        if billed:
            assert rec["cost_usd"] > 0, (name, rec)
        else:
            assert not rec["cost_usd"], (name, rec)


def _leave_after_first_chunk(url: str, body: dict) -> None:
    with httpx.stream("POST", url, json=body, headers={"Authorization": f"Bearer {TEST_KEY}"}, timeout=10) as r:
        assert r.status_code == 200
        for chunk in r.iter_bytes():
            if chunk:
                break


def _one_more(records: list[dict], before: int) -> dict:
    deadline = time.monotonic() + 5
    while len(records) == before and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)  # a second record would have come by now
    assert len(records) == before + 1, f"{len(records) - before} records"
    return records[-1]


def test_a_client_leaving_mid_stream_leaves_one_record_with_its_usage(gw, upstream, gem, records):
    reply = completion_reply(["Hello", " there", " friend", "!"], stream=True)
    reply.event_delay = 0.5
    upstream.push(reply)
    before = len(records)
    _leave_after_first_chunk(gw.v1 + "/completions", {"model": "instruct", "prompt": "hi", "stream": True})
    rec = _one_more(records, before)
    assert rec["client_disconnected"] is True and rec["input_tokens"] > 0 and rec["cost_usd"] > 0, rec
    gem.push(GReply(stream=[response([part("Hello")], finish=None, meta=usage(8, 1)),
                            response([part(" there")], finish=None, meta=usage(8, 2)),
                            response([part(" friend")], meta=usage(8, 3))], event_delay=0.5))
    before = len(records)
    _leave_after_first_chunk(gw.v1 + "/chat/completions", {"model": "flash", "messages": MSGS, "stream": True})
    rec = _one_more(records, before)
    assert rec["client_disconnected"] is True and rec["input_tokens"] > 0 and rec["cost_usd"] > 0, rec
