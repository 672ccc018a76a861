"""The canary's choice and its rollback rule, with literal requests and outcomes, on both stores."""

from __future__ import annotations

import asyncio
import random

import pytest

from gateway.config.schema import CanaryConfig
from gateway.context import Principal, RequestContext
from gateway.routing.canary import Canary
from tests.conftest_redis import store  # noqa: F401  (the same body on memory and Redis)


def cfg(**kw) -> CanaryConfig:
    return CanaryConfig(target={"provider": "new", "model": "m2"}, **kw)


def ctx(key_id: str = "k", tags: tuple[str, ...] = ()) -> RequestContext:
    c = RequestContext("r", "chat", "openai", None, 0.0, "t", "s")  # type: ignore[arg-type]
    c.principal = Principal(key_id=key_id)
    c.tags = tags
    return c


def test_share_keys_and_tags_choose_the_candidate():
    c = Canary("a", cfg(share=0.25, keys=["beta-key"], tags=["beta"], max_error_rate=0.5))
    rng = random.Random(1)
    picked = sum(c.chosen(ctx(), rng) for _ in range(20_000))
    assert abs(picked / 20_000 - 0.25) < 0.015
    assert all(c.chosen(ctx("beta-key"), rng) for _ in range(100))
    assert all(c.chosen(ctx(tags=("x", "beta")), rng) for _ in range(100))
    none = Canary("a", cfg(keys=["beta-key"], max_error_rate=0.5))
    assert not any(none.chosen(ctx(), rng) for _ in range(1000))


async def test_a_flag_is_set_once_and_read_back(store):  # noqa: F811
    assert await store.get_flag("canary:x") is None
    assert await store.set_flag("canary:x", "first") is True
    assert await store.set_flag("canary:x", "second") is False
    assert await store.get_flag("canary:x") == "first"


async def test_error_rate_past_the_bound_rolls_back_and_every_instance_sees_it(store):  # noqa: F811
    one = Canary("a", cfg(share=1, max_error_rate=0.3, min_requests=10, check_s=0.001))
    other = Canary("a", cfg(share=1, max_error_rate=0.3, min_requests=10, check_s=0.001))
    assert await one.live(store) and await other.live(store)
    for i in range(9):
        one.observe(i % 2 == 0, 0.01)  # 4 of 9 failed, but fewer than min_requests seen
    assert not one.rolled_back
    one.observe(False, 0.01)  # 5 of 10 > 0.3
    assert one.rolled_back and "error rate 0.50" in one.reason
    for task in list(one._tasks):
        await task
    await asyncio.sleep(0.01)  # past the other instance's check_s
    assert not await other.live(store) and other.rolled_back and "error rate" in other.reason
    assert other.snapshot()["rolled_back"] == 1 and other.snapshot()["rollbacks"] == 0


def test_p95_past_the_bound_rolls_back_and_below_it_does_not():
    c = Canary("a", cfg(share=1, max_p95_ms=200, min_requests=20))
    for _ in range(19):
        c.observe(True, 0.05)
    c.observe(True, 0.9)  # one slow request in twenty is the 95th percentile's limit: not past it
    assert not c.rolled_back
    c.observe(True, 0.9)
    assert c.rolled_back and "p95" in c.reason
