"""Faithful Anthropic pass-through: /v1/messages to an Anthropic target forwards the blocks the gateway
does not need to understand (thinking with its signature, citations, server tool blocks, cache control)
unchanged, while output guardrails still scan the text they can read. Signed thinking text is scanned
but never rewritten: a finding an action would rewrite refuses the answer. count_tokens passes through
with auth, limits and input guardrails, and costs nothing against budgets. Official anthropic SDK over
real sockets, to a fake upstream replaying Anthropic's wire."""

from __future__ import annotations

import anthropic
import httpx
import openai
import orjson
import pytest

from tests.support.fake_upstream import Reply, sse_events
from tests.support.gateway import TEST_KEY

SIG = "EqQBCkgIARABGAIiQL2nS8Zr2p0f4mXbXU9k0v3oQ1zq6yJ9m5WZQ2f0g2J8oR9JmFhzS0Jk7v9q5Vb6M1dC1xP3rT0u"
GUARD = {"guardrails.toml": """
[[guardrails]]
id = "contact-pii"
type = "pii"
entities = ["EMAIL_ADDRESS", "US_SSN"]
action = "redact"
direction = "both"
"""}
BUDGET = {"budgets.toml": """
[[budgets]]
id = "tiny"
scope = "key"
usd = 0.000001
window = "day"
models = ["claude"]
"""}


def config(url: str) -> str:
    return f"""
[providers.claude]
type = "anthropic"
base_url = "{url}/v1"
api_key_env = "TEST_UPSTREAM_KEY"

[models.claude]
targets = [{{ provider = "claude", model = "claude-sonnet-4-5" }}]
"""


def message(thinking: str, text: str) -> dict:
    return {
        "id": "msg_01", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
        "content": [
            {"type": "thinking", "thinking": thinking, "signature": SIG},
            {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix/LafPsn4aDFIT2Xlxh0L5L8rLVyIwxtE3rAFBa8cr3qpP"},
            {"type": "server_tool_use", "id": "srvtoolu_01", "name": "web_search", "input": {"query": "paris weather"}},
            {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_01", "content": [
                {"type": "web_search_result", "url": "https://weather.example/paris", "title": "Paris",
                 "encrypted_content": "EqgfCioIARgBIiQ3YTA", "page_age": "1 hour"}]},
            {"type": "text", "text": text, "citations": [
                {"type": "web_search_result_location", "url": "https://weather.example/paris", "title": "Paris",
                 "encrypted_index": "Eo8BCioIAhgBIiQyYjQ", "cited_text": "Sunny, 21C"}]},
        ],
        "stop_reason": "end_turn", "stop_sequence": None,
        "usage": {"input_tokens": 50, "output_tokens": 80, "cache_creation_input_tokens": 0,
                  "cache_read_input_tokens": 0, "server_tool_use": {"web_search_requests": 1}},
    }


def stream(thinking_pieces: list[str], text_pieces: list[str]) -> bytes:
    ev: list[tuple[str, dict]] = [("message_start", {"type": "message_start", "message": {
        **message("", ""), "content": [], "stop_reason": None, "usage": {"input_tokens": 50, "output_tokens": 1}}})]
    ev.append(("content_block_start", {"type": "content_block_start", "index": 0,
                                       "content_block": {"type": "thinking", "thinking": "", "signature": ""}}))
    for p in thinking_pieces:
        ev.append(("content_block_delta", {"type": "content_block_delta", "index": 0,
                                           "delta": {"type": "thinking_delta", "thinking": p}}))
    ev.append(("content_block_delta", {"type": "content_block_delta", "index": 0,
                                       "delta": {"type": "signature_delta", "signature": SIG}}))
    ev.append(("content_block_stop", {"type": "content_block_stop", "index": 0}))
    ev.append(("content_block_start", {"type": "content_block_start", "index": 1,
                                       "content_block": {"type": "text", "text": ""}}))
    ev.append(("content_block_delta", {"type": "content_block_delta", "index": 1, "delta": {
        "type": "citations_delta", "citation": {"type": "char_location", "cited_text": "x", "document_index": 0,
                                                "document_title": None, "start_char_index": 0, "end_char_index": 1}}}))
    for p in text_pieces:
        ev.append(("content_block_delta", {"type": "content_block_delta", "index": 1,
                                           "delta": {"type": "text_delta", "text": p}}))
    ev.append(("content_block_stop", {"type": "content_block_stop", "index": 1}))
    ev.append(("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                                 "usage": {"output_tokens": 80}}))
    ev.append(("message_stop", {"type": "message_stop"}))
    return b"".join(f"event: {n}\n".encode() + b"data: " + orjson.dumps(d) + b"\n\n" for n, d in ev)


@pytest.fixture
def gw(make_gateway, upstream):
    return make_gateway(extra=config(upstream.url), policies=GUARD)


def client(gw) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gw.url, api_key=TEST_KEY, max_retries=0)


def post(gw, body: dict) -> httpx.Response:
    return httpx.post(gw.v1 + "/messages", json=body, headers={"x-api-key": TEST_KEY}, timeout=10)


BODY = {"model": "claude", "max_tokens": 100, "messages": [{"role": "user", "content": "weather?"}]}


def test_whole_answer_keeps_every_block_byte_for_byte_and_redacts_text(gw, upstream):
    upstream.push(Reply(body=orjson.dumps(message("The user asks about weather.", "Sunny. Mail eve@example.com"))))
    got = post(gw, BODY).json()
    want = message("The user asks about weather.", "Sunny. Mail eve@example.com")
    assert got["content"][:4] == want["content"][:4], "thinking+signature, redacted_thinking, server tool blocks"
    assert got["content"][4]["citations"] == want["content"][4]["citations"]
    assert "eve@example.com" not in got["content"][4]["text"] and got["content"][4]["text"].startswith("Sunny. Mail ")
    assert got["usage"]["server_tool_use"] == {"web_search_requests": 1}


def test_whole_answer_without_findings_is_the_upstreams_bytes(gw, upstream):
    raw = orjson.dumps(message("Plain thoughts.", "Sunny."))
    upstream.push(Reply(body=raw))
    assert post(gw, BODY).content == raw


def test_stream_keeps_thinking_signature_and_citations_and_redacts_text(gw, upstream):
    thinking = ["The user ", "asks about ", "the weather in Paris."]
    upstream.push(Reply(sse=stream(thinking, ["Sunny, write to ", "eve@exa", "mple.com", " now"])))
    with client(gw).messages.stream(**BODY) as s:
        final = s.get_final_message()
    assert final.content[0].type == "thinking" and final.content[0].thinking == "".join(thinking)
    assert final.content[0].signature == SIG
    text = final.content[1]
    assert text.citations and text.citations[0].cited_text == "x"
    assert "eve@example.com" not in text.text and text.text.startswith("Sunny, write to ") and text.text.endswith(" now")


def test_stream_without_output_guardrails_is_relayed_byte_for_byte(make_gateway, upstream):
    # With output guardrails the scanner may hold text back and release it in other pieces (the text,
    # thinking included, is the same: test above); without them every event is the upstream's bytes.
    gw = make_gateway(extra=config(upstream.url))
    raw = stream(["Plain ", "thoughts."], ["Sunny", "."])
    upstream.push(Reply(sse=raw))
    with httpx.stream("POST", gw.v1 + "/messages", json={**BODY, "stream": True}, headers={"x-api-key": TEST_KEY}) as r:
        got = r.read()
    assert sse_events(got) == sse_events(raw)


@pytest.mark.parametrize("streamed", [False, True])
def test_pii_in_signed_thinking_refuses_the_answer_and_never_leaks(gw, upstream, streamed):
    pieces = ["The SSN is 536-", "22-8841, so ", "answer."]
    if streamed:
        upstream.push(Reply(sse=stream(pieces, ["Done."])))
        with httpx.stream("POST", gw.v1 + "/messages", json={**BODY, "stream": True},
                          headers={"x-api-key": TEST_KEY}) as r:
            got = r.read()
        assert b"event: error" in got and b"signed thinking block" in got
    else:
        upstream.push(Reply(body=orjson.dumps(message("".join(pieces), "Done."))))
        r = post(gw, BODY)
        assert r.status_code == 400 and r.json()["type"] == "error"
        got = r.content
    assert b"536-22-8841" not in got and b"22-8841" not in got and SIG.encode() not in got


def test_thinking_never_reaches_a_chat_caller_as_content(make_gateway, upstream):
    gw = make_gateway(extra=config(upstream.url))
    upstream.push(Reply(body=orjson.dumps(message("secret musings", "Sunny."))))
    out = openai.OpenAI(base_url=gw.v1, api_key=TEST_KEY, max_retries=0).chat.completions.create(
        model="claude", messages=[{"role": "user", "content": "hi"}])
    assert out.choices[0].message.content == "Sunny."
    upstream.push(Reply(sse=stream(["secret ", "musings"], ["Sun", "ny."])))
    chunks = openai.OpenAI(base_url=gw.v1, api_key=TEST_KEY, max_retries=0).chat.completions.create(
        model="claude", messages=[{"role": "user", "content": "hi"}], stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Sunny."


def test_count_tokens_passes_through_with_input_guardrails_and_costs_nothing(make_gateway, upstream):
    gw = make_gateway(extra=config(upstream.url), policies={**GUARD, **BUDGET})
    c = client(gw)
    for _ in range(3):  # the budget (a millionth of a dollar) would refuse any priced call after the first
        got = c.messages.count_tokens(model="claude", messages=[{"role": "user", "content": "mail bob@example.com"}])
        assert got.input_tokens == 42
    seen = upstream.requests[-1]
    assert seen.path == "/v1/messages/count_tokens" and seen.body["model"] == "claude-sonnet-4-5"
    assert "bob@example.com" not in orjson.dumps(seen.body).decode()
    with pytest.raises(anthropic.RateLimitError):  # a priced call is refused by the same budget
        c.messages.create(**BODY)
        c.messages.create(**BODY)


@pytest.mark.parametrize("headers,status", [({}, 401), ({"x-api-key": "sk-nope-0123456789"}, 401)])
def test_count_tokens_needs_a_key(gw, upstream, headers, status):
    r = httpx.post(gw.v1 + "/messages/count_tokens", json={"model": "claude", "messages": BODY["messages"]},
                   headers=headers)
    assert r.status_code == status and r.json()["type"] == "error"


@pytest.mark.parametrize("body,param", [
    ({"model": "claude"}, "messages"),
    ({"model": "claude", "messages": BODY["messages"], "stream": True}, "stream"),
])
def test_count_tokens_bad_input(gw, upstream, body, param):
    r = httpx.post(gw.v1 + "/messages/count_tokens", json=body, headers={"x-api-key": TEST_KEY})
    assert r.status_code == 400 and r.json()["type"] == "error" and param in r.text


def test_an_answer_with_signed_thinking_is_never_served_from_the_cache(make_gateway, upstream):
    """A cache hit is rebuilt from events and could not carry a thinking block's signature (nor must the
    thinking come back as answer text): such an answer is not kept, the next request goes upstream."""
    cache = {"cache.toml": '[[cache]]\nid = "all"\nttl_s = 60\n'}
    gw = make_gateway(extra=config(upstream.url), policies=cache)
    body = {**BODY, "temperature": 0}
    for _ in range(2):
        upstream.push(Reply(body=orjson.dumps(message("private musings", "Sunny."))))
    n = len(upstream.requests)
    for _ in range(2):
        got = post(gw, body).json()
        assert got["content"][0] == {"type": "thinking", "thinking": "private musings", "signature": SIG}
        assert got["content"][-1]["text"] == "Sunny."
    assert len(upstream.requests) == n + 2
