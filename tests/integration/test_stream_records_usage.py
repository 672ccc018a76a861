"""A streamed answer's record carries its usage and cost. The record is submitted before the stream's
last byte (kill -9 safety), so usage must be settled by then: a test of the record itself, not of
the context after the response (which the usage filter fills later)."""

from __future__ import annotations

import openai
import pytest

from gateway.records.recorder import Recorder
from tests.support.fake_upstream import Reply, transcript
from tests.support.gateway import TEST_KEY


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


@pytest.mark.parametrize("include_usage", [False, True])
def test_streamed_record_has_tokens_and_cost(gateway, upstream, records, include_usage):
    c = openai.OpenAI(base_url=gateway.v1, api_key=TEST_KEY, max_retries=0)
    kw = {"stream_options": {"include_usage": True}} if include_usage else {}
    list(c.chat.completions.create(model="gpt", messages=[{"role": "user", "content": "hi"}], stream=True, **kw))
    rec = records[-1]
    assert rec["status"] == 200 and rec["input_tokens"] > 0 and rec["output_tokens"] > 0
    assert rec["cost_usd"] > 0 and rec["usage_estimated"] is False


def test_stream_cut_by_the_upstream_records_counted_usage(gateway, upstream, records):
    upstream.push(Reply(sse=transcript("openai_stream_text.sse"), reset_after=3))
    c = openai.OpenAI(base_url=gateway.v1, api_key=TEST_KEY, max_retries=0)
    with pytest.raises(openai.APIError):
        list(c.chat.completions.create(model="gpt", messages=[{"role": "user", "content": "hi"}], stream=True))
    rec = records[-1]
    assert rec["input_tokens"] > 0 and rec["output_tokens"] > 0 and rec["usage_estimated"] is True
    assert rec["cost_usd"] > 0
