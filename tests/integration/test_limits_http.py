"""Rate limits, budgets and revocation through the HTTP surface, on the memory store and on Redis."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import openai
import pytest

from gateway.tokens import Tokenizer
from tests.support.fake_upstream import Reply, transcript
from tests.support.gateway import TEST_KEY, base_config, write_config
from tests.support.processes import GatewayProcess

tokens = Tokenizer()  # counts as the gateway's own tokenizer makes them

MSGS = [{"role": "user", "content": "Say hello"}]


def client(gw, key=TEST_KEY) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.v1, api_key=key, max_retries=0)


def test_requests_per_minute_refuses_with_429_retry_after_and_headers(make_gateway, upstream, store_url):
    gw = make_gateway(extra=f'[store]\nurl = "{store_url}"\n', policies={"limits.toml": """
        [[rate_limits]]
        id = "key-rpm"
        scope = "key"
        rpm = 3
        """})
    c = client(gw)
    for i in range(3):
        raw = c.chat.completions.with_raw_response.create(model="gpt", messages=MSGS)
        assert raw.headers["x-ratelimit-limit-requests"] == "3"
        assert raw.headers["x-ratelimit-remaining-requests"] == str(2 - i)
    with pytest.raises(openai.RateLimitError) as exc:
        c.chat.completions.create(model="gpt", messages=MSGS)
    assert exc.value.body["code"] == "rate_limit_exceeded"
    assert float(exc.value.response.headers["retry-after"]) > 0
    assert len(upstream.requests) == 3, "a refused request never reaches the upstream"


def test_zero_budget_blocks_everything_and_names_the_budget(make_gateway, upstream, store_url):
    gw = make_gateway(extra=f'[store]\nurl = "{store_url}"\n', policies={"budgets.toml": """
        [[budgets]]
        id = "frozen-team"
        scope = "team"
        usd = 0.0
        window = "month"
        """})
    with pytest.raises(openai.RateLimitError) as exc:
        client(gw).chat.completions.create(model="gpt", messages=MSGS)
    assert "frozen-team" in exc.value.message
    assert upstream.requests == []


def test_stream_cut_by_the_client_is_charged_prompt_plus_streamed_output(make_gateway, upstream, store_url, servers):
    prompt = tokens.count_messages(MSGS, "gpt")
    streamed = tokens.count_text("Hello! How can I", "gpt-4o-mini")
    budget = prompt + 100
    gw = make_gateway(extra=f'[store]\nurl = "{store_url}"\n', policies={"budgets.toml": f"""
        [[budgets]]
        id = "key-tokens"
        scope = "key"
        tokens = {budget}
        window = "day"
        """})
    upstream.push(Reply(sse=transcript("openai_stream_text.sse"), stall_after=3))
    stream = client(gw).chat.completions.create(model="gpt", messages=MSGS, stream=True, max_tokens=100)
    text = ""
    for chunk in stream:
        text += chunk.choices[0].delta.content or ""
        if text == "Hello! How can I":
            break
    stream.close()
    servers.run(asyncio.wait_for(upstream.abandoned_event.wait(), 5))
    for _ in range(100):
        if gw.state.in_flight == 0:
            break
        time.sleep(0.02)
    charged = prompt + streamed
    fits = budget - charged - prompt  # the largest max_tokens a second request can still reserve
    with pytest.raises(openai.RateLimitError):
        client(gw).chat.completions.create(model="gpt", messages=MSGS, max_tokens=fits + 1)
    r = client(gw).chat.completions.create(model="gpt", messages=MSGS, max_tokens=fits)
    assert r.usage.prompt_tokens == 1830
    with pytest.raises(openai.RateLimitError):  # settled to the upstream's real usage: over budget now
        client(gw).chat.completions.create(model="gpt", messages=MSGS, max_tokens=1)


def test_revoked_key_is_refused_within_a_second(make_gateway, store_url):
    gw = make_gateway(extra=f'[store]\nurl = "{store_url}"\n')
    c = client(gw)
    c.chat.completions.create(model="demo", messages=MSGS)
    import urllib.request

    urllib.request.urlopen(urllib.request.Request(gw.url + "/admin/keys/test/revoke", method="POST"), timeout=5)
    with pytest.raises(openai.AuthenticationError) as exc:
        c.chat.completions.create(model="demo", messages=MSGS)
    assert exc.value.body["code"] == "revoked_api_key"


def test_two_gateway_processes_sharing_redis_serve_exactly_the_limit(tmp_path, redis_url):
    main = base_config("http://127.0.0.1:9", extra=f'[store]\nurl = "{redis_url}"\n')
    cfg = write_config(tmp_path, main, {"limits.toml": """
        [[rate_limits]]
        scope = "key"
        rpm = 50
        """})
    gws = [GatewayProcess(cfg), GatewayProcess(cfg)]
    try:
        async def burst() -> list[int]:
            body = {"model": "demo", "messages": MSGS}
            headers = {"Authorization": f"Bearer {TEST_KEY}"}
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as s:
                async def one(i: int) -> int:
                    async with s.post(gws[i % 2].url + "/v1/chat/completions", json=body, headers=headers) as r:
                        await r.read()
                        return r.status
                t0 = time.monotonic()
                out = await asyncio.gather(*(one(i) for i in range(200)))
                assert time.monotonic() - t0 < 5
                return out

        statuses = asyncio.run(burst())
        assert statuses.count(200) == 50 and statuses.count(429) == 150
    finally:
        for g in gws:
            g.stop()


def test_memory_store_refuses_several_workers(tmp_path):
    import subprocess
    import sys

    cfg = write_config(tmp_path, base_config("http://127.0.0.1:9"))
    out = subprocess.run([sys.executable, "-m", "gateway", "serve", "--config", str(cfg), "--workers", "2"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 2 and "shared store" in out.stderr


def test_stats_reports_budget_use(make_gateway, upstream, store_url):
    gw = make_gateway(extra=f'[store]\nurl = "{store_url}"\n', policies={"budgets.toml": """
        [[budgets]]
        id = "team-tokens"
        scope = "team"
        tokens = 100000
        window = "month"
        """})
    client(gw).chat.completions.create(model="gpt", messages=MSGS)
    import orjson
    import urllib.request

    with urllib.request.urlopen(gw.url + "/stats", timeout=5) as r:
        budgets = orjson.loads(r.read())["budgets"]
    by_subject = {b["subject"]: b for b in budgets if b["id"] == "team-tokens"}
    assert by_subject["team-a"]["spent"] == 1840 and by_subject["team-a"]["limit"] == 100000
    assert by_subject["team-a"]["unit"] == "tokens" and by_subject["team-b"]["spent"] == 0
