"""Routing under faults, over real sockets: retries with backoff and Retry-After, failover between
targets, fallback aliases, circuit breakers, per-target timeouts, the retry budget, and no retry once a
stream has started. The fake upstream fails on command; a refused connection is port 9 on loopback."""

from __future__ import annotations

import time

import anthropic
import httpx
import openai
import pytest

from tests.support.fake_upstream import Reply, transcript
from tests.support.gateway import TEST_KEY

MSGS = [{"role": "user", "content": "Say hello"}]
TEXT = "Hello! How can I help you today?"


def routing_config(url: str) -> str:
    return f"""
[providers.dead]
type = "openai"
base_url = "http://127.0.0.1:9/v1"
connect_timeout_s = 1

[providers.slow]
type = "openai"
base_url = "{url}/v1"
first_byte_timeout_s = 0.3

[models.one]
targets = [{{ provider = "up", model = "m-one" }}]
retry_base_s = 0.01

[models.once]
targets = [{{ provider = "up", model = "m-once" }}]
max_attempts = 1

[models.tight]
targets = [{{ provider = "up", model = "m-tight" }}]
retry_budget_s = 0.5

[models.pair]
targets = [{{ provider = "dead", model = "a", weight = 1000 }}, {{ provider = "up", model = "b", weight = 0.001 }}]

[models.timed]
targets = [{{ provider = "slow", model = "s", weight = 1000 }}, {{ provider = "up", model = "b2", weight = 0.001 }}]

[models.broken]
targets = [{{ provider = "dead", model = "x" }}, {{ provider = "dead", model = "y" }}]
fallbacks = ["one"]

[models.doomed]
targets = [{{ provider = "dead", model = "z" }}]
max_attempts = 1
fallbacks = ["once"]

[models.fragile]
targets = [{{ provider = "up", model = "m-fragile" }}]
max_attempts = 1
breaker_failures = 2
breaker_cooldown_s = 0.5
"""


@pytest.fixture
def gw(make_gateway, upstream):
    return make_gateway(extra=routing_config(upstream.url))


def client(gw) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.v1, api_key=TEST_KEY, max_retries=0)


def chat(gw, model: str, **kw):
    return client(gw).chat.completions.with_raw_response.create(model=model, messages=MSGS, **kw)


def server_error() -> Reply:
    return Reply(status=500, body=b'{"error":{"message":"The server had an error","type":"server_error"}}')


def test_500_then_success_is_retried_exactly_once(gw, upstream):
    upstream.push(server_error())
    raw = chat(gw, "one")
    assert raw.parse().choices[0].message.content == TEXT
    assert raw.headers["x-gateway-attempts"] == "2"
    assert [r.body["model"] for r in upstream.requests] == ["m-one", "m-one"]


def test_429_retry_after_is_honoured(gw, upstream):
    upstream.push(Reply(status=429, body=transcript("openai_error_rate_limit.json"), headers={"retry-after": "1"}))
    t0 = time.monotonic()
    raw = chat(gw, "one")
    elapsed = time.monotonic() - t0
    assert raw.parse().choices[0].message.content == TEXT and raw.headers["x-gateway-attempts"] == "2"
    assert 0.9 <= elapsed < 3, elapsed


def test_retry_after_beyond_the_budget_is_not_waited_and_is_passed_on(gw, upstream):
    upstream.push(Reply(status=429, body=transcript("openai_error_rate_limit.json"), headers={"retry-after": "2"}))
    t0 = time.monotonic()
    with pytest.raises(openai.RateLimitError) as exc:
        chat(gw, "tight")
    assert time.monotonic() - t0 < 1
    assert exc.value.response.headers["retry-after"] == "2" and len(upstream.requests) == 1
    assert "org-" not in str(exc.value.body), "the upstream's message naming its organisation stays inside"


def test_non_retryable_status_is_returned_at_once(gw, upstream):
    upstream.push(Reply(status=400, body=transcript("openai_error_context_length.json")))
    with pytest.raises(openai.BadRequestError):
        chat(gw, "one")
    assert len(upstream.requests) == 1


def test_connection_refused_on_one_target_moves_to_the_next(gw, upstream):
    raw = chat(gw, "pair")
    assert raw.parse().choices[0].message.content == TEXT
    assert raw.headers["x-gateway-provider"] == "up" and raw.headers["x-gateway-model"] == "b"
    assert raw.headers["x-gateway-attempts"] == "2"


def test_a_target_that_does_not_answer_in_its_first_byte_timeout_moves_on(gw, upstream):
    upstream.push(Reply(hang=True))
    t0 = time.monotonic()
    raw = chat(gw, "timed")
    assert raw.headers["x-gateway-model"] == "b2" and 0.25 < time.monotonic() - t0 < 3


def test_every_target_failing_goes_to_the_fallback_alias(gw, upstream):
    raw = chat(gw, "broken")
    assert raw.parse().choices[0].message.content == TEXT
    assert raw.headers["x-gateway-provider"] == "up" and raw.headers["x-gateway-model"] == "m-one"
    # max_attempts = 3 over two targets: x and y (in either order), the first again after a backoff,
    # then the fallback alias.
    assert raw.headers["x-gateway-attempts"] == "4"


def test_everything_failing_on_messages_answers_in_anthropics_shape(gw, upstream):
    c = anthropic.Anthropic(base_url=gw.url, api_key=TEST_KEY, max_retries=0)
    upstream.push(Reply(status=429, body=transcript("openai_error_rate_limit.json")))
    with pytest.raises(anthropic.RateLimitError) as exc:
        c.messages.create(model="doomed", max_tokens=10, messages=MSGS)
    assert exc.value.body["error"]["type"] == "rate_limit_error"
    upstream.push(server_error())
    with pytest.raises(anthropic.InternalServerError) as exc:
        c.messages.create(model="doomed", max_tokens=10, messages=MSGS)
    assert exc.value.response.headers["x-gateway-attempts"] == "2"


def test_breaker_opens_skips_the_target_then_lets_one_probe_through(gw, upstream):
    for _ in range(2):
        upstream.push(server_error())
        with pytest.raises(openai.InternalServerError):
            chat(gw, "fragile")
    assert len(upstream.requests) == 2
    ready = httpx.get(gw.url + "/health/ready").json()
    assert ready["checks"]["breakers"]["up/m-fragile"] == "open"
    with pytest.raises(openai.APIStatusError) as exc:
        chat(gw, "fragile")
    assert exc.value.status_code == 503 and exc.value.body["code"] == "circuit_open"
    assert len(upstream.requests) == 2, "no traffic while the breaker is open"
    data = httpx.get(gw.url + "/stats").json()
    stats = (data.get("breaker_detail") or data["breakers"])["up/m-fragile"]
    assert stats["state"] == "open" and stats["opened_count"] == 1
    time.sleep(0.6)
    upstream.push(server_error())  # the probe fails: open again for another cooldown
    with pytest.raises(openai.InternalServerError):
        chat(gw, "fragile")
    with pytest.raises(openai.APIStatusError):
        chat(gw, "fragile")
    assert len(upstream.requests) == 3
    time.sleep(0.6)
    assert chat(gw, "fragile").parse().choices[0].message.content == TEXT  # the probe succeeds: closed
    assert chat(gw, "fragile").headers["x-gateway-attempts"] == "1"
    assert len(upstream.requests) == 5
    assert httpx.get(gw.url + "/health/ready").json()["checks"]["breakers"]["up/m-fragile"] == "closed"


def test_a_stream_failing_before_its_first_byte_is_retried(gw, upstream):
    upstream.push(server_error())
    chunks = list(client(gw).chat.completions.create(model="one", messages=MSGS, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == TEXT
    assert len(upstream.requests) == 2


def test_no_retry_after_the_first_streamed_byte(gw, upstream):
    upstream.push(Reply(sse=transcript("openai_stream_text.sse"), reset_after=2))
    got = []
    with pytest.raises(openai.APIError) as exc:
        for c in client(gw).chat.completions.create(model="one", messages=MSGS, stream=True):
            got.append(c)
    assert got, "the chunks before the failure reach the client"
    assert "upstream connection broke" in str(exc.value)
    assert len(upstream.requests) == 1
