"""OpenAI-compatible presets (Mistral, Groq, Together, Fireworks, DeepSeek, OpenRouter, Ollama) and costs
that match the invoice: each provider's answer is replayed by a fake upstream over a real socket in its
own usage format, driven with the official SDKs, and the recorded cost is compared with a hand
computation from the provider's published prices (USD per million tokens, standard tier)."""

from __future__ import annotations

import anthropic
import openai
import orjson
import pytest

from gateway.records.recorder import Recorder
from tests.support.fake_upstream import Reply
from tests.support.gateway import TEST_KEY, UPSTREAM_SECRET

PRESETS = ["mistral", "groq", "together", "fireworks", "deepseek", "openrouter", "ollama"]


def preset_config(url: str) -> str:
    out = []
    for name in PRESETS:
        key = "" if name == "ollama" else 'api_key_env = "TEST_UPSTREAM_KEY"'
        extra = 'app_url = "https://app.example"\napp_name = "Example App"' if name == "openrouter" else ""
        out.append(f'[providers.p_{name}]\ntype = "{name}"\nbase_url = "{url}/v1"\n{key}\n{extra}\n')
    models = {"mistral": "mistral-large-latest", "groq": "llama-3.3-70b-versatile",
              "together": "meta-llama/Llama-3.3-70B-Instruct-Turbo",
              "fireworks": "accounts/fireworks/models/llama-v3p3-70b-instruct", "deepseek": "deepseek-chat",
              "openrouter": "anthropic/claude-sonnet-4-5", "ollama": "llama3.2"}
    for name in PRESETS:
        out.append(f'[models.{name}]\ntargets = [{{ provider = "p_{name}", model = "{models[name]}" }}]\n')
    out.append(f"""
[providers.claude]
type = "anthropic"
base_url = "{url}/v1"
api_key_env = "TEST_UPSTREAM_KEY"

[models.claude]
targets = [{{ provider = "claude", model = "claude-sonnet-4-5-20250929" }}]

[models.o3]
targets = [{{ provider = "up", model = "o3-2025-04-16" }}]

[pricing.llama3]
input = 0.0
output = 0.0
""")
    return "\n".join(out)


@pytest.fixture
def gw(make_gateway, upstream):
    return make_gateway(extra=preset_config(upstream.url))


@pytest.fixture
def costs(monkeypatch):
    seen: list[tuple[object, float]] = []
    original = Recorder.submit

    def capture(self, ctx, cost_usd):
        seen.append((ctx, cost_usd))
        original(self, ctx, cost_usd)

    monkeypatch.setattr(Recorder, "submit", capture)
    return seen


def chat(gw):
    return openai.OpenAI(base_url=gw.v1, api_key=TEST_KEY, max_retries=0)


def chat_body(usage: dict, text: str = "ok", extra: dict | None = None) -> bytes:
    return orjson.dumps({"id": "c1", "object": "chat.completion", "created": 1, "model": "m",
                         "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                                      "finish_reason": "stop"}], "usage": usage, **(extra or {})})


def sse(*chunks: dict) -> bytes:
    return b"".join(b"data: " + orjson.dumps(c) + b"\n\n" for c in chunks) + b"data: [DONE]\n\n"


# -- presets: base URL, auth, quirks ---------------------------------------------------------------
@pytest.mark.parametrize("name", PRESETS)
def test_each_preset_reaches_its_upstream_with_openai_wire_and_its_auth(gw, upstream, name):
    resp = chat(gw).chat.completions.create(model=name, messages=[{"role": "user", "content": "hi"}])
    assert resp.choices[0].message.content
    seen = upstream.requests[-1]
    assert seen.path == "/v1/chat/completions"
    if name == "ollama":
        assert "authorization" not in seen.headers
    else:
        assert seen.headers["authorization"] == f"Bearer {UPSTREAM_SECRET}"
    if name == "openrouter":
        assert seen.headers["http-referer"] == "https://app.example" and seen.headers["x-title"] == "Example App"


def test_mistral_quirks_are_rewritten_and_nothing_else_changes(gw, upstream):
    chat(gw).chat.completions.create(
        model="mistral", messages=[{"role": "user", "content": "hi"}], max_completion_tokens=50, seed=7,
        tool_choice="required", tools=[{"type": "function", "function": {"name": "f", "parameters": {}}}],
        temperature=0.2, user="u1", stream=True).close()
    body = upstream.requests[-1].body
    assert body["max_tokens"] == 50 and "max_completion_tokens" not in body
    assert body["random_seed"] == 7 and "seed" not in body
    assert body["tool_choice"] == "any" and "stream_options" not in body and "user" not in body
    assert body["temperature"] == 0.2 and body["model"] == "mistral-large-latest"


def test_groq_usage_in_x_groq_is_read(gw, upstream, costs):
    base = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "llama-3.3-70b-versatile"}
    upstream.push(Reply(sse=sse(
        {**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": "hi"}, "finish_reason": None}]},
        {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
         "x_groq": {"id": "req_1", "usage": {"prompt_tokens": 1000, "completion_tokens": 2000,
                                             "total_tokens": 3000}}})))
    list(chat(gw).chat.completions.create(model="groq", messages=[{"role": "user", "content": "hi"}], stream=True))
    ctx, cost = costs[-1]
    assert (ctx.usage.input_tokens, ctx.usage.output_tokens, ctx.usage.estimated) == (1000, 2000, False)
    assert cost == pytest.approx((1000 * 0.59 + 2000 * 0.79) / 1e6)


# -- costs against a hand computation from published prices -----------------------------------------
def test_openai_cached_and_reasoning_tokens_cost(gw, upstream, costs):
    # o3: $2 input, $0.50 cached input, $8 output; reasoning tokens are output tokens.
    upstream.push(Reply(body=chat_body({"prompt_tokens": 10_000, "completion_tokens": 3_000, "total_tokens": 13_000,
                                        "prompt_tokens_details": {"cached_tokens": 4_000},
                                        "completion_tokens_details": {"reasoning_tokens": 2_500}})))
    resp = chat(gw).chat.completions.create(model="o3", messages=[{"role": "user", "content": "hi"}])
    ctx, cost = costs[-1]
    assert ctx.usage.reasoning_tokens == 2_500 and resp.usage.completion_tokens_details.reasoning_tokens == 2_500
    assert cost == pytest.approx((6_000 * 2.0 + 4_000 * 0.50 + 3_000 * 8.0) / 1e6)


@pytest.mark.parametrize("caller", ["messages", "chat"])
def test_anthropic_cache_writes_and_reads_cost(gw, upstream, costs, caller):
    # Claude Sonnet 4.5: $3 input, $3.75 5-minute cache write, $0.30 cache read, $15 output.
    msg = {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5-20250929",
           "content": [{"type": "text", "text": "ok"}], "stop_reason": "end_turn", "stop_sequence": None,
           "usage": {"input_tokens": 100, "cache_creation_input_tokens": 20_000, "cache_read_input_tokens": 50_000,
                     "output_tokens": 700}}
    upstream.push(Reply(body=orjson.dumps(msg)))
    if caller == "messages":
        out = anthropic.Anthropic(base_url=gw.url, api_key=TEST_KEY, max_retries=0).messages.create(
            model="claude", max_tokens=1000, messages=[{"role": "user", "content": "hi"}])
        assert out.usage.cache_creation_input_tokens == 20_000 and out.usage.cache_read_input_tokens == 50_000
    else:
        out = chat(gw).chat.completions.create(model="claude", messages=[{"role": "user", "content": "hi"}])
        assert out.usage.prompt_tokens == 70_100 and out.usage.prompt_tokens_details.cached_tokens == 50_000
        assert out.model_extra is not None and out.usage.model_extra["cache_creation_input_tokens"] == 20_000
    ctx, cost = costs[-1]
    assert (ctx.usage.cache_write_tokens, ctx.usage.cached_tokens) == (20_000, 50_000)
    assert cost == pytest.approx((100 * 3.0 + 20_000 * 3.75 + 50_000 * 0.30 + 700 * 15.0) / 1e6)


def test_anthropic_streamed_cache_writes_cost(gw, upstream, costs):
    events = [
        ("message_start", {"type": "message_start", "message": {
            "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5", "content": [],
            "stop_reason": None, "stop_sequence": None,
            "usage": {"input_tokens": 10, "cache_creation_input_tokens": 3_000, "cache_read_input_tokens": 0,
                      "output_tokens": 1}}}),
        ("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "ok"}}),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                           "usage": {"output_tokens": 40}}),
        ("message_stop", {"type": "message_stop"}),
    ]
    upstream.push(Reply(sse=b"".join(f"event: {n}\n".encode() + b"data: " + orjson.dumps(d) + b"\n\n" for n, d in events)))
    with anthropic.Anthropic(base_url=gw.url, api_key=TEST_KEY, max_retries=0).messages.stream(
            model="claude", max_tokens=100, messages=[{"role": "user", "content": "hi"}]) as s:
        assert s.get_final_text() == "ok"
    ctx, cost = costs[-1]
    assert cost == pytest.approx((10 * 3.0 + 3_000 * 3.75 + 40 * 15.0) / 1e6)


def test_deepseek_cache_hit_tokens_cost(gw, upstream, costs):
    # deepseek-chat: $0.28 cache miss, $0.028 cache hit, $0.42 output.
    upstream.push(Reply(body=chat_body({"prompt_tokens": 5_000, "completion_tokens": 1_000, "total_tokens": 6_000,
                                        "prompt_cache_hit_tokens": 4_000, "prompt_cache_miss_tokens": 1_000})))
    chat(gw).chat.completions.create(model="deepseek", messages=[{"role": "user", "content": "hi"}])
    ctx, cost = costs[-1]
    assert ctx.usage.cached_tokens == 4_000
    assert cost == pytest.approx((1_000 * 0.28 + 4_000 * 0.028 + 1_000 * 0.42) / 1e6)


@pytest.mark.parametrize("name,inp,out", [("mistral", 2.0, 6.0), ("together", 0.88, 0.88),
                                          ("fireworks", 0.90, 0.90), ("openrouter", 3.0, 15.0)])
def test_preset_model_prices(gw, upstream, costs, name, inp, out):
    upstream.push(Reply(body=chat_body({"prompt_tokens": 12_345, "completion_tokens": 678, "total_tokens": 13_023})))
    chat(gw).chat.completions.create(model=name, messages=[{"role": "user", "content": "hi"}])
    assert costs[-1][1] == pytest.approx((12_345 * inp + 678 * out) / 1e6)
