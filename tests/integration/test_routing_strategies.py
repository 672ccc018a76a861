"""Routing strategies over real sockets: the openai SDK calls the gateway, which routes between fake
upstreams of different speeds and failure rates (each its own server on loopback)."""

from __future__ import annotations

import random
import time
from concurrent.futures import ThreadPoolExecutor

import openai
import pytest

from tests.support.fake_upstream import FakeUpstream
from tests.support.gateway import TEST_KEY

MSGS = [{"role": "user", "content": "Say hello"}]
TEXT = "Hello! How can I help you today?"


@pytest.fixture
def upstreams(servers):
    made: list[FakeUpstream] = []

    def make(delay: float = 0.0, fail_rate: float = 0.0, seed: int = 0) -> FakeUpstream:
        fake = FakeUpstream()
        fake.delay, fake.fail_rate, fake.rng = delay, fail_rate, random.Random(seed)
        fake.url = servers.serve(fake.app())
        made.append(fake)
        return fake

    yield make
    for fake in made:
        servers.stop_app(fake.url)


def providers(**ups: FakeUpstream) -> str:
    return "".join(f"""
[providers.{name}]
type = "openai"
base_url = "{up.url}/v1"
""" for name, up in ups.items())


def client(gw) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.v1, api_key=TEST_KEY, max_retries=0)


def ask(c: openai.OpenAI, model: str, stream: bool = False):
    if stream:
        raw = c.chat.completions.with_raw_response.create(model=model, messages=MSGS, stream=True)
        text = "".join(ch.choices[0].delta.content or "" for ch in raw.parse() if ch.choices)
    else:
        raw = c.chat.completions.with_raw_response.create(model=model, messages=MSGS)
        text = raw.parse().choices[0].message.content
    assert text == TEXT
    return raw.headers


def test_least_latency_converges_on_the_fast_target_and_keeps_exploring(make_gateway, upstreams):
    fast, slow, flaky = upstreams(), upstreams(delay=0.12), upstreams(fail_rate=0.5, seed=5)
    gw = make_gateway(extra=providers(fast=fast, slow=slow, flaky=flaky) + """
[models.quick]
strategy = "least-latency"
explore = 0.2
targets = [{ provider = "slow", model = "m-slow" }, { provider = "fast", model = "m-fast" },
           { provider = "flaky", model = "m-flaky" }]
""")
    gw.state.runtime.router.rng = random.Random(11)
    c = client(gw)
    for i in range(80):
        ask(c, "quick", stream=i % 2 == 1)  # every request is answered, failures fail over
    n_fast, n_slow, n_flaky = len(fast.requests), len(slow.requests), len(flaky.requests)
    # Exploring 20% of requests over three targets sends about 5 (sd 2) to each of the others.
    assert n_fast >= 55, (n_fast, n_slow, n_flaky)
    assert 2 <= n_slow <= 15, (n_fast, n_slow, n_flaky)  # measured again after it lost: exploration
    assert 2 <= n_flaky <= 20, (n_fast, n_slow, n_flaky)  # failures count as slow samples
    stats = gw.state.runtime.router.stats
    assert stats["fast/m-fast"].ewma_s < 0.1 < stats["slow/m-slow"].ewma_s
    assert all(s.in_flight == 0 for s in stats.values())


def test_least_latency_moves_back_when_the_slow_target_recovers(make_gateway, upstreams):
    a, b = upstreams(), upstreams(delay=0.15)
    gw = make_gateway(extra=providers(a=a, b=b) + """
[models.quick]
strategy = "least-latency"
explore = 0.25
targets = [{ provider = "a", model = "m-a" }, { provider = "b", model = "m-b" }]
""")
    gw.state.runtime.router.rng = random.Random(3)
    c = client(gw)
    for _ in range(20):
        ask(c, "quick")
    assert len(a.requests) > len(b.requests)
    a.delay, b.delay = 0.15, 0.0  # the two swap speeds
    before_b = len(b.requests)
    for _ in range(40):
        ask(c, "quick")
    last = [len(b.requests) - before_b, 40 - (len(b.requests) - before_b)]
    assert last[0] > last[1], last  # exploration measured the change and traffic followed


def test_least_busy_spreads_concurrent_requests_by_in_flight(make_gateway, upstreams):
    a, b = upstreams(delay=0.4), upstreams(delay=0.4)
    gw = make_gateway(extra=providers(a=a, b=b) + """
[models.busy]
strategy = "least-busy"
targets = [{ provider = "a", model = "m-a", weight = 100 }, { provider = "b", model = "m-b", weight = 1 }]
""")
    c = client(gw)
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: ask(c, "busy", stream=i % 2 == 0), range(8)))
    assert (len(a.requests), len(b.requests)) == (4, 4)  # weights are not what least-busy reads


def test_least_busy_sends_more_to_the_target_that_frees_up_sooner(make_gateway, upstreams):
    slow, quick = upstreams(delay=0.6), upstreams(delay=0.02)
    gw = make_gateway(extra=providers(slow=slow, quick=quick) + """
[models.busy]
strategy = "least-busy"
targets = [{ provider = "slow", model = "m-slow" }, { provider = "quick", model = "m-quick" }]
""")
    c = client(gw)
    deadline = time.monotonic() + 1.5

    def worker(_: int) -> None:
        while time.monotonic() < deadline:
            ask(c, "busy")

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(worker, range(4)))
    # The slow target holds a request for 0.6 s, so it is the busier one nearly always.
    assert len(quick.requests) > 4 * len(slow.requests) > 0, (len(quick.requests), len(slow.requests))


def test_cost_picks_the_cheapest_healthy_target_and_moves_on_when_it_fails(make_gateway, upstreams):
    cheap, mid, dear = upstreams(), upstreams(), upstreams()
    gw = make_gateway(extra=providers(cheap=cheap, mid=mid, dear=dear) + """
[models.thrifty]
strategy = "cost"
breaker_failures = 2
breaker_cooldown_s = 0.5
targets = [{ provider = "dear", model = "m-dear" }, { provider = "cheap", model = "m-cheap" },
           { provider = "mid", model = "m-mid" }]

[pricing.m-dear]
input = 5.0
output = 15.0

[pricing.m-mid]
input = 1.0
output = 2.0

[pricing.m-cheap]
input = 0.1
output = 0.4
""")
    c = client(gw)
    for i in range(6):
        h = ask(c, "thrifty", stream=i % 2 == 0)
        assert h["x-gateway-model"] == "m-cheap" and h["x-gateway-attempts"] == "1"
    cheap.fail_rate = 1.0
    h = ask(c, "thrifty")  # the cheapest fails: the next cheapest answers in the same request
    assert h["x-gateway-model"] == "m-mid" and h["x-gateway-attempts"] == "2"
    h = ask(c, "thrifty", stream=True)
    assert h["x-gateway-model"] == "m-mid" and h["x-gateway-attempts"] == "2"
    assert gw.state.runtime.router.breakers["cheap/m-cheap"].state == "open"
    failed_at = len(cheap.requests)
    for _ in range(4):  # breaker open: the cheapest is skipped, not tried
        h = ask(c, "thrifty")
        assert h["x-gateway-model"] == "m-mid" and h["x-gateway-attempts"] == "1"
    assert len(cheap.requests) == failed_at and len(dear.requests) == 0
    cheap.fail_rate = 0.0
    time.sleep(0.6)  # the cooldown passes: the probe goes to the cheapest again and closes it
    h = ask(c, "thrifty")
    assert h["x-gateway-model"] == "m-cheap"
    assert gw.state.runtime.router.breakers["cheap/m-cheap"].state == "closed"
