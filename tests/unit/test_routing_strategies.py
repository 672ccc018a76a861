"""Each routing strategy ranks literal targets by literal measurements; the config names them."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from gateway.config.schema import ModelConfig
from gateway.config.validate import ConfigError
from gateway.context import Target
from gateway.pricing import Pricing
from gateway.routing.router import Router
from gateway.routing.stats import TargetStats
from gateway.routing.strategies.cost import Cost
from gateway.routing.strategies.least_busy import LeastBusy
from gateway.routing.strategies.least_latency import LeastLatency

A, B, C = (Target("x", "p", m) for m in ("a", "b", "c"))
TARGETS = (A, B, C)
WEIGHTS = (1.0, 1.0, 1.0)


def stats_of(table: dict[str, TargetStats]):
    return lambda t: table.setdefault(t.model, TargetStats())


def measured(*ewmas: float | None) -> dict[str, TargetStats]:
    out = {}
    for t, e in zip(TARGETS, ewmas):
        s = TargetStats()
        if e is not None:
            s.observe(e)
        out[t.model] = s
    return out


def test_least_latency_ranks_by_moving_average_and_tries_unmeasured_targets_first():
    s = LeastLatency(ModelConfig(targets=[{"provider": "p", "model": "a"}], explore=0.0))
    rng = random.Random(1)
    assert s.order(TARGETS, WEIGHTS, stats_of(measured(0.3, 0.1, 0.2)), rng) == [B, C, A]
    assert s.order(TARGETS, WEIGHTS, stats_of(measured(0.3, 0.1, None)), rng) == [C, B, A]


def test_least_latency_explores_in_the_configured_share():
    s = LeastLatency(ModelConfig(targets=[{"provider": "p", "model": "a"}], explore=0.3))
    rng = random.Random(2)
    table = measured(0.5, 0.01, 0.9)
    first = Counter(s.order(TARGETS, WEIGHTS, stats_of(table), rng)[0].model for _ in range(20_000))
    # Exploring (30%) picks uniformly: the slow ones get 10% each, the fast one 70% + 10%.
    assert abs(first['b'] / 20_000 - 0.8) < 0.015 and abs(first['a'] / 20_000 - 0.1) < 0.01, first


def test_moving_average_follows_new_samples_and_a_failure_counts_as_slow():
    s = TargetStats()
    s.observe(1.0)
    s.observe(0.0)
    assert s.ewma_s == pytest.approx(0.7)
    fast = TargetStats()
    fast.observe(0.01)
    fast.observe_failure(0.001)  # failed at once: counted as at least a second, not as fast
    assert fast.ewma_s is not None and fast.ewma_s > 0.3


def test_least_busy_ranks_by_in_flight():
    table = measured(None, None, None)
    table['a'].in_flight, table['b'].in_flight, table['c'].in_flight = 3, 0, 1
    assert LeastBusy().order(TARGETS, WEIGHTS, stats_of(table), random.Random(3)) == [B, C, A]


def test_least_busy_breaks_ties_at_random():
    table = measured(None, None, None)
    firsts = Counter(LeastBusy().order(TARGETS, WEIGHTS, stats_of(table), random.Random(i))[0].model for i in range(300))
    assert set(firsts) == {'a', 'b', 'c'}


def test_cost_ranks_by_price_and_puts_unpriced_last():
    pricing = Pricing.compile({"a": {"input": 5, "output": 10}, "b": {"input": 0.1, "output": 0.2},
                               "c-unknown-xyz": {"input": 1, "output": 1}})
    targets = (A, B, Target("x", "p", "no-price-known"))
    order = Cost(None, pricing).order(targets, WEIGHTS, stats_of({}), random.Random(4))
    assert order == [B, A, targets[2]]


def test_unknown_strategy_is_a_config_error_naming_the_key():
    models = {"m": ModelConfig(targets=[{"provider": "p", "model": "a"}], strategy="fastest")}
    with pytest.raises(ConfigError) as err:
        Router.compile(models, {}, file="g.toml")
    assert err.value.key == "models.m.strategy" and "least-latency" in err.value.expected


def test_stats_are_carried_across_a_recompile():
    models = {"m": ModelConfig(targets=[{"provider": "p", "model": "a"}], strategy="least-busy")}
    first = Router.compile(models, {})
    first.stats_of(Target("m", "p", "a")).in_flight = 2
    second = Router.compile(models, {}, previous=first.breakers, previous_stats=first.stats)
    assert second.stats_of(Target("m", "p", "a")) is first.stats_of(Target("m", "p", "a"))
