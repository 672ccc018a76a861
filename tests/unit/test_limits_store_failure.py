"""Redis going away and coming back: fail closed (503) or open (served and counted), then recover.
Also the cached revocation check the auth stage calls."""

from __future__ import annotations

import asyncio

import pytest

from gateway import reasons
from gateway.config.validate import SourcedRule
from gateway.context import Principal, RequestContext, Usage
from gateway.errors import RateLimited, StoreUnavailable
from gateway.limits import Limits
from gateway.pricing import Pricing
from gateway.store import MemoryStore, RevocationCache, open_store
from tests.conftest_redis import RedisServer, store  # noqa: F401  (also a suite plugin)
from tests.conftest_redis import redis_server, redis_url  # noqa: F401

_n = 0


def make_ctx() -> RequestContext:
    global _n
    _n += 1
    return RequestContext(request_id=f"f-{_n}", api="chat", shape="openai", runtime=None, received_at=0.0,
                          trace_id="t", span_id="s", principal=Principal("k1"), alias="gpt-4o")  # fmt: skip


@pytest.fixture
def own_redis():
    server = RedisServer().start()
    yield server
    server.close()


async def _limits(url: str, mode: str) -> tuple[Limits, object]:
    rule = [SourcedRule("p.toml", "rate_limits[0]", {"scope": "key", "rpm": 3, "concurrency": 10})]
    lim = await asyncio.to_thread(
        Limits.compile, rule, [], Pricing.compile({}), on_store_error=mode, retry_store_after_s=0.05
    )
    store = await asyncio.to_thread(open_store, url, socket_timeout=0.2, connect_timeout=0.2)
    store.retry_after_s = 0.05  # the store's own down-window (shared by every check), short like the limits'
    await lim.start(store)
    return lim, store


async def test_redis_killed_fail_closed_then_recovers(own_redis):
    lim, store = await _limits(own_redis.url, "closed")
    try:
        await lim.admit(make_ctx(), 1, 1)
        own_redis.stop()
        ctx = make_ctx()
        with pytest.raises(StoreUnavailable) as exc:
            await lim.admit(ctx, 1, 1)
        assert exc.value.status == 503 and ctx.decisions[-1].reason == reasons.STORE_UNAVAILABLE
        own_redis.start()
        await asyncio.sleep(0.1)
        await lim.admit(make_ctx(), 1, 1)  # reconnected; the restarted server lost its scripts and state
        assert lim.fail_open_total == 0
    finally:
        await store.close()


async def test_redis_killed_fail_open_serves_counts_and_recovers(own_redis):
    lim, store = await _limits(own_redis.url, "open")
    try:
        first = make_ctx()
        await lim.admit(first, 1, 1)
        own_redis.stop()
        served = []
        for _ in range(5):  # the per-process fallback limiter still applies the rule: 3 rpm
            ctx = make_ctx()
            try:
                await lim.admit(ctx, 1, 1)
                served.append(ctx)
            except RateLimited:
                pass
        assert len(served) == 3 and lim.fail_open_total == 3
        assert served[0].decisions[-1].reason == reasons.STORE_FAIL_OPEN
        for ctx in [first, *served]:
            ctx.usage = Usage(1, 1)
            await lim.settle(ctx)  # the Redis one fails quietly (its slot expires by TTL)
        own_redis.start()
        await asyncio.sleep(0.1)
        ctx = make_ctx()
        await lim.admit(ctx, 1, 1)
        assert lim.fail_open_total == 3 and not ctx.decisions
    finally:
        await store.close()


async def test_revocation_cache_queries_at_most_once_per_ttl(store):
    calls = 0
    real = store.is_revoked

    async def counting(key_id):
        nonlocal calls
        calls += 1
        return await real(key_id)

    store.is_revoked = counting
    cache = RevocationCache(store, ttl=0.2)
    assert not await cache.is_revoked("k1")
    await store.revoke_key("k1")
    for _ in range(10):
        assert not await cache.is_revoked("k1")  # cached for up to ttl
    assert calls == 1
    await asyncio.sleep(0.25)
    assert await cache.is_revoked("k1")
    assert calls == 2


async def test_revocation_cache_when_the_store_is_down(own_redis):
    store = await asyncio.to_thread(open_store, own_redis.url)
    try:
        own_redis.stop()
        with pytest.raises(StoreUnavailable):
            await RevocationCache(store, on_store_error="closed").is_revoked("k1")
        cache = RevocationCache(store, on_store_error="open")
        assert not await cache.is_revoked("k1") and cache.fail_open_total == 1
    finally:
        await store.close()


def test_open_store_urls():
    assert isinstance(open_store("memory://"), MemoryStore)
    with pytest.raises(ValueError, match="scheme"):
        open_store("mongodb://x")


async def test_redis_killed_between_the_two_admission_phases_fail_open_settles_each_where_reserved(own_redis):
    """Under a [[cache]] rule the flow admits rps/rpm/concurrency before the lookup and tpm/budgets after a
    miss. Redis dying in between: the second phase fails open into the per-process store, and one settle
    gives back the concurrency slot in Redis (once it is back) and the tokens in the fallback."""
    rules = [SourcedRule("p.toml", "rate_limits[0]", {"scope": "key", "concurrency": 1, "tpm": 1000})]
    lim = await asyncio.to_thread(Limits.compile, rules, [], Pricing.compile({}), on_store_error="open",
                                  retry_store_after_s=0.05)
    store = await asyncio.to_thread(open_store, own_redis.url, socket_timeout=0.2, connect_timeout=0.2)
    store.retry_after_s = 0.05
    await lim.start(store)
    try:
        ctx = make_ctx()
        await lim.admit(ctx, 100, 100, requests=True, tokens=False)
        own_redis.stop()
        await lim.admit(ctx, 100, 100, requests=False, tokens=True)
        first, second = ctx.admission, ctx.admission.then
        assert second is not None and second.fail_open and not first.fail_open
        assert [m[1].kind for m in first.metas] == ["concurrency"] and [m[1].kind for m in second.metas] == ["tpm"]
        own_redis.start()
        await asyncio.sleep(0.1)
        ctx.usage = Usage(10, 10)
        await lim.settle(ctx)
        assert first.settled and second.settled
    finally:
        await store.close()
