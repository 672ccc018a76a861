"""The Responses API pass-through, Azure OpenAI's URL and header shape, and the vLLM preset, driven
by the official openai SDK through the gateway to the fake upstream."""

from __future__ import annotations

import anthropic
import httpx
import openai
import pytest

from tests.integration.test_providers_anthropic import claude_config, finished  # noqa: F401 (fixture)
from tests.support.fake_upstream import Reply, sse_events, transcript
from tests.support.gateway import TEST_KEY, UPSTREAM_SECRET

TEXT = "Hello! How can I help you today?"
REDACT_OUTPUT = """
[[guardrails]]
id = "code-names"
type = "deny_list"
phrases = ["how can i help"]
action = "redact"
direction = "output"
"""


def client(gw) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.v1, api_key=TEST_KEY, max_retries=0)


# -- Responses API ------------------------------------------------------------------------------------
def test_responses_non_stream_passes_through(gateway, upstream, finished):  # noqa: F811
    r = client(gateway).responses.create(model="gpt", input="Say hello")
    assert r.output_text == TEXT and r.usage.input_tokens == 1830
    seen = upstream.requests[-1]
    assert seen.path == "/v1/responses" and seen.body == {"model": "gpt-4o-mini", "input": "Say hello"}
    assert seen.headers["Authorization"] == f"Bearer {UPSTREAM_SECRET}"
    u = finished[-1].usage
    assert (u.input_tokens, u.output_tokens, u.cached_tokens, u.estimated) == (1830, 10, 1792, False)


def test_responses_stream_relays_events_as_they_come(gateway, upstream, finished):  # noqa: F811
    body = {"model": "gpt", "input": "Say hello", "stream": True}
    with httpx.stream("POST", gateway.v1 + "/responses", json=body, headers={"authorization": f"Bearer {TEST_KEY}"}) as r:
        relayed = sse_events(r.read())
    assert relayed == sse_events(transcript("openai_responses_stream_text.sse")), "names and data kept byte for byte"
    events = list(client(gateway).responses.create(model="gpt", input="Say hello", stream=True))
    types = [e.type for e in events]
    assert types[:4] == ["response.created", "response.in_progress", "response.output_item.added",
                         "response.content_part.added"]
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == TEXT
    assert types[-1] == "response.completed" and events[-1].response.usage.output_tokens == 10
    u = finished[-1].usage
    assert (u.input_tokens, u.output_tokens, u.cached_tokens) == (1830, 10, 1792)
    assert finished[-1].timings.first_token > 0


def test_responses_output_scanner_redacts_deltas_and_every_echo(make_gateway, upstream):
    gw = make_gateway(policies={"guard.toml": REDACT_OUTPUT})
    events = list(client(gw).responses.create(model="gpt", input="Say hello", stream=True))
    streamed = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert "How can I help" not in streamed and streamed.startswith("Hello! ") and streamed.endswith(" you today?")
    done = next(e for e in events if e.type == "response.output_text.done")
    assert done.text == streamed
    assert events[-1].response.output[0].content[0].text == streamed
    assert [e.sequence_number for e in events] == list(range(len(events)))
    whole = client(gw).responses.create(model="gpt", input="Say hello")
    assert whole.output_text == streamed


def test_responses_cut_stream_ends_with_an_error_event(gateway, upstream):
    upstream.push(Reply(sse=transcript("openai_responses_stream_text.sse"), reset_after=6))
    events = list(client(gateway).responses.create(model="gpt", input="Say hello", stream=True))
    # The Responses API reports stream failures as an `error` event (the SDK yields it, not raises).
    assert [e.type for e in events[:6]] == ["response.created", "response.in_progress", "response.output_item.added",
                                            "response.content_part.added", "response.output_text.delta",
                                            "response.output_text.delta"]
    assert events[-1].type == "error" and events[-1].code == "upstream_error"
    assert events[-1].sequence_number == 6
    assert len(upstream.requests) == 1, "nothing is retried once the stream has started"


def test_responses_on_the_mock_provider_is_refused_with_400(gateway):
    with pytest.raises(openai.BadRequestError):
        client(gateway).responses.create(model="demo", input="hi")


def test_messages_output_scanner_on_both_wires(make_gateway, upstream):
    gw = make_gateway(extra=claude_config(upstream.url), policies={"guard.toml": REDACT_OUTPUT})
    c = anthropic.Anthropic(base_url=gw.url, api_key=TEST_KEY, max_retries=0)
    for model in ("claude", "gpt"):
        with c.messages.stream(model=model, max_tokens=50, messages=[{"role": "user", "content": "hi"}]) as s:
            streamed = "".join(s.text_stream)
            final = s.get_final_message()
        assert "How can I help" not in streamed and streamed.endswith(" you today?"), model
        assert final.content[0].text == streamed
        whole = c.messages.create(model=model, max_tokens=50, messages=[{"role": "user", "content": "hi"}])
        assert whole.content[0].text == streamed
    chunks = list(client(gw).chat.completions.create(model="claude", messages=[{"role": "user", "content": "hi"}],
                                                      stream=True))
    assert "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices) == streamed


# -- Azure OpenAI and vLLM ---------------------------------------------------------------------------
def test_azure_deployment_url_api_version_and_api_key_header(make_gateway, upstream):
    gw = make_gateway(extra=f"""
[providers.az]
type = "azure"
base_url = "{upstream.url}"
api_key_env = "TEST_UPSTREAM_KEY"
api_version = "2024-10-21"

[models.az]
targets = [{{ provider = "az", model = "my-gpt4o-deployment" }}]
""")
    r = client(gw).chat.completions.create(model="az", messages=[{"role": "user", "content": "hi"}])
    assert r.choices[0].message.content == TEXT
    seen = upstream.requests[-1]
    assert seen.path == "/openai/deployments/my-gpt4o-deployment/chat/completions"
    assert seen.query == "api-version=2024-10-21"
    assert seen.headers["api-key"] == UPSTREAM_SECRET and "authorization" not in seen.headers
    client(gw).embeddings.create(model="az", input="hi")
    assert upstream.requests[-1].path == "/openai/deployments/my-gpt4o-deployment/embeddings"
    with pytest.raises(openai.BadRequestError) as exc:
        client(gw).responses.create(model="az", input="hi")
    assert exc.value.body["code"] == "unsupported_api"


def test_vllm_preset_defaults_and_optional_key(make_gateway, upstream):
    gw = make_gateway(extra=f"""
[providers.local]
type = "vllm"

[providers.local2]
type = "vllm"
base_url = "{upstream.url}/v1"

[models.llama]
targets = [{{ provider = "local2", model = "meta-llama/Llama-3.1-8B-Instruct" }}]
""")
    providers = gw.state.runtime.providers
    assert providers["local"].endpoint("chat", "m", False) == "http://127.0.0.1:8000/v1/chat/completions"
    client(gw).chat.completions.create(model="llama", messages=[{"role": "user", "content": "hi"}])
    seen = upstream.requests[-1]
    assert seen.body["model"] == "meta-llama/Llama-3.1-8B-Instruct" and "authorization" not in seen.headers
