"""Budgets on aliases whose name is not a priced model: the reservation covers the most expensive
target or fallback the alias can reach, the spend is settled at the target that answered. Through the
openai SDK against a fake upstream that holds its answers until every request was admitted or refused,
on the memory store, on Redis, and across two gateway processes sharing Redis."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import urllib.request

import openai
import orjson
import pytest

from gateway.context import Usage
from gateway.pricing import Pricing
from gateway.tokens import Tokenizer
from tests.support.fake_upstream import Reply, transcript
from tests.support.gateway import TEST_KEY, base_config, write_config
from tests.support.processes import ROOT, GatewayProcess

tokens = Tokenizer()  # counts as the gateway's own tokenizer makes them

PRICES = Pricing.compile({})
MSGS = [{"role": "user", "content": "Say hello"}]
OUT = 50  # max_tokens of every request; the fake upstream answers with exactly that many output tokens
PROMPT = max(tokens.count_messages(MSGS, m) for m in ("gpt-4o", "gpt-4"))  # either encoding

# `chat` mixes an expensive and a cheap target; `small` falls back to an expensive alias, `big-first`
# to a cheap one. No alias name is itself a priced model.
MODELS = """
[models.chat]
targets = [{ provider = "up", model = "gpt-4o" }, { provider = "up", model = "gpt-4o-mini" }]
max_attempts = 1

[models.small]
targets = [{ provider = "up", model = "gpt-4o-mini" }]
max_attempts = 1
fallbacks = ["big"]

[models.big]
targets = [{ provider = "up", model = "gpt-4o" }]
max_attempts = 1

[models.big-first]
targets = [{ provider = "up", model = "gpt-4o" }]
max_attempts = 1
fallbacks = ["mini"]

[models.mini]
targets = [{ provider = "up", model = "gpt-4o-mini" }]
max_attempts = 1
"""


def worst_usd(model: str) -> float:
    """What one request reserves at `model`'s prices: the prompt plus max_tokens of output."""
    return PRICES.estimate_usd(model, PROMPT, OUT)


def budget(limit: float, models: list[str]) -> dict[str, str]:
    return {"budgets.toml": f"""
        [[budgets]]
        id = "alias-usd"
        scope = "key"
        models = {orjson.dumps(models).decode()}
        usd = {limit!r}
        window = "day"
        """}


def answer(prompt: int = PROMPT, out: int = OUT, hold: asyncio.Event | None = None) -> Reply:
    body = orjson.loads(transcript("openai_chat_text.json"))
    body["usage"] = {"prompt_tokens": prompt, "completion_tokens": out, "total_tokens": prompt + out}
    return Reply(body=orjson.dumps(body), hold=hold)


def burst(servers, upstream, urls: list[str], model: str, count: int, messages=MSGS, out: int = OUT,
          reply=answer, **create: object) -> list[int]:
    """`count` concurrent requests spread over `urls`; the upstream holds every answer until each request
    has either reached it or been refused, so no reservation is settled while others are admitted."""
    hold = asyncio.Event()  # waited on and set on the servers' loop
    upstream.push(*(reply(hold=hold) for _ in range(count)))
    seen = len(upstream.requests)

    async def run() -> list[int]:
        clients = [openai.AsyncOpenAI(base_url=u + "/v1", api_key=TEST_KEY, max_retries=0) for u in urls]

        async def one(i: int) -> int:
            try:
                await clients[i % len(clients)].chat.completions.create(model=model, messages=messages,
                                                                        max_tokens=out, **create)
                return 200
            except openai.RateLimitError:
                return 429

        tasks = [asyncio.create_task(one(i)) for i in range(count)]
        deadline = time.monotonic() + 60
        while len(upstream.requests) - seen + sum(t.done() for t in tasks) < count:
            assert time.monotonic() < deadline, "requests neither reached the upstream nor were refused"
            await asyncio.sleep(0.01)
        servers.loop.call_soon_threadsafe(hold.set)
        out_ = await asyncio.gather(*tasks)
        for c in clients:
            await c.close()
        return out_

    try:
        return asyncio.run(run())
    finally:
        upstream.script.clear()


def budget_use(url: str, rule: str = "alias-usd") -> tuple[float, float]:
    """(spent, reserved) of the test key's counter, once every request has settled."""
    deadline = time.monotonic() + 20
    while True:
        with urllib.request.urlopen(url + "/stats", timeout=5) as r:
            rows = [b for b in orjson.loads(r.read())["budgets"] if b["id"] == rule and b["subject"] == "test"]
        if rows and rows[0]["reserved"] == pytest.approx(0, abs=1e-12) or time.monotonic() > deadline:
            return (rows[0]["spent"], rows[0]["reserved"]) if rows else (0.0, 0.0)
        time.sleep(0.05)


def charged(upstream, start: int = 0) -> float:
    """What the answered requests cost at the model each was actually sent to."""
    return sum(PRICES.cost_usd(s.body["model"], Usage(PROMPT, OUT)) for s in upstream.requests[start:])


def test_concurrent_requests_pass_only_as_many_as_the_budget_covers_at_the_worst_price(make_gateway, upstream,
                                                                                      store_url, servers):
    limit = 3.5 * worst_usd("gpt-4o")  # room for 3 requests at the price of chat's dearest target
    gw = make_gateway(extra=MODELS + f'[store]\nurl = "{store_url}"\n', policies=budget(limit, ["chat"]))
    statuses = burst(servers, upstream, [gw.url], "chat", 12)
    assert statuses.count(200) == 3 and statuses.count(429) == 9, statuses
    assert len(upstream.requests) == 3, "a refused request never reaches the upstream"
    spent, reserved = budget_use(gw.url)
    assert reserved == pytest.approx(0, abs=1e-12)
    assert spent == pytest.approx(charged(upstream)), "settled at the target each request went to"
    assert spent <= limit


def test_two_gateways_sharing_redis_hold_an_alias_budget(tmp_path, redis_url, upstream, servers):
    limit = 4.5 * worst_usd("gpt-4o")
    main = base_config(upstream.url, extra=MODELS + f'[store]\nurl = "{redis_url}"\n')
    cfg = write_config(tmp_path, main, budget(limit, ["chat"]))
    gws = [GatewayProcess(cfg), GatewayProcess(cfg)]
    try:
        statuses = burst(servers, upstream, [g.url for g in gws], "chat", 16)
        assert statuses.count(200) == 4 and statuses.count(429) == 12, statuses
        spent, reserved = budget_use(gws[0].url)
        assert reserved == pytest.approx(0, abs=1e-12)
        assert spent == pytest.approx(charged(upstream)) and spent <= limit
    finally:
        for g in gws:
            g.stop()


def test_fallback_from_cheap_to_expensive_is_reserved_and_settled_at_the_expensive_price(make_gateway, upstream,
                                                                                        store_url):
    limit = 1.5 * worst_usd("gpt-4o")
    gw = make_gateway(extra=MODELS + f'[store]\nurl = "{store_url}"\n', policies=budget(limit, ["small"]))
    c = openai.OpenAI(base_url=gw.v1, api_key=TEST_KEY, max_retries=0)
    upstream.push(Reply(status=500, body=b'{"error": {"message": "down"}}'), answer())
    c.chat.completions.create(model="small", messages=MSGS, max_tokens=OUT)
    assert [s.body["model"] for s in upstream.requests] == ["gpt-4o-mini", "gpt-4o"]
    spent, reserved = budget_use(gw.url)
    assert spent == pytest.approx(worst_usd("gpt-4o")) and reserved == pytest.approx(0, abs=1e-12)
    # What is left would pay for many gpt-4o-mini answers, but `small` can end at gpt-4o.
    assert limit - spent > 5 * worst_usd("gpt-4o-mini")
    with pytest.raises(openai.RateLimitError):
        c.chat.completions.create(model="small", messages=MSGS, max_tokens=OUT)
    assert len(upstream.requests) == 2


def test_fallback_from_expensive_to_cheap_is_settled_at_the_cheap_price(make_gateway, upstream, store_url):
    limit = 1.5 * worst_usd("gpt-4o")
    gw = make_gateway(extra=MODELS + f'[store]\nurl = "{store_url}"\n', policies=budget(limit, ["big-first"]))
    c = openai.OpenAI(base_url=gw.v1, api_key=TEST_KEY, max_retries=0)
    upstream.push(Reply(status=503, body=b'{"error": {"message": "down"}}'), answer())
    c.chat.completions.create(model="big-first", messages=MSGS, max_tokens=OUT)
    assert [s.body["model"] for s in upstream.requests] == ["gpt-4o", "gpt-4o-mini"]
    spent, reserved = budget_use(gw.url)
    assert spent == pytest.approx(worst_usd("gpt-4o-mini")) and reserved == pytest.approx(0, abs=1e-12)
    c.chat.completions.create(model="big-first", messages=MSGS, max_tokens=OUT)  # still room at gpt-4o's price


# -- token budgets: the prompt is counted with the tokenizer of the targets, not of the alias's name ------

# Japanese text: cl100k_base (the estimate for non-OpenAI models) needs far more tokens than o200k_base.
JA = [{"role": "user", "content": "東京の天気は今日とても良いです。明日も晴れるでしょうか。" * 8}]


def test_token_budget_counts_the_prompt_with_the_targets_tokenizer(make_gateway, upstream, servers, store_url):
    """An alias named like an OpenAI model (o200k) that routes to a local model (cl100k estimate)."""
    small, big = tokens.count_messages(JA, "gpt-4o"), tokens.count_messages(JA, "llama-3.1-70b")
    assert big > small * 1.3
    out = 10
    limit = 2 * (big + out) + (big + out) // 2  # two requests at the target's count; three at the alias's
    assert 3 * (small + out) <= limit
    extra = '[models."gpt-4o"]\ntargets = [{ provider = "up", model = "llama-3.1-70b" }]\n'
    gw = make_gateway(extra=extra + f'[store]\nurl = "{store_url}"\n', policies={"budgets.toml": f"""
        [[budgets]]
        id = "alias-tokens"
        scope = "key"
        tokens = {limit}
        window = "day"
        """})
    statuses = burst(servers, upstream, [gw.url], "gpt-4o", 6, messages=JA, out=out,
                     reply=lambda hold: answer(big, out, hold))
    assert statuses.count(200) == 2, statuses
    spent, _ = budget_use(gw.url, "alias-tokens")
    assert spent == 2 * (big + out) <= limit


# -- a USD budget over an alias that can reach an unpriced target is a config error -------------------


def check_config(tmp_path, extra: str, policies: dict[str, str]) -> subprocess.CompletedProcess:
    cfg = write_config(tmp_path, base_config("http://127.0.0.1:9", extra=extra), policies)
    return subprocess.run([sys.executable, "-m", "gateway", "check-config", "--config", str(cfg)],
                          capture_output=True, text=True, timeout=60, cwd=ROOT, env=dict(os.environ))


def usd_budget(selectors: str = "", usd: float = 10.0) -> dict[str, str]:
    return {"budgets.toml": f"""
        [[budgets]]
        id = "b"
        scope = "team"
        {selectors}
        usd = {usd}
        """}


def test_usd_budget_over_an_unpriced_target_is_a_config_error(tmp_path):
    out = check_config(tmp_path, "", usd_budget())  # covers every alias, `demo` routes to mock/mock-1
    assert out.returncode == 1
    assert "config error:" in out.stderr and "budgets.toml: budgets[0]: expected" in out.stderr
    assert "'demo'" in out.stderr and "mock/mock-1" in out.stderr and '[pricing."*"]' in out.stderr


def test_usd_budget_over_an_unpriced_fallback_is_a_config_error(tmp_path):
    extra = '[models.safe]\ntargets = [{ provider = "up", model = "gpt-4o-mini" }]\nfallbacks = ["demo"]\n'
    out = check_config(tmp_path, extra, usd_budget('models = ["safe"]'))
    assert out.returncode == 1 and "'safe'" in out.stderr and "mock/mock-1" in out.stderr


@pytest.mark.parametrize("extra, policies", [
    ('[pricing."*"]\ninput = 1.0\noutput = 2.0\n', usd_budget()),  # a price for everything else
    ('[pricing.mock-1]\ninput = 1.0\noutput = 2.0\n', usd_budget()),  # the one unpriced model priced
    ("", usd_budget('models = ["gpt"]')),  # priced by the default table
    ("", usd_budget(usd=0.0)),  # a budget of 0 refuses everything it covers, prices or not
    ("", {"budgets.toml": '[[budgets]]\nscope = "team"\ntokens = 1000\n'}),  # tokens need no price
], ids=["star", "model", "default-table", "zero", "tokens"])
def test_usd_budgets_that_can_price_every_target_load(tmp_path, extra, policies):
    out = check_config(tmp_path, extra, policies)
    assert out.returncode == 0, out.stderr


def test_n_choices_reserve_max_tokens_for_each_choice(make_gateway, upstream, servers, store_url):
    """`n = 3` can bring back three answers of max_tokens each: the reservation covers all of them."""
    n = 3
    per_request = PROMPT + n * OUT
    limit = 2 * per_request + per_request // 2  # two such requests; six if one choice were reserved
    gw = make_gateway(extra=MODELS + f'[store]\nurl = "{store_url}"\n', policies={"budgets.toml": f"""
        [[budgets]]
        id = "alias-tokens"
        scope = "key"
        tokens = {limit}
        window = "day"
        """})
    statuses = burst(servers, upstream, [gw.url], "chat", 8, reply=lambda hold: answer(PROMPT, n * OUT, hold), n=n)
    assert statuses.count(200) == 2, statuses
    spent, _ = budget_use(gw.url, "alias-tokens")
    assert spent == 2 * per_request <= limit
