"""USD budgets hold on the new surfaces under concurrency: 50 concurrent legacy completions (n and
best_of multiply the reservation) pass only as many as the budget covers at the worst price, and
moderations and token counting (free) are never refused by a USD budget that is spent. openai /
anthropic SDKs over real sockets; the fake upstream holds its answers until every request was admitted
or refused, so no settlement frees room during the burst."""

from __future__ import annotations

import asyncio
import time

import anthropic
import openai
import orjson
import pytest

from gateway.apis.registry import APIS
from gateway.pricing import Pricing
from gateway.tokens import Tokenizer
from tests.integration.test_budget_aliases import budget, budget_use
from tests.security.test_records_every_surface import EXTRA
from tests.support.fake_upstream import Reply
from tests.support.gateway import TEST_KEY

PRICES = Pricing.compile({})
MODEL = "gpt-3.5-turbo-instruct"
OUT = 40
BODY = {"model": "instruct", "prompt": "Write a haiku about budgets", "max_tokens": OUT, "n": 2}
PROMPT = APIS["completions"].count_prompt(BODY, MODEL, Tokenizer())
WORST = PRICES.estimate_usd(MODEL, PROMPT, OUT * 2)  # n = 2 answers of max_tokens each


def _answer(hold: asyncio.Event) -> Reply:
    usage = {"prompt_tokens": PROMPT, "completion_tokens": OUT * 2, "total_tokens": PROMPT + OUT * 2}
    choices = [{"text": "x", "index": i, "logprobs": None, "finish_reason": "length"} for i in range(2)]
    return Reply(body=orjson.dumps({"id": "cmpl-1", "object": "text_completion", "created": 1, "model": MODEL,
                                    "choices": choices, "usage": usage}), hold=hold)


def test_fifty_concurrent_completions_never_overshoot_a_usd_budget(make_gateway, upstream, servers, store_url):
    limit = 3.5 * WORST
    gw = make_gateway(extra=EXTRA.format(up=upstream.url) + f'[store]\nurl = "{store_url}"\n',
                      policies=budget(limit, ["instruct", "mod", "claude"]))
    hold = asyncio.Event()
    upstream.push(*(_answer(hold) for _ in range(50)))
    seen = len(upstream.requests)

    async def run() -> list[int]:
        client = openai.AsyncOpenAI(base_url=gw.v1, api_key=TEST_KEY, max_retries=0)

        async def one() -> int:
            try:
                await client.completions.create(**BODY)
                return 200
            except openai.RateLimitError:
                return 429

        tasks = [asyncio.create_task(one()) for _ in range(50)]
        deadline = time.monotonic() + 60
        while len(upstream.requests) - seen + sum(t.done() for t in tasks) < 50:
            assert time.monotonic() < deadline, "requests neither reached the upstream nor were refused"
            await asyncio.sleep(0.01)
        servers.loop.call_soon_threadsafe(hold.set)
        out = await asyncio.gather(*tasks)
        await client.close()
        return out

    try:
        statuses = asyncio.run(run())
    finally:
        upstream.script.clear()
    assert statuses.count(200) == 3 and statuses.count(429) == 47, statuses
    spent, reserved = budget_use(gw.url)
    assert reserved == pytest.approx(0, abs=1e-12) and spent <= limit
    assert spent == pytest.approx(3 * PRICES.estimate_usd(MODEL, PROMPT, OUT * 2))
    # The budget is nearly spent: free calls still pass, and cost nothing.
    oa = openai.OpenAI(base_url=gw.v1, api_key=TEST_KEY, max_retries=0)
    assert oa.moderations.create(model="mod", input="hello").results
    an = anthropic.Anthropic(base_url=gw.url, api_key=TEST_KEY, max_retries=0)
    assert an.messages.count_tokens(model="claude", messages=[{"role": "user", "content": "hi"}]).input_tokens == 42
    assert budget_use(gw.url)[0] == pytest.approx(spent)
