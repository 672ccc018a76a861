"""Pass-through adapters with an output scanner: an answer the scanner left alone goes out as the
upstream's own bytes; one it rewrote is re-encoded with the new text."""

from __future__ import annotations

import orjson
import pytest

from gateway import reasons
from gateway.adapters.chat_openai import ChatOpenAI
from gateway.adapters.messages_anthropic import MessagesAnthropic
from gateway.adapters.responses_openai import ResponsesOpenAI
from gateway.config.validate import SourcedRule
from gateway.context import RequestContext
from gateway.guardrails.engine import Guardrails

RULES = Guardrails.compile([
    SourcedRule("test.toml", "guardrails[0]", {"id": "pii", "type": "pii", "entities": ["EMAIL_ADDRESS"],
                                                "direction": "output"}),
    SourcedRule("test.toml", "guardrails[1]", {"id": "ips", "type": "pii", "entities": ["IP_ADDRESS"],
                                                "action": "flag", "direction": "output"}),
])


def _chat(text: str, args: str | None = None) -> dict:
    msg: dict = {"role": "assistant", "content": text}
    if args is not None:
        msg["tool_calls"] = [{"id": "c1", "type": "function", "function": {"name": "send", "arguments": args}}]
    return {"id": "x", "object": "chat.completion", "choices": [{"index": 0, "message": msg, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 5, "total_tokens": 8}}


def _responses(text: str, args: str | None = None) -> dict:
    output: list = [{"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": text}]}]
    if args is not None:
        output.append({"type": "function_call", "name": "send", "call_id": "c1", "arguments": args})
    return {"id": "r", "object": "response", "output": output, "usage": {"input_tokens": 3, "output_tokens": 5}}


def _messages(text: str, args: str | None = None) -> dict:
    content: list = [{"type": "text", "text": text}]
    if args is not None:
        content.append({"type": "tool_use", "id": "t1", "name": "send", "input": orjson.loads(args)})
    return {"id": "m", "type": "message", "role": "assistant", "content": content,
            "usage": {"input_tokens": 3, "output_tokens": 5}}


CASES = [(ChatOpenAI(), _chat, "chat"), (ResponsesOpenAI(), _responses, "responses"),
         (MessagesAnthropic(), _messages, "messages")]
IDS = [c[2] for c in CASES]


def _respond(adapter, body: dict, api: str) -> tuple[bytes, bytes, RequestContext]:
    # Spacing orjson would not write: a re-encoded answer can be told from the upstream's bytes.
    raw = orjson.dumps(body, option=orjson.OPT_INDENT_2)
    ctx = RequestContext("req", api, "openai", None, 0.0, "trace", "span", body={})
    scanner = RULES.for_request(None, None).output_scanner(ctx)
    out = adapter.response(ctx, raw, scanner)
    scanner.close()
    assert ctx.usage.input_tokens == 3 and ctx.usage.output_tokens == 5
    return raw, out, ctx


@pytest.mark.parametrize(("adapter", "make", "api"), CASES, ids=IDS)
def test_an_untouched_answer_is_the_upstream_bytes(adapter, make, api) -> None:
    raw, out, ctx = _respond(adapter, make("Hello there, nothing to hide.", '{"to": "the team"}'), api)
    assert out is raw
    assert ctx.decisions == []


@pytest.mark.parametrize(("adapter", "make", "api"), CASES, ids=IDS)
def test_a_flagged_answer_is_recorded_and_sent_as_it_came(adapter, make, api) -> None:
    raw, out, ctx = _respond(adapter, make("The host is 10.20.30.40."), api)
    assert out is raw
    assert [(d.policy, d.action, d.reason) for d in ctx.decisions] == [("ips", "flag", reasons.PII_DETECTED)]


@pytest.mark.parametrize(("adapter", "make", "api"), CASES, ids=IDS)
def test_a_redacted_answer_is_re_encoded(adapter, make, api) -> None:
    raw, out, _ = _respond(adapter, make("Write to jane@example.com today."), api)
    assert out != raw and b"jane@example.com" not in out
    assert orjson.loads(out) == make("Write to <EMAIL_ADDRESS> today.")


@pytest.mark.parametrize(("adapter", "make", "api"), CASES, ids=IDS)
def test_redacted_tool_arguments_alone_re_encode_the_answer(adapter, make, api) -> None:
    raw, out, _ = _respond(adapter, make("Sending it now.", '{"to":"jane@example.com"}'), api)
    assert b"jane@example.com" not in out
    assert orjson.loads(out) == make("Sending it now.", '{"to":"<EMAIL_ADDRESS>"}')
