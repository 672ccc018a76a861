"""The Vertex access token is a credential like any provider key: an upstream (or a model made to) that
quotes it in an answer, whole or streamed, plain or JSON-escaped, shows it to no caller and no record.
The token is fetched by google-auth from the fake token endpoint (a signed JWT), so it is only known
after the first request; driven with the official openai and anthropic SDKs over real sockets."""

from __future__ import annotations

import anthropic
import openai
import pytest

from tests.integration.test_providers_vertex import MSGS, key_pair, service_account, vertex, vertex_config  # noqa: F401
from tests.support.fake_gemini import GReply, part, response, usage
from tests.support.gateway import TEST_KEY

TOKEN = "ya29.fake-token-1"  # the fake token endpoint's first token
FORMS = [TOKEN, TOKEN.replace(".", "\\u002e"), TOKEN.replace("y", "\\u0079", 1)]


@pytest.fixture
def gw(make_gateway, vertex, key_pair, tmp_path):  # noqa: F811
    return make_gateway(extra=vertex_config(vertex.url, service_account(tmp_path, vertex.url, key_pair[0])))


def _answers(form: str) -> tuple[GReply, GReply]:
    text = f"the header was Bearer {form} ok"
    whole = GReply(body=response([part(text)], meta=usage(5, 5), model="gemini-2.5-pro"))
    cut = len(text) // 2
    streamed = GReply(stream=[response([part(text[:cut])], finish=None, meta=usage(5, 1), model="gemini-2.5-pro"),
                              response([part(text[cut:])], meta=usage(5, 5), model="gemini-2.5-pro")])
    return whole, streamed


def _clients(gw) -> tuple[openai.OpenAI, anthropic.Anthropic]:
    return (openai.OpenAI(base_url=gw.v1, api_key=TEST_KEY, max_retries=0),
            anthropic.Anthropic(base_url=gw.url, api_key=TEST_KEY, max_retries=0))


def _ask(gw, vertex, whole: GReply, streamed: GReply) -> dict[str, str]:
    chat, msgs = _clients(gw)
    vertex.push(whole, streamed, whole, streamed)
    got = {"chat": chat.chat.completions.create(model="pro", messages=MSGS).choices[0].message.content,
           "chat stream": "".join(c.choices[0].delta.content or "" for c in
                                  chat.chat.completions.create(model="pro", messages=MSGS, stream=True) if c.choices),
           "messages": msgs.messages.create(model="pro", max_tokens=20, messages=MSGS).content[0].text}
    with msgs.messages.stream(model="pro", max_tokens=20, messages=MSGS) as s:
        got["messages stream"] = s.get_final_message().content[0].text
    return got


@pytest.fixture
def token_known(gw, vertex):
    _clients(gw)[0].chat.completions.create(model="pro", messages=MSGS)  # google-auth fetches the token
    assert vertex.requests[-1].headers["authorization"] == "Bearer " + TOKEN


@pytest.mark.parametrize("form", FORMS)
def test_the_access_token_quoted_in_an_answer_reaches_no_caller(gw, vertex, token_known, form):
    whole, streamed = _answers(form)
    if form != TOKEN:  # escapes written out by the model, split across events: see the xfail below
        streamed = GReply(stream=[response([part(f"Bearer {form} ok")], meta=usage(5, 5), model="gemini-2.5-pro")])
    for how, text in _ask(gw, vertex, whole, streamed).items():
        assert "fake-token" not in text, f"{form!r} reached a {how} caller as {text!r}"


def test_an_escaped_token_cut_across_stream_events_reaches_no_caller(gw, vertex, token_known):
    whole, streamed = _answers(FORMS[1])
    for how, text in _ask(gw, vertex, whole, streamed).items():
        assert "fake-token" not in text, f"reached a {how} caller as {text!r}"
