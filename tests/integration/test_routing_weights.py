"""Weighted spread across an alias's targets: the draw itself with a seeded generator over a large
sample, and requests through the gateway, checked loosely."""

from __future__ import annotations

import random
from collections import Counter

import httpx

from gateway.context import Target
from gateway.routing.backoff import RetryPolicy
from gateway.routing.router import Route, Router
from tests.support.gateway import TEST_KEY


def route(*weights: float) -> Route:
    targets = tuple(Target("a", "p", f"m{i}") for i in range(len(weights)))
    return Route("a", targets, weights, (), len(weights), RetryPolicy())


def test_first_target_is_drawn_in_proportion_to_weight_and_the_rest_follow_without_replacement():
    router = Router({}, {}, {}, rng=random.Random(20251126))
    r = route(6, 3, 1)
    n = 30_000
    orders = [router.order(r) for _ in range(n)]
    assert all(sorted(t.model for t in o) == ["m0", "m1", "m2"] for o in orders)
    first = Counter(o[0].model for o in orders)
    for model, share in (("m0", 0.6), ("m1", 0.3), ("m2", 0.1)):
        assert abs(first[model] / n - share) < 0.015, (model, first[model] / n)
    # Without replacement: after m0 comes m1 with probability 3 / (3 + 1).
    after_m0 = Counter(o[1].model for o in orders if o[0].model == "m0")
    assert abs(after_m0["m1"] / sum(after_m0.values()) - 0.75) < 0.02


def test_requests_spread_by_weight_through_the_gateway(make_gateway):
    gw = make_gateway(extra="""
[models.spread]
targets = [{ provider = "mock", model = "heavy", weight = 3 }, { provider = "mock", model = "light", weight = 1 }]
""")
    gw.state.runtime.router.rng = random.Random(7)
    body = {"model": "spread", "messages": [{"role": "user", "content": "hi"}]}
    seen: Counter[str] = Counter()
    with httpx.Client(headers={"authorization": f"Bearer {TEST_KEY}"}) as c:
        for _ in range(400):
            r = c.post(gw.v1 + "/chat/completions", json=body)
            assert r.status_code == 200 and r.headers["x-gateway-attempts"] == "1"
            seen[r.headers["x-gateway-model"]] += 1
    assert 250 <= seen["heavy"] <= 350, seen  # expected 300, sd about 9
