"""A 2xx answer that fails before its first content is retried on the next target, over real sockets.

Upstream A answers 200 and then fails before any text (an error event, a cut connection, a body that
ends early, a 200 with no answer in it); the client, through the openai and anthropic SDKs, gets B's
answer intact, streamed and not, and never a byte of A's. Once content has started nothing is
retried: the error reaches the caller in its own stream format.
"""

from __future__ import annotations

import anthropic
import httpx
import openai
import pytest

from tests.support.fake_upstream import FakeUpstream, Reply, sse_events, transcript
from tests.support.gateway import TEST_KEY

MSGS = [{"role": "user", "content": "Say hello"}]
TEXT = "Hello! How can I help you today?"
CHAT_SSE = transcript("openai_stream_text.sse")
MSG_SSE = transcript("anthropic_stream_text.sse")
# A's first event is the transcript's first (role, no content) under another id, so a byte of A's
# in what the client gets would show.
A_ROLE = sse_events(CHAT_SSE)[0].replace(b"chatcmpl-Ch4KZ8cF1q2HwLmP9x3vT0bQeR7sN", b"chatcmpl-FROM-A")
A_MSG_START = sse_events(MSG_SSE)[0].replace(b"msg_01XFDUDYJgAACzvnptvVoYEL", b"msg_FROM_A")
OPENAI_ERROR = b'data: {"error": {"message": "the model is overloaded", "type": "server_error"}}\n\n'
ANTHROPIC_ERROR = (b'event: error\ndata: {"type": "error", "error": {"type": "overloaded_error", '
                   b'"message": "Overloaded"}}\n\n')


GUARD = {"guard.toml": """
[[guardrails]]
id = "pii"
type = "pii"
entities = ["EMAIL_ADDRESS"]
action = "redact"
direction = "output"
"""}


@pytest.fixture(params=["plain", "guarded"])
def pair(request, servers, make_gateway):
    """Two upstreams behind one alias, A first; `guarded`: output guardrails read every text event
    (the full path, where text may be held before the client sees it)."""
    a, b = FakeUpstream(), FakeUpstream()
    a.url, b.url = servers.serve(a.app()), servers.serve(b.app())
    policies = GUARD if request.param == "guarded" else None
    gw = make_gateway(policies=policies, extra=f"""
[providers.a]
type = "openai"
base_url = "{a.url}/v1"

[providers.b]
type = "openai"
base_url = "{b.url}/v1"

[providers.ca]
type = "anthropic"
base_url = "{a.url}/v1"

[providers.cb]
type = "anthropic"
base_url = "{b.url}/v1"

[models.ab]
targets = [{{ provider = "a", model = "m-a", weight = 1000000 }}, {{ provider = "b", model = "m-b", weight = 0.000001 }}]

[models.claude]
targets = [{{ provider = "ca", model = "c-a", weight = 1000000 }}, {{ provider = "cb", model = "c-b", weight = 0.000001 }}]

[models.lonely]
targets = [{{ provider = "a", model = "m-a" }}]
max_attempts = 1
""")
    yield gw, a, b
    servers.stop_app(a.url)
    servers.stop_app(b.url)


def oa(gw) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.v1, api_key=TEST_KEY, max_retries=0)


def raw_stream(gw, model: str) -> httpx.Response:
    return httpx.post(gw.v1 + "/chat/completions", headers={"authorization": f"Bearer {TEST_KEY}"},
                      json={"model": model, "messages": MSGS, "stream": True}, timeout=10)


A_FAILURES = {
    "error-event": Reply(writes=[A_ROLE, OPENAI_ERROR]),
    "cut": Reply(sse=A_ROLE + CHAT_SSE, reset_after=1),  # the connection drops after the role chunk
    "ends-early": Reply(writes=[A_ROLE]),  # the body ends with no content and no finish
    "garbage": Reply(writes=[A_ROLE, b"data: {not json\n\n"]),
}


@pytest.mark.parametrize("failure", list(A_FAILURES))
def test_stream_failing_before_content_is_served_by_the_next_target(pair, failure):
    gw, a, b = pair
    reference = raw_stream(gw, "ab")  # what a clean answer looks like through the gateway (from A)
    assert reference.status_code == 200 and len(a.requests) == 1
    a.push(A_FAILURES[failure])
    got = raw_stream(gw, "ab")
    assert got.status_code == 200
    assert got.headers["x-gateway-provider"] == "b" and got.headers["x-gateway-attempts"] == "2"
    assert got.content == reference.content  # B's answer intact, nothing of A's
    assert b"FROM-A" not in got.content
    assert len(a.requests) == 2 and len(b.requests) == 1
    # and through the SDK
    a.push(A_FAILURES[failure])
    chunks = list(oa(gw).chat.completions.create(model="ab", messages=MSGS, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == TEXT
    assert {c.id for c in chunks} == {"chatcmpl-Ch4KZ8cF1q2HwLmP9x3vT0bQeR7sN"}


@pytest.mark.parametrize("failure", ["cut-body", "error-body"])
def test_whole_answer_failing_after_200_is_served_by_the_next_target(pair, failure):
    gw, a, b = pair
    a.push(Reply(writes=[b'{"id": "chatcmpl-FROM-A", "object": "chat.comp']) if failure == "cut-body" else
           Reply(body=b'{"error": {"message": "internal", "type": "server_error"}}'))
    raw = oa(gw).chat.completions.with_raw_response.create(model="ab", messages=MSGS)
    assert raw.headers["x-gateway-provider"] == "b" and raw.headers["x-gateway-attempts"] == "2"
    assert raw.parse().choices[0].message.content == TEXT
    assert len(b.requests) == 1


def test_anthropic_stream_error_event_before_content_goes_to_the_next_target(pair):
    gw, a, b = pair
    a.push(Reply(writes=[A_MSG_START, ANTHROPIC_ERROR]))
    c = anthropic.Anthropic(base_url=gw.url, api_key=TEST_KEY, max_retries=0)
    with c.messages.stream(model="claude", max_tokens=100, messages=MSGS) as s:
        text = "".join(s.text_stream)
        final = s.get_final_message()
    assert text == TEXT and final.id == "msg_01XFDUDYJgAACzvnptvVoYEL"
    assert b.requests[0].path == "/v1/messages" and len(a.requests) == 1
    # a chat caller translated to the same Anthropic upstreams: the same
    a.push(Reply(writes=[A_MSG_START, ANTHROPIC_ERROR]))
    chunks = list(oa(gw).chat.completions.create(model="claude", messages=MSGS, stream=True))
    assert "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices) == TEXT
    assert len(b.requests) == 2


def test_no_retry_once_content_started_and_the_error_is_in_the_callers_stream(pair):
    gw, a, b = pair
    events = sse_events(CHAT_SSE)
    a.push(Reply(writes=[events[0], events[1], OPENAI_ERROR]))  # role, "Hello", then an error
    got = []
    with pytest.raises(openai.APIError) as exc:
        for ch in oa(gw).chat.completions.create(model="ab", messages=MSGS, stream=True):
            got.append(ch)
    # Plain: "Hello" went out. Guarded: the guard still held it (a possible e-mail address being cut)
    # when the error came, and held text is never released after an error; it was still content, so
    # no retry either way.
    sent = "".join(ch.choices[0].delta.content or "" for ch in got if ch.choices)
    assert sent == ("" if gw.state.runtime.guardrails is not None else "Hello")
    assert "overloaded" in str(exc.value)
    assert len(b.requests) == 0
    # Anthropic caller: the error arrives as its own `error` event
    msg_events = sse_events(MSG_SSE)
    a.push(Reply(writes=[msg_events[0], msg_events[1], msg_events[3], ANTHROPIC_ERROR]))
    c = anthropic.Anthropic(base_url=gw.url, api_key=TEST_KEY, max_retries=0)
    with pytest.raises(anthropic.APIStatusError) as aexc:
        with c.messages.stream(model="claude", max_tokens=100, messages=MSGS) as s:
            for _ in s.text_stream:
                pass
    assert "Overloaded" in str(aexc.value)
    assert len(b.requests) == 0


def test_every_target_failing_before_content_is_a_502_in_the_callers_shape(pair):
    gw, a, b = pair
    a.push(Reply(writes=[A_ROLE, OPENAI_ERROR]))
    with pytest.raises(openai.APIStatusError) as exc:
        list(oa(gw).chat.completions.create(model="lonely", messages=MSGS, stream=True))
    assert exc.value.status_code == 502
    assert exc.value.body["code"] == "upstream_stream_error"
    assert len(b.requests) == 0


def test_an_empty_but_clean_stream_is_committed_as_it_is(pair):
    gw, a, b = pair
    events = sse_events(CHAT_SSE)
    finish = [e for e in events if b'"finish_reason":"stop"' in e]
    a.push(Reply(writes=[A_ROLE, *finish, b"data: [DONE]\n\n"]))
    got = raw_stream(gw, "ab")
    assert got.status_code == 200 and got.headers["x-gateway-provider"] == "a"
    assert b"FROM-A" in got.content and len(b.requests) == 0


def test_a_gateway_bug_before_the_first_content_is_a_logged_500_and_not_retried(pair, monkeypatch, caplog):
    gw, a, b = pair
    from gateway.codecs.chat_encoder import ChatEncoder

    def broken(self, events, raw=None):
        raise RuntimeError("injected encoder bug")

    monkeypatch.setattr(ChatEncoder, "encode", broken)  # a chat caller on the Anthropic wire encodes every event
    with pytest.raises(openai.APIStatusError) as exc:
        list(oa(gw).chat.completions.create(model="claude", messages=MSGS, stream=True))
    assert exc.value.status_code == 500
    assert "internal gateway error (request id" in exc.value.body["message"]
    assert len(a.requests) == 1 and len(b.requests) == 0, "a bug of ours is not the upstream's failure"
    assert "injected encoder bug" in caplog.text
