"""Property: for any interleaving of reserve, settle and time passing, the limiter admits no more than
its limit allows (GCRA: at most limit + limit * w / period units over any interval w, net of
refunds), and refuses only when a leaky bucket of capacity `limit` would overflow. Both stores."""

from __future__ import annotations

import asyncio
import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.store.base import RateAdjust, RateOp
from gateway.store.memory import MemoryStore
from tests.conftest_redis import redis_server  # noqa: F401  (also a suite plugin)

T0 = 1_700_000_000_000.0
_ids = itertools.count()

actions = st.lists(
    st.one_of(
        st.tuples(st.just("reserve"), st.integers(1, 12)),
        st.tuples(st.just("settle"), st.integers(0, 1000), st.integers(0, 16)),
        st.tuples(st.just("wait"), st.integers(0, 1500)),
    ),
    max_size=50,
)


async def _run(store, limit: int, period: float, steps) -> None:
    key = f"gw:{{prop:{next(_ids)}}}"
    now = T0
    level, last = 0.0, T0  # reference leaky bucket
    pending: list[int] = []
    events: list[tuple[float, float]] = []  # (time, +admitted units or -refunded units)
    for step in steps:
        if step[0] == "wait":
            now += step[1]
            continue
        level = max(0.0, level - (now - last) * limit / period)
        last = now
        if step[0] == "reserve":
            cost = step[1]
            r = (await store.reserve([RateOp(key, limit, period, cost)], now))[0]
            if abs(level + cost - limit) > 1e-6:  # away from the exact boundary: same decision
                assert r.ok == (level + cost <= limit), (level, cost, limit)
            if r.ok:
                level += cost
                pending.append(cost)
                events.append((now, cost))
        elif pending:
            cost = pending.pop(step[1] % len(pending))
            actual = step[2]
            await store.settle([RateAdjust(key, limit, period, actual - cost)], now)
            if actual < cost:
                level = max(0.0, level - (cost - actual))
                events.append((now, -(cost - actual)))
            else:
                level += actual - cost
    for i, (t1, _) in enumerate(events):
        net = 0.0
        for t2, units in events[i:]:
            net += units
            assert net <= limit + limit * (t2 - t1) / period + 1e-6


@pytest.mark.parametrize("kind", ["memory", "redis"])
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(limit=st.integers(1, 20), period=st.sampled_from([1000.0, 60_000.0, 7_000.0]), steps=actions)
def test_limiter_never_admits_more_than_the_limit(kind, redis_server, limit, period, steps):  # noqa: F811
    if kind == "memory":
        asyncio.run(_run(MemoryStore(), limit, period, steps))
        return
    from gateway.store.redis_store import RedisStore

    store = RedisStore.from_url(redis_server.url)

    async def main():
        try:
            await _run(store, limit, period, steps)
        finally:
            await store.close()

    asyncio.run(main())
