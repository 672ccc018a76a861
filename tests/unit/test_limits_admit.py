"""The Limits facade: rules, scopes, budgets, headers and refusals, on the memory store and Redis."""

from __future__ import annotations

import asyncio
import random
import time

import pytest

from gateway import reasons
from gateway.apis.registry import APIS
from gateway.config.validate import ConfigError, SourcedRule
from gateway.context import Principal, RequestContext, Target, Usage
from gateway.errors import RateLimited
from gateway.limits import Limits
from gateway.pricing import Pricing
from gateway.tokens import Tokenizer
from tests.conftest_redis import redis_server, redis_url, store  # noqa: F401  (also a suite plugin)

tokens = Tokenizer()  # counts as the gateway's own tokenizer makes them

_n = 0


def make_ctx(key="k1", team="t1", user=None, alias="gpt-4o", tags=(), ptags=()) -> RequestContext:
    global _n
    _n += 1
    return RequestContext(
        request_id=f"req-{_n}", api="chat", shape="openai", runtime=None, received_at=0.0, trace_id="t",
        span_id="s", principal=Principal(key, team=team, user=user, tags=ptags), alias=alias, tags=tags,
    )  # fmt: skip


class Clock:
    def __init__(self, t: float = 1_700_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def rules(kind: str, *tables: dict) -> list[SourcedRule]:
    return [SourcedRule("policies/limits.toml", f"{kind}[{i}]", t) for i, t in enumerate(tables)]


async def make_limits(store, rate=(), budgets=(), **opts) -> Limits:
    # Compiling reads time zone files: off the loop, as the config loader does.
    lim = await asyncio.to_thread(
        Limits.compile, rules("rate_limits", *rate), rules("budgets", *budgets), Pricing.compile({}), **opts
    )
    await lim.start(store)
    return lim


async def admitted(lim: Limits, ctx: RequestContext, inp: int = 10, out: int = 10) -> bool:
    try:
        await lim.admit(ctx, inp, out)
        return True
    except RateLimited:
        return False


async def test_200_concurrent_admits_against_50_rpm_admit_exactly_50(store):
    lim = await make_limits(store, [{"scope": "key", "rpm": 50}])
    got = await asyncio.gather(*(admitted(lim, make_ctx()) for _ in range(200)))
    assert sum(got) == 50


async def test_refusal_says_which_limit_and_when_with_retry_after(store):
    clock = Clock()
    lim = await make_limits(store, [{"id": "per-key", "scope": "key", "rpm": 2}], clock=clock)
    for _ in range(2):
        await lim.admit(make_ctx(), 1, 1)
    ctx = make_ctx()
    with pytest.raises(RateLimited) as exc:
        await lim.admit(ctx, 1, 1)
    err = exc.value
    assert err.status == 429 and err.headers["retry-after"] == "30"
    assert "rpm limit of 2" in err.message and "key 'k1'" in err.message and "per-key" in err.message
    assert err.reason == reasons.RATE_LIMIT_REQUESTS and ctx.decisions[-1].reason == reasons.RATE_LIMIT_REQUESTS
    assert err.headers["x-ratelimit-remaining-requests"] == "0"
    clock.t += 30
    assert await admitted(lim, make_ctx())


async def test_ratelimit_headers(store):
    lim = await make_limits(store, [{"scope": "key", "rpm": 60, "tpm": 1000}, {"scope": "global", "rpm": 1000}])
    ctx = make_ctx()
    await lim.admit(ctx, 100, 50)
    h = ctx.response_headers
    assert h["x-ratelimit-limit-requests"] == "60" and h["x-ratelimit-remaining-requests"] == "59"
    assert h["x-ratelimit-reset-requests"] == "1s"
    assert h["x-ratelimit-limit-tokens"] == "1000" and h["x-ratelimit-remaining-tokens"] == "850"


async def test_scopes_each_shared_and_selectors(store):
    lim = await make_limits(
        store,
        [
            {"scope": "team", "per": "each", "rpm": 1},
            {"scope": "key", "per": "shared", "keys": ["s1", "s2"], "rpm": 1},
            {"scope": "model", "models": ["gpt-4o-mini"], "rpm": 1},
        ],
    )
    assert await admitted(lim, make_ctx("a", team="red"))
    assert not await admitted(lim, make_ctx("b", team="red"))  # same team counter
    assert await admitted(lim, make_ctx("c", team="blue"))  # its own team counter
    assert await admitted(lim, make_ctx("d", team=None))  # no team: the team rule does not apply
    assert await admitted(lim, make_ctx("s1", team=None))
    assert not await admitted(lim, make_ctx("s2", team=None))  # shared with s1
    assert await admitted(lim, make_ctx("e", team=None, alias="gpt-4o-mini"))
    assert not await admitted(lim, make_ctx("f", team=None, alias="gpt-4o-mini"))


async def test_concurrency_slot_is_released_by_settle(store):
    lim = await make_limits(store, [{"scope": "user", "concurrency": 1}])
    first = make_ctx(user="u")
    await lim.admit(first, 1, 1)
    with pytest.raises(RateLimited) as exc:
        await lim.admit(make_ctx(user="u"), 1, 1)
    assert exc.value.reason == reasons.RATE_LIMIT_CONCURRENCY
    await lim.settle(first)
    await lim.settle(first)  # idempotent
    assert await admitted(lim, make_ctx(user="u"))


async def test_token_limit_reserves_estimate_and_settles_to_usage(store):
    lim = await make_limits(store, [{"scope": "key", "tpm": 1000}])
    ctx = make_ctx()
    await lim.admit(ctx, 200, 600)  # 800 reserved
    assert not await admitted(lim, make_ctx(), 100, 200)
    ctx.usage = Usage(input_tokens=180, output_tokens=20)
    await lim.settle(ctx)  # 200 used: 600 back
    assert await admitted(lim, make_ctx(), 100, 600)


async def test_default_max_output_tokens_is_reserved_when_request_sets_none(store):
    lim = await make_limits(store, [{"scope": "key", "tpm": 1000}], default_max_output_tokens=900)
    assert await admitted(lim, make_ctx(), 100, 0)
    assert not await admitted(lim, make_ctx(), 1, 0)


async def test_key_without_budget_is_never_blocked_and_zero_budget_blocks(store):
    lim = await make_limits(store, budgets=[{"scope": "key", "keys": ["poor"], "usd": 0.0}])
    for _ in range(20):
        assert await admitted(lim, make_ctx("rich"))
    ctx = make_ctx("poor")
    with pytest.raises(RateLimited) as exc:
        await lim.admit(ctx, 1, 1)
    assert exc.value.reason == reasons.BUDGET_USD and exc.value.code == "budget_exceeded"
    assert "retry-after" not in exc.value.headers


async def test_usd_budget_charges_cost_of_target_model(store):
    lim = await make_limits(store, budgets=[{"id": "team-day", "scope": "team", "usd": 0.01, "window": "day"}])
    ctx = make_ctx(alias="fast")
    await lim.admit(ctx, 100, 100)
    ctx.target = Target("fast", "openai", "gpt-4o")
    ctx.usage = Usage(input_tokens=1000, output_tokens=500)  # 0.0025 + 0.005 = 0.0075 USD
    await lim.settle(ctx)
    key = ctx.admission.ops[0].key
    assert (await store.budget_usage(key, 0, 0))[0] == pytest.approx(0.0075)
    ok = make_ctx(alias="gpt-4o")
    assert await admitted(lim, ok, 100, 100)  # 0.00125 estimated, 0.0025 left
    with pytest.raises(RateLimited) as exc:
        await lim.admit(make_ctx(alias="gpt-4o"), 1000, 100)  # 0.0035 estimated
    assert "USD 0.01 per day (UTC)" in exc.value.message and "team 't1'" in exc.value.message


async def test_tag_budget_each_charges_every_matching_tag(store):
    lim = await make_limits(store, budgets=[{"scope": "tag", "tags": ["a", "b"], "tokens": 100}])
    ctx = make_ctx(tags=("a", "x"), ptags=("b",))
    await lim.admit(ctx, 30, 30)
    assert {op.key.split(":")[3] for op in ctx.admission.ops} == {"b", "a"}
    assert not await admitted(lim, make_ctx(tags=("a",)), 30, 20)
    assert await admitted(lim, make_ctx(tags=("x",)), 90, 90)  # no matching tag: no budget


@pytest.mark.parametrize("overrun", [False, True])
async def test_budget_worst_case_overshoot_is_in_flight_excess_only(store, overrun):
    """spent <= limit + sum(max(0, actual - estimate)) over admitted requests; == 0 excess when
    estimates are upper bounds."""
    limit = 1000
    lim = await make_limits(store, budgets=[{"scope": "key", "tokens": limit, "window": "month"}])
    ctxs = [make_ctx() for _ in range(40)]
    ok = await asyncio.gather(*(admitted(lim, c, 60, 40) for c in ctxs))
    assert sum(ok) == 10
    rng = random.Random(7)
    excess = 0
    for c, passed in zip(ctxs, ok):
        if passed:
            actual = rng.randint(100, 160) if overrun else rng.randint(0, 100)
            excess += max(0, actual - 100)
            c.usage = Usage(input_tokens=actual, output_tokens=0)
            await lim.settle(c)
    key = next(c for c, p in zip(ctxs, ok) if p).admission.ops[0].key
    spent, reserved = await store.budget_usage(key, 0, 0)
    assert reserved == pytest.approx(0)
    assert spent <= limit + excess
    if not overrun:
        assert spent <= limit


async def test_one_settle_corrects_every_kind_of_counter(store):
    frozen = time.time()
    lim = await make_limits(
        store,
        [{"scope": "key", "rpm": 100, "tpm": 1000, "concurrency": 1}, {"scope": "global", "rps": 100}],
        budgets=[{"scope": "team", "tokens": 1000}, {"scope": "key", "usd": 1, "window": "rolling", "period": "1d"}],
        clock=lambda: frozen,  # tokens refill with time: 60 ms of a loaded machine gave one back ("1" != "0")
    )
    ctx = make_ctx()
    await lim.admit(ctx, 400, 400)
    assert len(ctx.admission.ops) == 6
    ctx.target = Target("gpt-4o", "openai", "gpt-4o")
    ctx.usage = Usage(100, 100)
    await lim.settle(ctx)
    budgets = [op for op in ctx.admission.ops if "{bg:" in op.key]
    assert await store.budget_usage(budgets[0].key, 0, 0) == (pytest.approx(200), pytest.approx(0))
    now = lim._clock() * 1000
    assert await store.budget_usage(budgets[1].key, 86_400_000, now) == (pytest.approx(0.00125), pytest.approx(0))
    nxt = make_ctx()
    await lim.admit(nxt, 400, 400)  # slot freed, 600 tokens back
    assert nxt.response_headers["x-ratelimit-remaining-tokens"] == "0"


async def test_usd_reservation_takes_the_highest_input_and_output_price_over_every_reachable_target(store):
    """The dearest input and the dearest output may come from different targets: the reservation covers both."""
    pricing = Pricing.compile({"in-heavy": {"input": 10.0, "output": 1.0}, "out-heavy": {"input": 1.0, "output": 10.0}})
    reach = {"chat": (Target("chat", "a", "in-heavy"), Target("backup", "b", "out-heavy"))}
    worst = (100 * 10.0 + 100 * 10.0) / 1e6
    lim = await asyncio.to_thread(Limits.compile, [], rules("budgets", {"scope": "key", "usd": 2.5 * worst}),
                                  pricing, reach=reach)  # fmt: skip
    await lim.start(store)
    first, second = make_ctx(alias="chat"), make_ctx(alias="chat")
    await lim.admit(first, 100, 100)
    await lim.admit(second, 100, 100)
    assert not await admitted(lim, make_ctx(alias="chat"), 100, 100)
    key = first.admission.ops[0].key
    assert await store.budget_usage(key, 0, 0) == (pytest.approx(0), pytest.approx(2 * worst))
    first.target = Target("chat", "a", "in-heavy")  # settled at the target that answered
    first.usage = Usage(100, 100)
    await lim.settle(first)
    assert await store.budget_usage(key, 0, 0) == (pytest.approx(0.0011), pytest.approx(worst))


def test_prompt_estimate_is_the_largest_count_over_the_reachable_targets_tokenizers():
    body = {"messages": [{"role": "user", "content": "東京の天気は今日とても良いです。" * 4}]}
    o200k, cl100k = APIS["chat"].count_prompt(body, "gpt-4o", tokens), APIS["chat"].count_prompt(body, "claude-sonnet-4", tokens)
    assert cl100k > o200k
    reach = {"gpt-4o": (Target("gpt-4o", "a", "gpt-4o"), Target("gpt-4o", "b", "claude-sonnet-4")),
             "only-4o": (Target("only-4o", "a", "gpt-4o"),)}
    lim = Limits.compile(rules("rate_limits", {"scope": "key", "tpm": 10**6}), [], Pricing.compile({}), reach=reach)
    ctx = make_ctx(alias="gpt-4o")
    ctx.body = body
    assert lim.estimate_prompt_tokens(ctx) == cl100k
    ctx.alias = "only-4o"
    assert lim.estimate_prompt_tokens(ctx) == o200k


def test_usd_budget_needs_a_price_for_every_reachable_target():
    reach = {"local": (Target("local", "ollama", "llama3"),), "gpt": (Target("gpt", "a", "gpt-4o"),)}
    with pytest.raises(ConfigError) as exc:
        Limits.compile([], rules("budgets", {"scope": "key", "usd": 1}), Pricing.compile({}), reach=reach)
    assert exc.value.file == "policies/limits.toml" and exc.value.key == "budgets[0]"
    assert "alias 'local' can reach ollama/llama3" in exc.value.expected
    Limits.compile([], rules("budgets", {"scope": "key", "usd": 1, "models": ["gpt"]}), Pricing.compile({}), reach=reach)
    Limits.compile([], rules("budgets", {"scope": "key", "usd": 1}), Pricing.compile({"*": {"input": 1, "output": 1}}),
                   reach=reach)  # fmt: skip


def test_bad_rules_fail_with_file_and_key():
    with pytest.raises(ConfigError) as exc:
        Limits.compile(rules("rate_limits", {"scope": "key", "rpm": 5, "burst": 3}), [], Pricing.compile({}))
    assert exc.value.key == "rate_limits[0].burst" and exc.value.file == "policies/limits.toml"
    with pytest.raises(ConfigError, match="rate_limits\\[0\\]"):
        Limits.compile(rules("rate_limits", {"scope": "key"}), [], Pricing.compile({}))
    with pytest.raises(ConfigError, match="exactly one of usd, tokens"):
        Limits.compile([], rules("budgets", {"scope": "key", "usd": 1, "tokens": 5}), Pricing.compile({}))
    with pytest.raises(ConfigError, match="timezone"):
        Limits.compile([], rules("budgets", {"scope": "key", "usd": 1, "timezone": "Mars/Base"}), Pricing.compile({}))
    with pytest.raises(ConfigError, match="duration"):
        Limits.compile([], rules("budgets", {"scope": "key", "usd": 1, "window": "rolling", "period": "7w"}),
                       Pricing.compile({}))  # fmt: skip
    with pytest.raises(ConfigError, match="unique rule id"):
        Limits.compile(rules("rate_limits", {"id": "x", "scope": "key", "rpm": 1}, {"id": "x", "scope": "key", "rpm": 1}),
                       [], Pricing.compile({}))  # fmt: skip


def test_calendar_windows_follow_the_time_zone():
    lim = Limits.compile([], rules("budgets", {"scope": "key", "usd": 1, "window": "day", "timezone": "Asia/Tokyo"},
                                   {"scope": "key", "usd": 1, "window": "month", "timezone": "Europe/Berlin"}),
                         Pricing.compile({}))  # fmt: skip
    day, month = lim._budgets
    # 2024-03-31T15:30Z is 00:30 on April 1st in Tokyo, 17:30 on March 31st (CEST) in Berlin.
    now = 1711899000_000.0
    assert day.window_at(now) == ("2024-04-01", 1711983600_000.0)  # Tokyo midnight = 15:00Z
    assert month.window_at(now) == ("2024-03", 1711922400_000.0)  # April 1st 00:00 CEST = 22:00Z


async def test_redis_one_round_trip_each_way(redis_url):
    from gateway.store.redis_store import RedisStore

    store = await asyncio.to_thread(RedisStore.from_url, redis_url)
    try:
        lim = await make_limits(store, [{"scope": "key", "rpm": 100, "tpm": 10_000, "concurrency": 5},
                                        {"scope": "global", "rps": 100}],
                                budgets=[{"scope": "team", "usd": 5}, {"scope": "key", "tokens": 10**6, "window": "rolling", "period": "1d"}])  # fmt: skip
        ctx = make_ctx()
        await lim.admit(ctx, 10, 10)  # loads the scripts on first use
        ctx.usage = Usage(5, 5)
        await lim.settle(ctx)
        before = store.round_trips
        ctx = make_ctx()
        await lim.admit(ctx, 10, 10)
        assert store.round_trips - before == 1
        ctx.usage = Usage(5, 5)
        await lim.settle(ctx)
        assert store.round_trips - before == 2
    finally:
        await store.close()


async def test_settle_after_an_operator_flushed_the_scripts_still_frees_the_slot(redis_url):  # noqa: F811
    # The settle is written without waiting for its reply; a NOSCRIPT reply (scripts flushed while the
    # connection stayed up) is answered by loading the script and settling again in the background.
    from gateway.store import open_store
    from gateway.store.resp import RespClient

    s = await asyncio.to_thread(open_store, redis_url)
    admin = RespClient(redis_url)
    try:
        lim = await make_limits(s, [{"scope": "user", "concurrency": 1}])
        first = make_ctx(user="flush")
        await lim.admit(first, 1, 1)
        assert await admin.pipeline([("SCRIPT", "FLUSH")]) == [b"OK"]
        await lim.settle(first)
        for _ in range(100):
            if await admitted(lim, make_ctx(user="flush")):
                break
            await asyncio.sleep(0.01)
        else:
            raise AssertionError("the slot was never released after NOSCRIPT")
    finally:
        await admin.close()
        await s.close()


async def test_two_phases_reserve_request_limits_then_token_limits_and_settle_both(store):
    """The flow's order under a [[cache]] rule (gateway.http.flow): rps, rpm and concurrency before the
    lookup, tpm and budgets only for a miss; one settle gives back what both phases reserved."""
    lim = await make_limits(store, [{"scope": "key", "rpm": 100, "tpm": 1000, "concurrency": 1}],
                            budgets=[{"scope": "key", "tokens": 1000}])
    ctx = make_ctx()
    await lim.admit(ctx, 400, 400, requests=True, tokens=False)
    assert sorted(m[1].kind for m in ctx.admission.metas) == ["concurrency", "rpm"]
    assert not await admitted(lim, make_ctx())  # the hit's concurrency slot is held
    await lim.admit(ctx, 400, 400, requests=False, tokens=True)
    assert len(ctx.admission.ops) == 4 and ctx.admission.tokens == 800
    ctx.usage = Usage(100, 100)
    await lim.settle(ctx)
    budget = next(op for op in ctx.admission.ops if "{bg:" in op.key)
    assert await store.budget_usage(budget.key, 0, 0) == (pytest.approx(200), pytest.approx(0))
    hit = make_ctx()
    await lim.admit(hit, 900, 900, requests=True, tokens=False)  # the slot is free; no tokens asked for
    with pytest.raises(RateLimited) as err:
        await lim.admit(hit, 900, 900, requests=False, tokens=True)  # a miss's 1800 do not fit
    assert err.value.code in ("rate_limit_exceeded", "budget_exceeded")
    await lim.settle(hit)  # the first phase's slot goes back although the second was refused
    await lim.admit(make_ctx(), 1, 1)
