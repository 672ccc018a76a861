"""The Store protocol's counters, one body per behaviour, run on the memory store and on real Redis."""

from __future__ import annotations

import asyncio

import pytest

from gateway.store.base import (
    NEVER,
    BudgetOp,
    BudgetSettle,
    RateAdjust,
    RateOp,
    SlotOp,
    SlotRelease,
)
from tests.conftest_redis import redis_server, redis_url, store  # noqa: F401  (also a suite plugin)

T0 = 1_700_000_000_000.0  # unix ms
MIN = 60_000.0


async def test_gcra_burst_equals_limit_then_one_per_interval(store):
    op = RateOp("gw:{t:rpm}", 5, MIN, 1)
    got = [(await store.reserve([op], T0))[0] for _ in range(6)]
    assert [r.ok for r in got] == [True] * 5 + [False]
    assert [r.remaining for r in got[:5]] == [4, 3, 2, 1, 0]
    assert got[5].retry_ms == pytest.approx(12_000)  # period / limit
    assert not (await store.reserve([op], T0 + 11_999))[0].ok
    assert (await store.reserve([op], T0 + 12_000))[0].ok
    assert not (await store.reserve([op], T0 + 12_001))[0].ok


async def test_cost_above_limit_never_fits(store):
    r = (await store.reserve([RateOp("gw:{t:big}", 100, MIN, 101)], T0))[0]
    assert not r.ok and r.retry_ms == NEVER


async def test_reserve_is_all_or_nothing(store):
    a = RateOp("gw:{t:a}", 10, MIN, 1)
    b = RateOp("gw:{t:b}", 1, MIN, 1)
    assert all(r.ok for r in await store.reserve([a, b], T0))
    got = await store.reserve([a, b], T0)
    assert got[0].ok and not got[1].ok
    # a was not charged by the refused call: 9 more fit, not 8
    assert [(await store.reserve([a], T0))[0].ok for _ in range(10)] == [True] * 9 + [False]


async def test_token_refund_and_debt(store):
    key = "gw:{t:tpm}"
    assert (await store.reserve([RateOp(key, 1000, MIN, 800)], T0))[0].ok
    assert not (await store.reserve([RateOp(key, 1000, MIN, 300)], T0))[0].ok
    await store.settle([RateAdjust(key, 1000, MIN, -600)], T0)  # used 200 of 800
    r = (await store.reserve([RateOp(key, 1000, MIN, 800)], T0))[0]
    assert r.ok and r.remaining == 0
    await store.settle([RateAdjust(key, 1000, MIN, 500)], T0)  # used 500 more than reserved
    r = (await store.reserve([RateOp(key, 1000, MIN, 1)], T0))[0]
    assert not r.ok and r.retry_ms == pytest.approx(500 * 60 + 60)


async def test_concurrency_slots_release_and_expire(store):
    key = "gw:{t:cc}"
    ops = [SlotOp(key, 2, 10_000, f"r{i}") for i in range(3)]
    assert (await store.reserve([ops[0]], T0))[0].ok
    assert (await store.reserve([ops[1]], T0))[0].ok
    assert not (await store.reserve([ops[2]], T0))[0].ok
    await store.settle([SlotRelease(key, "r0")], T0)
    assert (await store.reserve([ops[2]], T0))[0].ok
    # r1 and r2 were never released (a crashed gateway): their TTL frees them
    assert not (await store.reserve([SlotOp(key, 2, 10_000, "r3")], T0 + 9_999))[0].ok
    assert (await store.reserve([SlotOp(key, 2, 10_000, "r3")], T0 + 10_001))[0].ok


async def test_budget_reserve_settle_and_window_end(store):
    key = "gw:{t:bg:2023-11}"
    end = T0 + 3_600_000
    op = lambda rid, amount: BudgetOp(key, 10.0, amount, rid, 60_000, end, 0)  # noqa: E731
    assert (await store.reserve([op("a", 6.0)], T0))[0].ok
    r = (await store.reserve([op("b", 6.0)], T0))[0]
    assert not r.ok and r.remaining == pytest.approx(4.0) and r.retry_ms == pytest.approx(3_600_000)
    await store.settle([BudgetSettle(key, "a", 1.5, end, 0)], T0)
    assert (await store.reserve([op("b", 6.0)], T0))[0].ok
    assert not (await store.reserve([op("c", 2.6)], T0))[0].ok
    assert (await store.reserve([op("c", 2.5)], T0))[0].ok
    assert await store.budget_usage(key, 0, T0) == (pytest.approx(1.5), pytest.approx(8.5))


async def test_budget_zero_blocks_everything(store):
    r = (await store.reserve([BudgetOp("gw:{t:zero}", 0.0, 0.0, "a", 60_000, T0 + 1, 0)], T0))[0]
    assert not r.ok and r.retry_ms == NEVER


async def test_budget_reservation_of_a_crashed_gateway_expires(store):
    key = "gw:{t:bgttl}"
    assert (await store.reserve([BudgetOp(key, 10, 10, "a", 5_000, T0 + 3_600_000, 0)], T0))[0].ok
    assert not (await store.reserve([BudgetOp(key, 10, 1, "b", 5_000, T0 + 3_600_000, 0)], T0 + 4_999))[0].ok
    assert (await store.reserve([BudgetOp(key, 10, 1, "b", 5_000, T0 + 3_600_000, 0)], T0 + 5_001))[0].ok
    assert await store.budget_usage(key, 0, T0 + 5_001) == (0, pytest.approx(1))


async def test_rolling_budget_forgets_old_spend(store):
    key, day = "gw:{t:roll}", 86_400_000.0
    op = lambda rid, now_amount: BudgetOp(key, 100, now_amount, rid, 60_000, 0, day)  # noqa: E731
    assert (await store.reserve([op("a", 80)], T0))[0].ok
    await store.settle([BudgetSettle(key, "a", 80, 0, day)], T0)
    r = (await store.reserve([op("b", 30)], T0 + day / 2))[0]
    assert not r.ok and 0 < r.retry_ms <= day / 2 + day / 60 + 1
    # Spend leaves the window one bucket (period / 60) late at most, never early.
    assert not (await store.reserve([op("b", 30)], T0 + day - 1))[0].ok
    assert (await store.reserve([op("b", 30)], T0 + day + day / 30))[0].ok


async def test_revocation(store):
    assert not await store.is_revoked("k1")
    await store.revoke_key("k1")
    assert await store.is_revoked("k1")
    await store.unrevoke_key("k1")
    assert not await store.is_revoked("k1")


async def test_redis_split_by_slot_releases_where_a_later_group_refuses(redis_url):
    from gateway.store.redis_store import RedisStore

    store = await asyncio.to_thread(RedisStore.from_url, redis_url, split_by_slot=True)
    try:
        a = RateOp("gw:{t:s1}", 10, MIN, 1)
        b = BudgetOp("gw:{t:s2}", 1.0, 1.0, "x", 60_000, T0 + MIN, 0)
        assert all(r.ok for r in await store.reserve([a, b], T0))
        before = store.round_trips
        got = await store.reserve([a, BudgetOp("gw:{t:s2}", 1.0, 1.0, "y", 60_000, T0 + MIN, 0)], T0)
        assert got[0].ok and not got[1].ok
        assert store.round_trips - before == 2  # one pipeline, one release
        # the refused call gave a's unit back: 9 left, not 8
        assert [(await store.reserve([a], T0))[0].ok for _ in range(10)] == [True] * 9 + [False]
    finally:
        await store.close()
