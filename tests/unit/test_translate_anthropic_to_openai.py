"""Anthropic Messages callers reaching OpenAI-format providers: requests, responses, streams,
errors; and round trips through both directions, checked with the official SDKs' accumulators."""

from pathlib import Path

import orjson
import pytest
from anthropic._models import construct_type
from anthropic.lib.streaming._messages import accumulate_event
from anthropic.types import Message, RawMessageStreamEvent
from openai.lib.streaming.chat import ChatCompletionStreamState
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from gateway.context import Usage
from gateway.errors import BadRequest, RateLimited, UpstreamError
from gateway.translate.answers import (
    ChatStreamToMessages,
    MessagesStreamToChat,
    chat_response_to_messages,
    messages_response_to_chat,
)
from gateway.translate.anthropic_to_openai import messages_to_chat_request
from gateway.translate.openai_to_anthropic import chat_to_messages_request
from gateway.translate.upstream_errors import openai_error_to_gateway
from gateway.translate.sse import SSEParser

TRANSCRIPTS = Path(__file__).parent.parent / "fixtures" / "transcripts"


def load(name: str) -> dict:
    return orjson.loads((TRANSCRIPTS / name).read_bytes())


def chunks(name: str) -> list[dict | None]:
    """The transcript's chunks; None stands for the `[DONE]` sentinel."""
    parser = SSEParser()
    out = []
    for e in parser.feed((TRANSCRIPTS / name).read_bytes()) + parser.close():
        out.append(None if e.data == b"[DONE]" else orjson.loads(e.data))
    return out


def run_stream(name: str) -> tuple[ChatStreamToMessages, list[list[tuple[str, dict]]]]:
    tr = ChatStreamToMessages("claude-alias", "msg_test")
    out = [tr.done() if c is None else tr.feed(c) for c in chunks(name)]
    return tr, out


def anthropic_sdk_message(events: list[tuple[str, dict]]) -> Message:
    """Assemble a stream the way the anthropic SDK does; it fails on events out of protocol."""
    snapshot = None
    bufs: dict = {}
    for kind, data in events:
        assert data["type"] == kind
        event = construct_type(type_=RawMessageStreamEvent, value=data)
        snapshot = accumulate_event(event=event, current_snapshot=snapshot, json_bufs=bufs)
    return snapshot


# -- request ---------------------------------------------------------------------------------------
def test_full_request_mapping():
    body = {
        "model": "claude-alias",
        "max_tokens": 512,
        "system": [{"type": "text", "text": "Be brief."}, {"type": "text", "text": "Use tools.",
                                                           "cache_control": {"type": "ephemeral"}}],
        "messages": [
            {"role": "user", "content": [
                {"type": "text", "text": "Weather?"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBO"}},
                {"type": "image", "source": {"type": "url", "url": "https://example.com/a.jpg"}},
            ]},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "...", "signature": "s"},
                {"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": [{"type": "text", "text": "18C"}]},
                {"type": "text", "text": "And tomorrow?"},
            ]},
        ],
        "tools": [{"name": "get_weather", "description": "Weather by city",
                   "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}],
        "tool_choice": {"type": "any", "disable_parallel_tool_use": True},
        "stop_sequences": ["END"],
        "temperature": 0.3,
        "top_p": 0.8,
        "top_k": 5,
        "metadata": {"user_id": "u-42"},
        "stream": True,
    }
    out = messages_to_chat_request(body, "gpt-4o")
    assert out == {
        "model": "gpt-4o",
        "max_tokens": 512,
        "temperature": 0.3,
        "top_p": 0.8,
        "stop": ["END"],
        "user": "u-42",
        "stream": True,
        "stream_options": {"include_usage": True},
        "tools": [{"type": "function", "function": {
            "name": "get_weather", "description": "Weather by city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}],
        "tool_choice": "required",
        "parallel_tool_calls": False,
        "messages": [
            {"role": "system", "content": "Be brief.\nUse tools."},
            {"role": "user", "content": [
                {"type": "text", "text": "Weather?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBO"}},
                {"type": "image_url", "image_url": {"url": "https://example.com/a.jpg"}},
            ]},
            {"role": "assistant", "content": "Checking.", "tool_calls": [
                {"id": "toolu_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}]},
            {"role": "tool", "tool_call_id": "toolu_1", "content": "18C"},
            {"role": "user", "content": "And tomorrow?"},
        ],
    }


def test_max_tokens_field_for_reasoning_models():
    body = {"max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}
    out = messages_to_chat_request(body, "o3", max_tokens_field="max_completion_tokens")
    assert out["max_completion_tokens"] == 10 and "max_tokens" not in out
    assert out["messages"] == [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize(("choice", "expected"), [
    ({"type": "auto"}, "auto"), ({"type": "any"}, "required"), ({"type": "none"}, "none"),
    ({"type": "tool", "name": "f"}, {"type": "function", "function": {"name": "f"}}),
])
def test_tool_choice(choice, expected):
    body = {"messages": [{"role": "user", "content": "x"}], "tool_choice": choice,
            "tools": [{"name": "f", "input_schema": {"type": "object"}}]}
    out = messages_to_chat_request(body, "m")
    assert out["tool_choice"] == expected and "parallel_tool_calls" not in out


@pytest.mark.parametrize("body", [
    {"messages": [{"role": "system", "content": "x"}]},
    {"messages": [{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "x"}}]}]}]},
    {"messages": [{"role": "user", "content": "x"}], "tools": [{"type": "web_search_20250305", "name": "web_search"}]},
    {"messages": [{"role": "user", "content": [{"type": "server_tool_use"}]}]},
])
def test_unsupported_requests_are_bad_requests(body):
    with pytest.raises(BadRequest):
        messages_to_chat_request(body, "m")


# -- response --------------------------------------------------------------------------------------
def test_text_response():
    msg, usage = chat_response_to_messages(load("openai_chat_text.json"), "claude-alias")
    assert usage == Usage(input_tokens=1830, output_tokens=10, cached_tokens=1792)
    assert msg == {
        "id": "msg_Ch4KZ8cF1q2HwLmP9x3vT0bQeR7sN",
        "type": "message",
        "role": "assistant",
        "model": "claude-alias",
        "content": [{"type": "text", "text": "Hello! How can I help you today?"}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 38, "output_tokens": 10, "cache_creation_input_tokens": 0,
                  "cache_read_input_tokens": 1792},
    }
    Message.model_validate(msg)


def test_tool_calls_response():
    msg, usage = chat_response_to_messages(load("openai_chat_tool_calls.json"), "claude-alias")
    assert msg["stop_reason"] == "tool_use"
    assert msg["content"] == [
        {"type": "tool_use", "id": "call_8xJQ2mZk1pW4rT7vN3bY6cLd", "name": "get_weather",
         "input": {"location": "San Francisco, CA", "unit": "celsius"}},
        {"type": "tool_use", "id": "call_Vn5s1QdE0hT8kRz2Wc4mXa9p", "name": "get_weather",
         "input": {"location": "Paris, France"}},
    ]
    assert usage == Usage(input_tokens=82, output_tokens=51)
    Message.model_validate(msg)


@pytest.mark.parametrize(("finish", "stop"), [
    ("stop", "end_turn"), ("length", "max_tokens"), ("tool_calls", "tool_use"), ("content_filter", "refusal")])
def test_stop_reasons(finish, stop):
    resp = {"choices": [{"message": {"content": "x"}, "finish_reason": finish}]}
    assert chat_response_to_messages(resp, "m")[0]["stop_reason"] == stop


def test_malformed_tool_arguments():
    def resp(finish):
        return {"choices": [{"finish_reason": finish, "message": {"tool_calls": [
            {"id": "c", "function": {"name": "f", "arguments": '{"a": '}}]}}]}
    assert chat_response_to_messages(resp("length"), "m")[0]["content"][0]["input"] == {}
    with pytest.raises(UpstreamError):
        chat_response_to_messages(resp("tool_calls"), "m")


# -- stream ----------------------------------------------------------------------------------------
def test_text_stream_event_by_event():
    tr, out = run_stream("openai_stream_text.sse")
    role, hello, more, end, finish, usage_chunk, done = out
    assert [k for k, _ in role] == ["message_start"]  # the empty first content opens no block
    assert role[0][1]["message"]["id"] == "msg_test" and role[0][1]["message"]["model"] == "claude-alias"
    assert hello == [
        ("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hello"}}),
    ]
    assert [d["delta"]["text"] for _, d in more + end] == ["! How can I", " help you today?"]
    assert finish == [("content_block_stop", {"type": "content_block_stop", "index": 0})]
    assert usage_chunk == []
    assert done == [
        ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                           "usage": {"input_tokens": 38, "output_tokens": 10, "cache_creation_input_tokens": 0,
                                     "cache_read_input_tokens": 1792}}),
        ("message_stop", {"type": "message_stop"}),
    ]
    assert tr.usage == Usage(input_tokens=1830, output_tokens=10, cached_tokens=1792)
    message = anthropic_sdk_message([e for group in out for e in group])
    assert message.content[0].text == "Hello! How can I help you today?"
    assert message.stop_reason == "end_turn" and message.usage.output_tokens == 10


def test_tool_calls_stream():
    tr, out = run_stream("openai_stream_tool_calls.sse")
    events = [e for group in out for e in group]
    assert [k for k, _ in events] == [
        "message_start", "content_block_start", "content_block_delta", "content_block_delta", "content_block_stop",
        "content_block_start", "content_block_delta", "content_block_delta", "content_block_stop",
        "message_delta", "message_stop"]
    message = anthropic_sdk_message(events)
    assert [(b.type, b.id, b.name, b.input) for b in message.content] == [
        ("tool_use", "call_8xJQ2mZk1pW4rT7vN3bY6cLd", "get_weather", {"location": "San Francisco, CA", "unit": "celsius"}),
        ("tool_use", "call_Vn5s1QdE0hT8kRz2Wc4mXa9p", "get_weather", {"location": "Paris, France"}),
    ]
    assert message.stop_reason == "tool_use"
    assert tr.usage == Usage(input_tokens=82, output_tokens=51)


def test_error_chunk_stops_the_stream():
    tr, out = run_stream("openai_stream_error.sse")
    assert out[-1] == [] and tr.error["type"] == "server_error"
    assert tr.done() == []
    err = tr.gateway_error()
    assert isinstance(err, UpstreamError) and "Sorry" not in err.message


def test_stream_ended_without_finish_is_an_error():
    tr = ChatStreamToMessages("m")
    for c in chunks("openai_stream_text.sse")[:3]:
        tr.feed(c)
    assert tr.done() == [] and tr.error is not None


def test_text_then_tool_call_in_one_stream_and_late_usage_absent():
    tr = ChatStreamToMessages("m", "msg_1")
    base = {"id": "chatcmpl-x", "object": "chat.completion.chunk", "created": 1, "model": "g"}
    seq = [
        {**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": "Let me look."}, "finish_reason": None}]},
        {**base, "choices": [{"index": 0, "delta": {"tool_calls": [
            {"index": 0, "id": "call_a", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
            "finish_reason": None}]},
        {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]},
    ]
    events = [e for c in seq for e in tr.feed(c)] + tr.done()
    message = anthropic_sdk_message(events)
    assert message.content[0].text == "Let me look."
    assert (message.content[1].id, message.content[1].input) == ("call_a", {})
    assert tr.usage == Usage()  # the provider sent no usage chunk: the caller estimates


# -- errors ----------------------------------------------------------------------------------------
def test_error_mapping_from_transcripts():
    err = openai_error_to_gateway(429, (TRANSCRIPTS / "openai_error_rate_limit.json").read_bytes())
    assert isinstance(err, RateLimited) and "org-" not in err.message and err.upstream_status == 429
    err = openai_error_to_gateway(429, (TRANSCRIPTS / "openai_error_insufficient_quota.json").read_bytes())
    assert isinstance(err, UpstreamError) and err.code == "upstream_quota_exceeded"
    err = openai_error_to_gateway(400, (TRANSCRIPTS / "openai_error_context_length.json").read_bytes())
    assert isinstance(err, BadRequest) and err.code == "context_length_exceeded" and "128000" in err.message
    err = openai_error_to_gateway(401, (TRANSCRIPTS / "openai_error_invalid_api_key.json").read_bytes())
    assert err.status == 502 and "sk-" not in err.message and err.code == "upstream_auth_failed"


# -- round trips -----------------------------------------------------------------------------------
def test_openai_request_round_trips_through_anthropic():
    body = {
        "messages": [
            {"role": "system", "content": "S"},
            {"role": "user", "content": "What is 2+2?"},
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "calc", "arguments": '{"expr":"2+2"}'}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "4"},
        ],
        "tools": [{"type": "function", "function": {"name": "calc", "description": "d",
                                                     "parameters": {"type": "object"}}}],
        "tool_choice": {"type": "function", "function": {"name": "calc"}},
        "max_tokens": 100,
        "stop": ["X"],
        "user": "u",
    }
    back = messages_to_chat_request(chat_to_messages_request(body, "claude"), "gpt")
    assert back == {**body, "model": "gpt"}


def test_anthropic_response_round_trips_through_openai():
    original = load("anthropic_message_tool_use.json")
    chat, usage = messages_response_to_chat(original, "alias", "chatcmpl-1")
    ChatCompletion.model_validate(chat)
    back, usage2 = chat_response_to_messages(chat, original["model"])
    assert back["content"] == original["content"] and back["stop_reason"] == original["stop_reason"]
    assert usage2 == usage


@pytest.mark.parametrize("name", ["anthropic_stream_text.sse", "anthropic_stream_tool_use.sse"])
def test_anthropic_stream_round_trips_through_openai_chunks(name):
    parser = SSEParser()
    upstream = parser.feed((TRANSCRIPTS / name).read_bytes())
    to_chat = MessagesStreamToChat("alias", "chatcmpl-1", 1, include_usage=True)
    to_messages = ChatStreamToMessages("claude-sonnet-4-5-20250929", "msg_1")
    state = ChatCompletionStreamState()
    events = []
    for e in upstream:
        for chunk in to_chat.feed(e):
            state.handle_chunk(ChatCompletionChunk.model_validate(chunk))
            events.extend(to_messages.feed(chunk))
    assert to_chat.done() == []
    events.extend(to_messages.done())
    assert to_chat.error is None and to_messages.error is None

    original = [orjson.loads(e.data) for e in upstream]
    expected = anthropic_sdk_message([(d["type"], d) for d in original if d["type"] != "ping"])
    got = anthropic_sdk_message(events)
    assert [b.model_dump() for b in got.content] == [b.model_dump() for b in expected.content]
    assert got.stop_reason == expected.stop_reason
    assert to_messages.usage == to_chat.usage

    # and the openai SDK assembles the intermediate chunks into the same answer
    completion = state.get_final_completion()
    text = "".join(b.text for b in expected.content if b.type == "text")
    assert completion.choices[0].message.content == text
    calls = completion.choices[0].message.tool_calls or []
    assert [(c.id, orjson.loads(c.function.arguments)) for c in calls] == \
        [(b.id, b.input) for b in expected.content if b.type == "tool_use"]
    assert completion.usage.prompt_tokens == to_chat.usage.input_tokens
