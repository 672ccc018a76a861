"""A value a caller's JSON parser decodes is the value guardrails must see: tool-call arguments are JSON
text, so `bob\\u0040example.com` *is* `bob@example.com` to every reader. Driven with the official openai
SDK over real sockets to the fake OpenAI upstream, on input (assistant tool calls sent upstream) and on
output (streamed and whole), the escapes at every chunk boundary."""

from __future__ import annotations

import json

import openai
import orjson
import pytest

from tests.support.fake_upstream import Reply
from tests.support.gateway import TEST_KEY

POLICIES = {"guardrails.toml": """
[[guardrails]]
id = "contact-pii"
type = "pii"
entities = ["EMAIL_ADDRESS", "US_SSN"]
action = "redact"
direction = "both"
"""}
EMAIL, SSN = "bob@example.com", "536-22-8841"
# Argument texts whose decoded values hold the email or the SSN, written with JSON escapes.
ESCAPED = [
    r'{"to": "bob\u0040example.com"}',
    r'{"to": "\u0062\u006f\u0062\u0040\u0065\u0078\u0061\u006d\u0070\u006c\u0065\u002e\u0063\u006f\u006d"}',
    r'{"to": "bob\u0040EXAMPLE\u002ecom"}',
    r'{"ssn": "536\u002d22\u002d8841"}',
    r'{"to": "x\\", "cc": "bob\u0040example.com"}',
    r'{"to": "hi\nbob@example.com", "ssn": "\t536-22-8841"}',  # a replacement must not eat an escape's letter
]


def _leaked(args: str) -> list[str]:
    decoded = json.dumps(json.loads(args), ensure_ascii=False).lower()
    return [v for v in (EMAIL, SSN) if v in decoded]


def _tool_stream(pieces: list[str]) -> bytes:
    base = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m"}
    first = {"index": 0, "id": "call_1", "type": "function", "function": {"name": "send", "arguments": ""}}
    events = [{**base, "choices": [{"index": 0, "delta": {"role": "assistant", "tool_calls": [first]}}]}]
    events += [{**base, "choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": p}}]}}]}
               for p in pieces]
    events.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]})
    events.append({**base, "choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12}})
    return b"".join(b"data: " + orjson.dumps(e) + b"\n\n" for e in events) + b"data: [DONE]\n\n"


def _tool_whole(args: str) -> bytes:
    call = {"id": "call_1", "type": "function", "function": {"name": "send", "arguments": args}}
    return orjson.dumps({"id": "c1", "object": "chat.completion", "created": 1, "model": "m", "choices": [
        {"index": 0, "message": {"role": "assistant", "content": None, "tool_calls": [call]}, "finish_reason": "tool_calls"}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12}})


@pytest.fixture
def client(make_gateway):
    gw = make_gateway(policies=POLICIES)
    return openai.OpenAI(base_url=gw.v1, api_key=TEST_KEY, max_retries=0)


def test_escaped_values_in_tool_arguments_sent_upstream_are_redacted(client, upstream):
    for args in ESCAPED:
        msgs = [{"role": "user", "content": "go"},
                {"role": "assistant", "content": None,
                 "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "send", "arguments": args}}]},
                {"role": "tool", "tool_call_id": "call_1", "content": "sent"}]
        client.chat.completions.create(model="gpt", messages=msgs)
        sent = upstream.requests[-1].body["messages"][1]["tool_calls"][0]["function"]["arguments"]
        assert _leaked(sent) == [], f"{args} reached the upstream as {sent}"
        json.loads(sent)  # still JSON


def test_escaped_values_in_whole_tool_arguments_are_redacted(client, upstream):
    for args in ESCAPED:
        upstream.push(Reply(body=_tool_whole(args)))
        got = client.chat.completions.create(model="gpt", messages=[{"role": "user", "content": "go"}])
        out = got.choices[0].message.tool_calls[0].function.arguments
        assert _leaked(out) == [], f"{args} reached the caller as {out}"


@pytest.mark.parametrize("args", ESCAPED)
def test_escaped_values_in_streamed_tool_arguments_are_redacted_at_every_cut(client, upstream, args):
    cuts = [[args[:i], args[i:]] for i in range(1, len(args))] + [list(args)]
    for pieces in cuts:
        upstream.push(Reply(sse=_tool_stream(pieces)))
        stream = client.chat.completions.create(model="gpt", messages=[{"role": "user", "content": "go"}], stream=True)
        out = "".join(c.choices[0].delta.tool_calls[0].function.arguments or ""
                      for c in stream if c.choices and c.choices[0].delta.tool_calls)
        assert _leaked(out) == [], f"{pieces} reached the caller as {out}"
        json.loads(out)


def test_escaped_values_in_responses_function_call_arguments_are_redacted(client, upstream):
    from tests.support.fake_upstream import transcript
    for args in ESCAPED:
        body = orjson.loads(transcript("openai_responses_text.json"))
        body["output"] = [{"id": "fc_1", "type": "function_call", "status": "completed", "call_id": "call_1",
                           "name": "send", "arguments": args}]
        upstream.push(Reply(body=orjson.dumps(body)))
        got = client.responses.create(model="gpt", input="go")
        out = got.output[0].arguments
        assert _leaked(out) == [], f"{args} reached the caller as {out}"
