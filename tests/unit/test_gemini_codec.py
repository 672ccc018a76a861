"""The Gemini wire with literal inputs: the decoder (SSE events and whole bodies), usage, finish reasons,
error mapping, the tool call id that carries a thought signature, and the request translators'
refusals (a 400 naming the field, never a silent drop)."""

from __future__ import annotations

import base64

import orjson
import pytest

from gateway.codecs import Malformed
from gateway.codecs.gemini import GeminiDecoder, call_id, chunk_text, gemini_usage, signature_of
from gateway.errors import BadRequest, Overloaded, RateLimited, UpstreamError
from gateway.events import End, Error, Finish, PartEnd, Start, TextDelta, ToolCallDelta, UsageReport
from gateway.translate.sse import SSEEvent, SSEParser
from gateway.translate.to_gemini import chat_to_gemini_request, messages_to_gemini_request
from gateway.translate.upstream_errors import gemini_error_to_gateway, gemini_stream_error

# A streamed answer as generativelanguage.googleapis.com writes it (CRLF between events).
STREAM = (b'data: {"candidates": [{"content": {"parts": [{"text": "Hel"}],"role": "model"},"index": 0}],'
          b'"usageMetadata": {"promptTokenCount": 7,"totalTokenCount": 7},"modelVersion": "gemini-2.5-flash",'
          b'"responseId": "r1"}\r\n\r\n'
          b'data: {"candidates": [{"content": {"parts": [{"text": "lo"}],"role": "model"},"finishReason": "STOP",'
          b'"index": 0}],"usageMetadata": {"promptTokenCount": 7,"candidatesTokenCount": 2,'
          b'"thoughtsTokenCount": 5,"cachedContentTokenCount": 4,"totalTokenCount": 14},'
          b'"modelVersion": "gemini-2.5-flash","responseId": "r1"}\r\n\r\n')


def decode(raw: bytes) -> list:
    dec = GeminiDecoder()
    events = [ev for e in SSEParser().feed(raw) for ev in dec.feed(e)]
    return events + dec.end()


def test_a_stream_decodes_into_text_usage_finish_and_end():
    events = decode(STREAM)
    assert events[0] == Start("r1", "gemini-2.5-flash")
    assert [e.text for e in events if type(e) is TextDelta] == ["Hel", "lo"]
    reports = [e for e in events if type(e) is UsageReport]
    assert [r.complete for r in reports] == [False, True]
    u = reports[-1].usage
    assert (u.input_tokens, u.output_tokens, u.cached_tokens) == (7, 7, 4)
    assert [type(e) for e in events[-3:]] == [UsageReport, Finish, End] and events[-2].reason == "stop"
    assert PartEnd(0) in events


def test_a_stream_cut_before_its_finish_reason_is_an_error():
    first = STREAM.split(b"\r\n\r\n")[0] + b"\r\n\r\n"
    events = decode(first)
    assert type(events[-1]) is Error and events[-1].code == "upstream_stream_error"


def test_an_error_inside_the_stream():
    dec = GeminiDecoder()
    out = dec.feed(SSEEvent(None, b'{"error": {"code": 429, "message": "slow down", "status": "RESOURCE_EXHAUSTED"}}'))
    assert type(out[0]) is Error and out[0].code == "rate_limit_exceeded" and dec.end() == []


@pytest.mark.parametrize("data", [b"not json", b"[1, 2]", b'{"candidates": [{"content": {"parts": [{"functionCall": {}}]}}]}',
                                  b'{"candidates": "x"}'])
def test_unreadable_events_raise_for_the_pipe_to_blame_the_upstream(data):
    with pytest.raises((Malformed, KeyError, AttributeError, TypeError)):
        GeminiDecoder().feed(SSEEvent(None, data))


def test_function_calls_finish_as_tool_calls_with_ids_and_signatures():
    sig = base64.b64encode(b"\xfb\xff signature").decode()
    resp = {"candidates": [{"index": 0, "finishReason": "STOP", "content": {"role": "model", "parts": [
        {"text": "thinking", "thought": True},
        {"functionCall": {"name": "f", "args": {"a": 1}}, "thoughtSignature": sig},
        {"functionCall": {"name": "g", "id": "upstream-id"}}]}}],
        "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 4, "toolUsePromptTokenCount": 2}}
    events = GeminiDecoder.whole(resp, orjson.dumps(resp))
    calls = [e for e in events if type(e) is ToolCallDelta]
    assert [(c.index, c.name, c.arguments) for c in calls] == [(0, "f", '{"a":1}'), (1, "g", "{}")]
    assert not [e for e in events if type(e) is TextDelta], "a thought summary is not text"
    assert calls[1].id == "upstream-id"
    base, back = signature_of(calls[0].id)
    assert base.startswith("call_") and base64.urlsafe_b64decode(back) == b"\xfb\xff signature"
    assert all(c in "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-" for c in calls[0].id)
    assert [e.reason for e in events if type(e) is Finish] == ["tool_calls"]
    usage = next(e for e in events if type(e) is UsageReport)
    assert usage.complete and (usage.usage.input_tokens, usage.usage.output_tokens) == (5, 4)


@pytest.mark.parametrize(("reason", "mapped"), [("MAX_TOKENS", "length"), ("SAFETY", "content_filter"),
                                                ("RECITATION", "content_filter"), ("PROHIBITED_CONTENT", "content_filter"),
                                                ("MALFORMED_FUNCTION_CALL", "stop"), ("OTHER", "stop")])
def test_finish_reasons(reason, mapped):
    resp = {"candidates": [{"index": 0, "finishReason": reason, "content": {"parts": [{"text": "x"}]}}]}
    assert [e.reason for e in GeminiDecoder.whole(resp, b"") if type(e) is Finish] == [mapped]


def test_a_blocked_prompt_finishes_with_content_filter():
    resp = {"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"}, "usageMetadata": {"promptTokenCount": 4}}
    assert [e.reason for e in GeminiDecoder.whole(resp, b"") if type(e) is Finish] == ["content_filter"]


def test_usage_and_chunk_text():
    u = gemini_usage({"promptTokenCount": 100, "cachedContentTokenCount": 60, "candidatesTokenCount": 10,
                      "thoughtsTokenCount": 20, "toolUsePromptTokenCount": 5})
    assert (u.input_tokens, u.output_tokens, u.cached_tokens) == (105, 30, 60)
    assert chunk_text(STREAM.split(b"\r\n\r\n")[0][6:]) == "Hel" and chunk_text(b"{") == ""


def test_call_ids_without_or_with_an_unreadable_signature():
    assert signature_of(call_id(None, None))[1] is None
    assert signature_of("call_abc")[1] is None and signature_of(5) == ("", None)
    assert call_id("id-1", "@@not base64@@").startswith("id-1")


# -- errors --------------------------------------------------------------------------------------------
def body(code: int, status: str, message: str = "m", details: list | None = None) -> bytes:
    return orjson.dumps({"error": {"code": code, "message": message, "status": status, "details": details or []}})


def test_error_mapping():
    bad = gemini_error_to_gateway(400, body(400, "INVALID_ARGUMENT", "Invalid JSON payload"))
    assert isinstance(bad, BadRequest) and bad.message == "Invalid JSON payload"
    key = gemini_error_to_gateway(400, body(400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.",
                                            [{"@type": "type.googleapis.com/google.rpc.ErrorInfo",
                                              "reason": "API_KEY_INVALID"}]))
    assert isinstance(key, UpstreamError) and key.code == "upstream_auth_failed" and "API key" not in key.message
    limited = gemini_error_to_gateway(429, body(429, "RESOURCE_EXHAUSTED", details=[
        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "0.2s"}]))
    assert isinstance(limited, RateLimited) and limited.retry_after == "1"
    assert isinstance(gemini_error_to_gateway(503, body(503, "UNAVAILABLE")), Overloaded)
    assert gemini_error_to_gateway(500, b"<html>oops</html>").status == 502
    assert gemini_error_to_gateway(500, b'[{"error": {"code": 500, "status": "INTERNAL"}}]').upstream_status == 500
    assert gemini_stream_error({"status": "PERMISSION_DENIED"}).code == "upstream_auth_failed"


# -- request translation: refusals name the field ----------------------------------------------------
@pytest.mark.parametrize(("body", "param"), [
    ({"messages": [{"role": "user", "content": "x"}], "n": 2}, "n"),
    ({"messages": [{"role": "system", "content": "only a system prompt"}, {"role": "user", "content": ""}]}, "messages"),
    ({"messages": [{"role": "user", "content": "x"}], "logprobs": True}, "logprobs"),
    ({"messages": [{"role": "tool", "tool_call_id": "nope", "content": "x"}]}, "messages[0].tool_call_id"),
    ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "http://x/y.png"}}]}]},
     "messages[0].content[0]"),
    ({"messages": [{"role": "system", "content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,AA"}}]}]},
     "messages[0].content[0]"),
    ({"messages": [{"role": "user", "content": "x"}], "response_format": {"type": "xml"}}, "response_format"),
    ({"messages": [{"role": "user", "content": "x"}], "reasoning_effort": ["high"]}, "reasoning_effort"),
    ({"messages": [{"role": "user", "content": "x"}], "seed": "7"}, "seed"),
    ({"messages": [{"role": "assistant", "tool_calls": [{"id": "a", "type": "function",
                                                           "function": {"name": "f", "arguments": "[1]"}}]}]},
     "messages[0].tool_calls[0]"),
])
def test_chat_requests_that_cannot_be_sent_are_refused(body, param):
    with pytest.raises(BadRequest) as exc:
        chat_to_gemini_request(body)
    assert exc.value.param == param


def test_chat_request_mapping_of_settings():
    out = chat_to_gemini_request({"messages": [{"role": "developer", "content": "sys"}, {"role": "user", "content": "x"}],
                                  "max_completion_tokens": 9, "seed": 3, "presence_penalty": 0.5,
                                  "response_format": {"type": "json_schema", "json_schema": {"name": "s", "schema": {
                                      "type": "object"}}}, "reasoning_effort": "low",
                                  "tools": [{"type": "function", "function": {"name": "noargs"}}], "tool_choice": "none"})
    assert out["systemInstruction"] == {"parts": [{"text": "sys"}]}
    assert out["generationConfig"] == {"maxOutputTokens": 9, "seed": 3, "presencePenalty": 0.5,
                                       "responseMimeType": "application/json", "responseJsonSchema": {"type": "object"},
                                       "thinkingConfig": {"thinkingBudget": 1024}}
    assert out["tools"] == [{"functionDeclarations": [{"name": "noargs"}]}]
    assert out["toolConfig"] == {"functionCallingConfig": {"mode": "NONE"}}


@pytest.mark.parametrize(("blocks", "param"), [
    ([{"type": "image", "source": {"type": "url", "url": "https://x/y.png"}}], "messages.0.content.0"),
    ([{"type": "tool_result", "tool_use_id": "unknown", "content": "x"}], "messages.0.content.0.tool_use_id"),
    ([{"type": "tool_result", "tool_use_id": "t", "content": [{"type": "image", "source": {}}]}], "messages.0.content.0"),
    ([{"type": "server_tool_use", "id": "s", "name": "web_search", "input": {}}], "messages.0.content.0"),
])
def test_messages_requests_that_cannot_be_sent_are_refused(blocks, param):
    names = [{"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "f", "input": {}}]}] \
        if "tool_use_id" in str(blocks) and "unknown" not in str(blocks) else []
    body = {"max_tokens": 5, "messages": [{"role": "user", "content": blocks}]}
    if names:
        body["messages"] = [{"role": "user", "content": "q"}, *names, {"role": "user", "content": blocks}]
        param = param.replace("messages.0", "messages.2")
    with pytest.raises(BadRequest) as exc:
        messages_to_gemini_request(body)
    assert exc.value.param == param


def test_messages_request_mapping():
    out = messages_to_gemini_request({
        "max_tokens": 20, "system": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}], "top_k": 5,
        "thinking": {"type": "enabled", "budget_tokens": 2048}, "stop_sequences": ["X"],
        "messages": [{"role": "user", "content": [
            {"type": "text", "text": "see"},
            {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "/9j/"}},
            {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBE"}}]},
            {"role": "assistant", "content": [{"type": "thinking", "thinking": "hmm", "signature": "s"},
                                              {"type": "text", "text": "ok"}]}]})
    assert out["systemInstruction"] == {"parts": [{"text": "a"}, {"text": "b"}]}
    assert out["contents"][0]["parts"][1:] == [{"inlineData": {"mimeType": "image/jpeg", "data": "/9j/"}},
                                               {"inlineData": {"mimeType": "application/pdf", "data": "JVBE"}}]
    assert out["contents"][1] == {"role": "model", "parts": [{"text": "ok"}]}, "Anthropic thinking is dropped"
    assert out["generationConfig"] == {"maxOutputTokens": 20, "topK": 5, "stopSequences": ["X"],
                                       "thinkingConfig": {"thinkingBudget": 2048}}


# -- provider URLs and headers ----------------------------------------------------------------------
def test_gemini_and_vertex_endpoints(tmp_path, monkeypatch):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    from gateway.providers.base import Timeouts
    from gateway.providers.gemini import GeminiProvider
    from gateway.providers.transport import Upstreams
    from gateway.providers.vertex import VertexOptions, VertexProvider

    timeouts = Timeouts(1, 1, 1, 1)
    monkeypatch.setenv("GKEY", "AIzaSy-0123456789abcdefghij")
    g = GeminiProvider("g", GeminiProvider.Options(type="gemini", api_key_env="GKEY"), file="x.toml",
                       server_timeouts=timeouts, transport=Upstreams())
    assert g.endpoint("generate_content", "models/gemini-2.5-flash", True) == (
        "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse")
    assert g.auth_headers() == {"x-goog-api-key": "AIzaSy-0123456789abcdefghij"}
    pem = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    (tmp_path / "sa.json").write_bytes(orjson.dumps({
        "type": "service_account", "project_id": "proj-1", "private_key_id": "k", "private_key": pem.decode(),
        "client_email": "a@proj-1.iam.gserviceaccount.com", "token_uri": "https://oauth2.googleapis.com/token"}))
    for location, host in (("europe-west4", "europe-west4-aiplatform.googleapis.com"), ("global", "aiplatform.googleapis.com")):
        v = VertexProvider("v", VertexOptions(type="vertex", location=location, credentials_file="sa.json"),
                           file=str(tmp_path / "gateway.toml"), server_timeouts=timeouts, transport=Upstreams())
        assert v.endpoint("generate_content", "gemini-2.5-pro", False) == (
            f"https://{host}/v1/projects/proj-1/locations/{location}/publishers/google/models/gemini-2.5-pro:generateContent")
        assert v.auth_headers() == {}
