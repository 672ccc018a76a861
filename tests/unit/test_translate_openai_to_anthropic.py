"""OpenAI Chat callers reaching Anthropic: request building, responses, streams, errors."""

from pathlib import Path

import orjson
import pytest

from gateway.context import Usage
from gateway.errors import (
    BadRequest,
    NotFound,
    Overloaded,
    PayloadTooLarge,
    RateLimited,
    UpstreamError,
    UpstreamTimeout,
)
from gateway.translate.answers import MessagesStreamToChat, messages_response_to_chat
from gateway.translate.openai_to_anthropic import chat_to_messages_request
from gateway.translate.upstream_errors import anthropic_error_to_gateway
from gateway.translate.sse import SSEEvent, SSEParser

TRANSCRIPTS = Path(__file__).parent.parent / "fixtures" / "transcripts"


def events(name: str) -> list[SSEEvent]:
    parser = SSEParser()
    return parser.feed((TRANSCRIPTS / name).read_bytes()) + parser.close()


def load(name: str) -> dict:
    return orjson.loads((TRANSCRIPTS / name).read_bytes())


# -- request ---------------------------------------------------------------------------------------
def test_minimal_request_gets_default_max_tokens():
    out = chat_to_messages_request({"model": "fast", "messages": [{"role": "user", "content": "hi"}]}, "claude-x")
    assert out == {
        "model": "claude-x",
        "max_tokens": 4096,
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
    }


def test_full_request_mapping():
    body = {
        "model": "smart",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "developer", "content": [{"type": "text", "text": "Use tools."}]},
            {"role": "user", "content": [
                {"type": "text", "text": "Weather here?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
                {"type": "image_url", "image_url": {"url": "https://example.com/a.jpg", "detail": "high"}},
            ]},
            {"role": "assistant", "content": "Checking.", "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
                {"id": "call_2", "type": "function", "function": {"name": "get_time", "arguments": ""}},
            ]},
            {"role": "tool", "tool_call_id": "call_1", "content": "18C"},
            {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "12:00"}]},
            {"role": "user", "content": "Thanks"},
        ],
        "tools": [{"type": "function", "function": {
            "name": "get_weather", "description": "Weather by city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}},
            {"type": "function", "function": {"name": "get_time"}}],
        "tool_choice": "required",
        "parallel_tool_calls": False,
        "max_completion_tokens": 300,
        "max_tokens": 999,
        "temperature": 0.2,
        "top_p": 0.9,
        "stop": ["END", "  "],
        "stream": True,
        "stream_options": {"include_usage": True},
        "user": "u-42",
        "n": 1,
    }
    out = chat_to_messages_request(body, "claude-sonnet-4-5")
    assert out["system"] == [{"type": "text", "text": "Be brief."}, {"type": "text", "text": "Use tools."}]
    assert out["max_tokens"] == 300
    assert out["temperature"] == 0.2 and out["top_p"] == 0.9
    assert out["stop_sequences"] == ["END"]
    assert out["stream"] is True
    assert out["metadata"] == {"user_id": "u-42"}
    assert out["tool_choice"] == {"type": "any", "disable_parallel_tool_use": True}
    assert out["tools"] == [
        {"name": "get_weather", "description": "Weather by city",
         "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}},
        {"name": "get_time", "input_schema": {"type": "object", "properties": {}}},
    ]
    assert "stream_options" not in out and "n" not in out and "user" not in out
    assert out["messages"] == [
        {"role": "user", "content": [
            {"type": "text", "text": "Weather here?"},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
            {"type": "image", "source": {"type": "url", "url": "https://example.com/a.jpg"}},
        ]},
        {"role": "assistant", "content": [
            {"type": "text", "text": "Checking."},
            {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Paris"}},
            {"type": "tool_use", "id": "call_2", "name": "get_time", "input": {}},
        ]},
        # consecutive tool messages and the next user message merge into one user turn, results first
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "call_1", "content": [{"type": "text", "text": "18C"}]},
            {"type": "tool_result", "tool_use_id": "call_2", "content": [{"type": "text", "text": "12:00"}]},
            {"type": "text", "text": "Thanks"},
        ]},
    ]


def test_single_system_message_is_a_string():
    out = chat_to_messages_request({"messages": [{"role": "system", "content": "S"},
                                                 {"role": "user", "content": "u"}]}, "m")
    assert out["system"] == "S"


@pytest.mark.parametrize(("choice", "expected"), [
    ("auto", {"type": "auto"}),
    ("none", {"type": "none"}),
    ("required", {"type": "any"}),
    ({"type": "function", "function": {"name": "f"}}, {"type": "tool", "name": "f"}),
])
def test_tool_choice(choice, expected):
    body = {"messages": [{"role": "user", "content": "x"}], "tool_choice": choice,
            "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]}
    assert chat_to_messages_request(body, "m")["tool_choice"] == expected


def test_tool_choice_without_tools_is_dropped():
    out = chat_to_messages_request({"messages": [{"role": "user", "content": "x"}], "tool_choice": "auto"}, "m")
    assert "tool_choice" not in out and "tools" not in out


def test_stop_string_and_pdf_file_part():
    body = {"stop": "###", "messages": [{"role": "user", "content": [
        {"type": "file", "file": {"filename": "a.pdf", "file_data": "data:application/pdf;base64,JVBERi0="}}]}]}
    out = chat_to_messages_request(body, "m")
    assert out["stop_sequences"] == ["###"]
    assert out["messages"][0]["content"] == [
        {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="}}]


@pytest.mark.parametrize(("body", "param"), [
    ({"n": 2, "messages": [{"role": "user", "content": "x"}]}, "n"),
    ({"messages": []}, "messages"),
    ({"messages": [{"role": "function", "content": "x"}]}, "messages[0].role"),
    ({"messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}]}, "messages[0].content"),
    ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/png,raw"}}]}]},
     "messages[0].content"),
    ({"messages": [{"role": "assistant", "tool_calls": [
        {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{not json"}}]}]},
     "messages[0].tool_calls"),
    ({"messages": [{"role": "user", "content": "x"}], "tools": [{"type": "code_interpreter"}]}, "tools[0]"),
])
def test_unsupported_requests_are_bad_requests(body, param):
    with pytest.raises(BadRequest) as exc:
        chat_to_messages_request(body, "m")
    assert exc.value.param == param and exc.value.status == 400


# -- response --------------------------------------------------------------------------------------
def test_text_response():
    chat, usage = messages_response_to_chat(load("anthropic_message_text.json"), "smart", "chatcmpl-r1", created=7)
    assert usage == Usage(input_tokens=1821, output_tokens=12, cached_tokens=1800)
    assert chat == {
        "id": "chatcmpl-r1",
        "object": "chat.completion",
        "created": 7,
        "model": "smart",
        "choices": [{"index": 0, "logprobs": None, "finish_reason": "stop", "message": {
            "role": "assistant", "content": "Hello! How can I help you today?", "refusal": None}}],
        "usage": {"prompt_tokens": 1821, "completion_tokens": 12, "total_tokens": 1833,
                  "prompt_tokens_details": {"cached_tokens": 1800}},
    }


def test_tool_use_response():
    chat, usage = messages_response_to_chat(load("anthropic_message_tool_use.json"), "smart", "r2")
    # cache writes count as prompt tokens but are not cache hits
    assert usage == Usage(input_tokens=472 + 1024, output_tokens=106, cached_tokens=0, cache_write_tokens=1024)
    choice = chat["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] == "I'll check the weather in both cities."
    calls = choice["message"]["tool_calls"]
    assert [c["id"] for c in calls] == ["toolu_01T1x1fJ34qAmk2tNTrN7Up6", "toolu_01CkqEbmQf1QX1uyhHNB8Wdo"]
    assert orjson.loads(calls[0]["function"]["arguments"]) == {"location": "San Francisco, CA", "unit": "celsius"}
    assert calls[1]["function"] == {"name": "get_weather", "arguments": '{"location":"Paris, France"}'}


@pytest.mark.parametrize(("stop", "finish"), [
    ("end_turn", "stop"), ("stop_sequence", "stop"), ("max_tokens", "length"),
    ("tool_use", "tool_calls"), ("refusal", "content_filter"),
])
def test_stop_reasons(stop, finish):
    resp = {"content": [], "stop_reason": stop, "usage": {"input_tokens": 1, "output_tokens": 0}}
    chat, _ = messages_response_to_chat(resp, "m", "r")
    assert chat["choices"][0]["finish_reason"] == finish
    assert chat["choices"][0]["message"]["content"] is None


def test_thinking_blocks_are_not_shown():
    resp = {"content": [{"type": "thinking", "thinking": "hmm", "signature": "sig"},
                        {"type": "text", "text": "A"}, {"type": "text", "text": "B"}],
            "stop_reason": "end_turn", "usage": {"input_tokens": 1, "output_tokens": 2}}
    assert messages_response_to_chat(resp, "m", "r")[0]["choices"][0]["message"]["content"] == "AB"


# -- stream ----------------------------------------------------------------------------------------
def run_stream(name: str, include_usage: bool = True) -> tuple[MessagesStreamToChat, list[list[dict]]]:
    tr = MessagesStreamToChat("smart", "chatcmpl-s", 1764139200, include_usage)
    per_event = [tr.feed(e) for e in events(name)]
    per_event.append(tr.done())
    return tr, per_event


def delta(chunk: dict) -> dict:
    return chunk["choices"][0]["delta"]


def test_text_stream_event_by_event():
    tr, out = run_stream("anthropic_stream_text.sse")
    assert [e.event for e in events("anthropic_stream_text.sse")] == [
        "message_start", "content_block_start", "ping", "content_block_delta", "content_block_delta",
        "content_block_delta", "content_block_stop", "message_delta", "message_stop"]
    start, block_start, ping, d1, d2, d3, block_stop, msg_delta, stop, done = out
    assert [delta(c) for c in start] == [{"role": "assistant", "content": ""}]
    assert start[0]["object"] == "chat.completion.chunk" and start[0]["id"] == "chatcmpl-s"
    assert start[0]["model"] == "smart" and start[0]["created"] == 1764139200 and start[0]["usage"] is None
    assert block_start == [] and ping == [] and block_stop == [] and done == []
    assert [delta(c)["content"] for c in d1 + d2 + d3] == ["Hello", "! How can I help", " you today?"]
    assert msg_delta[0]["choices"][0]["finish_reason"] == "stop" and delta(msg_delta[0]) == {}
    assert stop == [{"id": "chatcmpl-s", "object": "chat.completion.chunk", "created": 1764139200, "model": "smart",
                     "choices": [], "usage": {"prompt_tokens": 1821, "completion_tokens": 12, "total_tokens": 1833,
                                              "prompt_tokens_details": {"cached_tokens": 1800}}}]
    assert tr.usage == Usage(input_tokens=1821, output_tokens=12, cached_tokens=1800)
    assert tr.error is None


def test_text_stream_without_usage_chunk():
    tr, out = run_stream("anthropic_stream_text.sse", include_usage=False)
    chunks = [c for group in out for c in group]
    assert all("usage" not in c for c in chunks)
    assert all(c["choices"] for c in chunks)
    assert tr.usage.output_tokens == 12


def test_tool_use_stream_indexes_tool_calls_from_zero():
    tr, out = run_stream("anthropic_stream_tool_use.sse")
    chunks = [c for group in out for c in group]
    text = "".join(delta(c).get("content") or "" for c in chunks if c["choices"])
    assert text == "I'll check the weather in both cities."
    calls: dict[int, dict] = {}
    for c in chunks:
        for call in (delta(c).get("tool_calls") or []) if c["choices"] else []:
            slot = calls.setdefault(call["index"], {"id": None, "name": None, "arguments": ""})
            if "id" in call:
                assert slot["id"] is None, "id is sent once, on the first piece"
                slot["id"], slot["name"] = call["id"], call["function"]["name"]
                assert call["type"] == "function"
            slot["arguments"] += call["function"]["arguments"]
    assert calls == {
        0: {"id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6", "name": "get_weather",
            "arguments": '{"location": "San Francisco, CA", "unit": "celsius"}'},
        1: {"id": "toolu_01CkqEbmQf1QX1uyhHNB8Wdo", "name": "get_weather", "arguments": '{"location": "Paris, France"}'},
    }
    # the empty first input_json_delta produces no chunk
    assert not any(c["choices"] and delta(c).get("tool_calls") == [{"index": 0, "function": {"arguments": ""}}]
                   for c in chunks)
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"] and c["choices"][0]["finish_reason"]] \
        == ["tool_calls"]
    assert tr.usage == Usage(input_tokens=472, output_tokens=106)


def test_error_event_stops_the_stream():
    tr, out = run_stream("anthropic_stream_error.sse")
    assert [e.event for e in events("anthropic_stream_error.sse")][-1] == "error"
    assert [delta(c) for c in out[3]] == [{"content": "Once upon a"}]
    assert out[4] == [] and out[5] == []
    assert tr.error == {"type": "overloaded_error", "message": "Overloaded"}
    err = tr.gateway_error()
    assert isinstance(err, Overloaded) and err.upstream_status == 529
    assert tr.usage.input_tokens == 14
    # nothing after an error
    assert tr.feed(SSEEvent("message_stop", b'{"type":"message_stop"}')) == []


def test_stream_cut_before_message_stop_is_an_error():
    tr = MessagesStreamToChat("m", "r", 1, True)
    for e in events("anthropic_stream_text.sse")[:4]:
        tr.feed(e)
    assert tr.done() == []
    assert tr.error is not None and tr.gateway_error().status == 502


def test_unknown_events_and_deltas_are_ignored():
    tr = MessagesStreamToChat("m", "r", 1, False)
    assert tr.feed(SSEEvent("future_event", b'{"type":"future_event"}')) == []
    assert tr.feed(SSEEvent("content_block_delta", b'{"type":"content_block_delta","index":0,'
                                                   b'"delta":{"type":"thinking_delta","thinking":"x"}}')) == []


def test_message_delta_with_cumulative_input_usage():
    tr = MessagesStreamToChat("m", "r", 1, False)
    tr.feed(SSEEvent("message_start", b'{"type":"message_start","message":{"usage":{"input_tokens":5,"output_tokens":1}}}'))
    tr.feed(SSEEvent("message_delta", b'{"type":"message_delta","delta":{"stop_reason":"max_tokens"},'
                                      b'"usage":{"input_tokens":5,"cache_read_input_tokens":100,"output_tokens":9}}'))
    assert tr.usage == Usage(input_tokens=105, output_tokens=9, cached_tokens=100)


# -- errors ----------------------------------------------------------------------------------------
def test_error_mapping_from_transcripts():
    err = anthropic_error_to_gateway(529, (TRANSCRIPTS / "anthropic_error_overloaded.json").read_bytes())
    assert isinstance(err, Overloaded) and err.upstream_status == 529
    err = anthropic_error_to_gateway(400, (TRANSCRIPTS / "anthropic_error_invalid_request.json").read_bytes())
    assert isinstance(err, BadRequest) and "max_tokens" in err.message and err.upstream_status == 400
    err = anthropic_error_to_gateway(401, (TRANSCRIPTS / "anthropic_error_authentication.json").read_bytes())
    # the gateway's upstream key is wrong: not the caller's fault, and no upstream text shown
    assert isinstance(err, UpstreamError) and err.status == 502 and "x-api-key" not in err.message


@pytest.mark.parametrize(("status", "cls", "code"), [
    (404, NotFound, "model_not_found"), (413, PayloadTooLarge, "request_too_large"),
    (429, RateLimited, "rate_limit_exceeded"), (500, UpstreamError, "upstream_error"),
    (503, Overloaded, "overloaded"), (504, UpstreamTimeout, "upstream_timeout"),
])
def test_error_mapping_by_status(status, cls, code):
    err = anthropic_error_to_gateway(status, b"<html>bad gateway</html>")
    assert isinstance(err, cls) and err.code == code and err.upstream_status == status
    assert "html" not in err.message
