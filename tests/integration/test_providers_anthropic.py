"""/v1/messages and Anthropic-backed aliases, driven by the official anthropic and openai SDKs through
the gateway to a fake upstream replaying recorded Anthropic and OpenAI wire transcripts."""

from __future__ import annotations

import anthropic
import httpx
import openai
import orjson
import pytest

from gateway.records.recorder import Recorder
from tests.support.fake_upstream import Reply, sse_events, transcript
from tests.support.gateway import TEST_KEY, UPSTREAM_SECRET

MSGS = [{"role": "user", "content": "Say hello"}]
TOOLS = [{"name": "get_weather", "description": "Weather in a city",
          "input_schema": {"type": "object", "properties": {"location": {"type": "string"}}}}]
CHAT_TOOLS = [{"type": "function", "function": {"name": "get_weather", "parameters": TOOLS[0]["input_schema"]}}]


def claude_config(url: str) -> str:
    return f"""
[providers.claude]
type = "anthropic"
base_url = "{url}/v1"
api_key_env = "TEST_UPSTREAM_KEY"

[models.claude]
targets = [{{ provider = "claude", model = "claude-sonnet-4-5" }}]
"""


@pytest.fixture
def gw(make_gateway, upstream):
    return make_gateway(extra=claude_config(upstream.url))


@pytest.fixture
def finished(monkeypatch):
    """The request contexts as they are recorded (usage, attempts, errors): before the response's
    last byte, so each is there once the client has its answer."""
    seen = []
    original = Recorder.submit

    def capture(self, ctx, cost_usd):
        seen.append(ctx)
        original(self, ctx, cost_usd)

    monkeypatch.setattr(Recorder, "submit", capture)
    return seen


def messages_client(gw) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gw.url, api_key=TEST_KEY, max_retries=0)


def chat_client(gw) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.v1, api_key=TEST_KEY, max_retries=0)


# -- /v1/messages to an Anthropic provider: pass-through ---------------------------------------------
def test_messages_non_stream_passes_through_with_anthropic_headers(gw, upstream, finished):
    raw = messages_client(gw).messages.with_raw_response.create(model="claude", max_tokens=100, messages=MSGS)
    msg = raw.parse()
    assert msg.content[0].text == "Hello! How can I help you today?"
    assert raw.headers["x-gateway-provider"] == "claude" and raw.headers["x-gateway-attempts"] == "1"
    seen = upstream.requests[-1]
    assert seen.path == "/v1/messages" and seen.body["model"] == "claude-sonnet-4-5"
    assert seen.headers["x-api-key"] == UPSTREAM_SECRET and seen.headers["anthropic-version"] == "2023-06-01"
    assert "authorization" not in seen.headers, "the caller's key must never reach the upstream"
    usage = finished[-1].usage
    assert (usage.input_tokens, usage.output_tokens, usage.cached_tokens) == (21 + 1800, 12, 1800)


def test_messages_stream_relays_every_event_with_its_name(gw, upstream, finished):
    body = {"model": "claude", "max_tokens": 100, "messages": MSGS, "stream": True}
    with httpx.stream("POST", gw.v1 + "/messages", json=body, headers={"x-api-key": TEST_KEY}) as r:
        relayed = sse_events(r.read())
    assert relayed == sse_events(transcript("anthropic_stream_text.sse")), "event names and data kept byte for byte"
    with messages_client(gw).messages.stream(model="claude", max_tokens=100, messages=MSGS) as stream:
        final = stream.get_final_message()
    assert final.content[0].text == "Hello! How can I help you today?" and final.stop_reason == "end_turn"
    assert upstream.requests[-1].body["stream"] is True
    usage = finished[-1].usage
    assert (usage.input_tokens, usage.output_tokens, usage.cached_tokens, usage.estimated) == (1821, 12, 1800, False)
    assert finished[-1].timings.first_token > 0


def test_messages_tool_use_stream_and_non_stream(gw, upstream):
    upstream.push(Reply(body=transcript("anthropic_message_tool_use.json")))
    msg = messages_client(gw).messages.create(model="claude", max_tokens=100, messages=MSGS, tools=TOOLS)
    calls = [b for b in msg.content if b.type == "tool_use"]
    assert msg.stop_reason == "tool_use" and [c.input for c in calls] == [
        {"location": "San Francisco, CA", "unit": "celsius"}, {"location": "Paris, France"}]
    upstream.push(Reply(sse=transcript("anthropic_stream_tool_use.sse")))
    with messages_client(gw).messages.stream(model="claude", max_tokens=100, messages=MSGS, tools=TOOLS) as s:
        final = s.get_final_message()
    assert [b.input for b in final.content if b.type == "tool_use"] == [c.input for c in calls]
    assert upstream.requests[-1].body["tools"] == TOOLS


def test_messages_upstream_stream_error_is_relayed_and_raised(gw, upstream, finished):
    upstream.push(Reply(sse=transcript("anthropic_stream_error.sse")))
    with pytest.raises(anthropic.APIStatusError) as exc:
        with messages_client(gw).messages.stream(model="claude", max_tokens=100, messages=MSGS) as s:
            for _ in s:
                pass
    assert "Overloaded" in str(exc.value)
    assert finished[-1].upstream_stream_error["type"] == "overloaded_error"


def test_messages_errors_come_in_anthropics_shape(gw, upstream):
    upstream.push(Reply(status=400, body=transcript("anthropic_error_invalid_request.json")))
    with pytest.raises(anthropic.BadRequestError) as exc:
        messages_client(gw).messages.create(model="claude", max_tokens=100, messages=MSGS)
    assert exc.value.body["type"] == "error" and exc.value.body["error"]["type"] == "invalid_request_error"
    with pytest.raises(anthropic.NotFoundError):
        messages_client(gw).messages.create(model="no-such-model", max_tokens=100, messages=MSGS)
    with pytest.raises(anthropic.AuthenticationError):
        anthropic.Anthropic(base_url=gw.url, api_key="sk-wrong", max_retries=0).messages.create(
            model="claude", max_tokens=100, messages=MSGS)
    upstream.push(Reply(status=401, body=transcript("anthropic_error_authentication.json")))
    with pytest.raises(anthropic.APIStatusError) as exc:
        messages_client(gw).messages.create(model="claude", max_tokens=100, messages=MSGS)
    assert exc.value.status_code == 502 and "x-api-key" not in str(exc.value.body)


def test_messages_stream_cut_by_the_upstream_ends_with_an_error_event(gw, upstream):
    upstream.push(Reply(sse=transcript("anthropic_stream_text.sse"), reset_after=4))
    with pytest.raises(anthropic.APIStatusError):
        with messages_client(gw).messages.stream(model="claude", max_tokens=100, messages=MSGS) as s:
            for _ in s:
                pass
    assert len(upstream.requests) == 1


# -- the openai SDK reaching an Anthropic-backed alias -------------------------------------------------
def test_chat_to_anthropic_non_stream_with_tools(gw, upstream, finished):
    upstream.push(Reply(body=transcript("anthropic_message_tool_use.json")))
    r = chat_client(gw).chat.completions.create(model="claude", messages=MSGS, tools=CHAT_TOOLS)
    choice = r.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content == "I'll check the weather in both cities."
    assert [orjson.loads(c.function.arguments) for c in choice.message.tool_calls] == [
        {"location": "San Francisco, CA", "unit": "celsius"}, {"location": "Paris, France"}]
    sent = upstream.requests[-1]
    assert sent.path == "/v1/messages" and sent.body["max_tokens"] == 4096
    assert sent.body["tools"][0]["input_schema"] == TOOLS[0]["input_schema"]
    assert r.usage.prompt_tokens == 472 + 1024 and r.usage.completion_tokens == 106


def test_chat_to_anthropic_stream_translated_chunk_by_chunk(gw, upstream, finished):
    upstream.push(Reply(sse=transcript("anthropic_stream_tool_use.sse")))
    chunks = list(chat_client(gw).chat.completions.create(
        model="claude", messages=MSGS, tools=CHAT_TOOLS, stream=True, stream_options={"include_usage": True}))
    deltas = [(c.choices[0].delta if c.choices else None) for c in chunks]
    assert deltas[0].role == "assistant" and deltas[0].content == ""
    assert [d.content for d in deltas[1:3]] == ["I'll check the weather", " in both cities."]
    starts = [tc for d in deltas if d for tc in d.tool_calls or () if tc.id]
    assert [(t.index, t.id, t.function.name) for t in starts] == [
        (0, "toolu_01T1x1fJ34qAmk2tNTrN7Up6", "get_weather"), (1, "toolu_01CkqEbmQf1QX1uyhHNB8Wdo", "get_weather")]
    args: dict[int, str] = {}
    for d in deltas:
        for tc in (d.tool_calls or ()) if d else ():
            args[tc.index] = args.get(tc.index, "") + (tc.function.arguments or "")
    assert {i: orjson.loads(a) for i, a in args.items()} == {
        0: {"location": "San Francisco, CA", "unit": "celsius"}, 1: {"location": "Paris, France"}}
    assert chunks[-2].choices[0].finish_reason == "tool_calls"
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 106
    assert all(c.id == chunks[0].id for c in chunks)
    assert finished[-1].usage.output_tokens == 106 and finished[-1].usage.input_tokens == 472


def test_chat_to_anthropic_stream_hides_usage_unless_asked_and_relays_errors(gw, upstream):
    chunks = list(chat_client(gw).chat.completions.create(model="claude", messages=MSGS, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "Hello! How can I help you today?"
    assert all(c.choices for c in chunks)
    upstream.push(Reply(sse=transcript("anthropic_stream_error.sse")))
    with pytest.raises(openai.APIError) as exc:
        list(chat_client(gw).chat.completions.create(model="claude", messages=MSGS, stream=True))
    assert "overloaded" in str(exc.value)


def test_chat_to_anthropic_upstream_error_maps_to_openai_shape(gw, upstream):
    upstream.push(Reply(status=400, body=transcript("anthropic_error_invalid_request.json")))
    with pytest.raises(openai.BadRequestError) as exc:
        chat_client(gw).chat.completions.create(model="claude", messages=MSGS)
    assert exc.value.body["upstream_status"] == 400


# -- the anthropic SDK reaching an OpenAI-backed alias --------------------------------------------------
def test_messages_to_openai_non_stream_and_stream(gw, upstream, finished):
    msg = messages_client(gw).messages.create(model="gpt", max_tokens=100, messages=MSGS, system="Be brief")
    assert msg.content[0].text == "Hello! How can I help you today?" and msg.stop_reason == "end_turn"
    assert msg.usage.input_tokens == 1830 - 1792 and msg.usage.cache_read_input_tokens == 1792
    sent = upstream.requests[-1]
    assert sent.path == "/v1/chat/completions" and sent.body["model"] == "gpt-4o-mini"
    assert sent.body["messages"][0] == {"role": "system", "content": "Be brief"}
    with messages_client(gw).messages.stream(model="gpt", max_tokens=100, messages=MSGS) as s:
        names = [e.type for e in s if e.type != "text"]
        final = s.get_final_message()
    assert names[0] == "message_start" and names[-1] == "message_stop" and "content_block_delta" in names
    assert final.content[0].text == "Hello! How can I help you today?"
    assert final.usage.output_tokens == 10
    assert upstream.requests[-1].body["stream_options"] == {"include_usage": True}
    assert (finished[-1].usage.input_tokens, finished[-1].usage.output_tokens) == (1830, 10)


def test_messages_to_openai_tool_calls_stream(gw, upstream):
    upstream.push(Reply(sse=transcript("openai_stream_tool_calls.sse")))
    with messages_client(gw).messages.stream(model="gpt", max_tokens=100, messages=MSGS, tools=TOOLS) as s:
        final = s.get_final_message()
    calls = [b for b in final.content if b.type == "tool_use"]
    assert final.stop_reason == "tool_use" and len(calls) == 2
    assert calls[0].input == {"location": "San Francisco, CA", "unit": "celsius"}
    assert upstream.requests[-1].body["tools"][0]["function"]["name"] == "get_weather"


def test_messages_to_the_mock_provider(gw):
    msg = messages_client(gw).messages.create(model="demo", max_tokens=10, messages=[{"role": "user", "content": "echo"}])
    assert msg.content[0].text == "echo"
