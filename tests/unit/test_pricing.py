"""Prices per million tokens, name resolution, overrides and cost of a usage."""

from __future__ import annotations

import pytest

from gateway.config.validate import ConfigError
from gateway.context import Usage
from gateway.pricing import DEFAULT_PRICES, Pricing


@pytest.fixture(scope="module")
def pricing():
    return Pricing.compile({})


@pytest.mark.parametrize(
    ("model", "known_as"),
    [
        ("gpt-4o", "gpt-4o"), ("gpt-4o-2024-08-06", "gpt-4o"), ("gpt-4o-mini-2024-07-18", "gpt-4o-mini"),
        ("openai/gpt-4o-mini", "gpt-4o-mini"), ("gpt-4-0613", "gpt-4"), ("gpt-4.1-mini-2025-04-14", "gpt-4.1-mini"),
        ("o3-mini-2025-01-31", "o3-mini"), ("claude-sonnet-4-20250514", "claude-sonnet-4"),
        ("claude-opus-4-1-20250805", "claude-opus-4-1"), ("claude-3-5-haiku-latest", "claude-3-5-haiku"),
        ("claude-sonnet-4-5@20250929", "claude-sonnet-4-5"),
    ],
)  # fmt: skip
def test_dated_and_prefixed_names_resolve(pricing, model, known_as):
    assert pricing.price(model) == DEFAULT_PRICES[known_as]


@pytest.mark.parametrize("model", ["gpt-4.5-preview", "gpt-4oo", "llama-3-70b", "", None])
def test_unknown_models_cost_nothing(pricing, model):
    assert pricing.price(model) is None and not pricing.known(model)
    assert pricing.cost_usd(model, Usage(1000, 1000)) == 0.0


def test_cost_bills_cached_input_at_its_price(pricing):
    # gpt-4o: 2.50 in, 1.25 cached, 10.00 out per million
    usage = Usage(input_tokens=10_000, output_tokens=2_000, cached_tokens=4_000)
    assert pricing.cost_usd("gpt-4o", usage) == pytest.approx((6_000 * 2.5 + 4_000 * 1.25 + 2_000 * 10) / 1e6)
    assert pricing.estimate_usd("gpt-4o", 10_000, 2_000) == pytest.approx((10_000 * 2.5 + 2_000 * 10) / 1e6)


def test_config_overrides_adds_and_fallback():
    p = Pricing.compile({"gpt-4o": {"input": 1.0, "output": 2.0}, "my-model": {"input": 3, "output": 4, "cached_input": 1},
                         "*": {"input": 10, "output": 20}})  # fmt: skip
    assert p.cost_usd("gpt-4o-2024-08-06", Usage(1_000_000, 1_000_000, 500_000)) == pytest.approx(3.0)
    assert p.cost_usd("my-model", Usage(1_000_000, 0, 1_000_000)) == pytest.approx(1.0)
    assert p.cost_usd("anything-else", Usage(1_000_000, 0)) == pytest.approx(10.0)


@pytest.mark.parametrize(
    ("table", "key"),
    [({"input": 1}, "pricing.m.output"), ({"input": 1, "output": 1, "cache": 1}, "pricing.m.cache"),
     ({"input": -1, "output": 1}, "pricing.m")],
)  # fmt: skip
def test_bad_tables_name_the_key(table, key):
    with pytest.raises(ConfigError) as exc:
        Pricing.compile({"m": table}, file="gateway.toml")
    assert exc.value.key == key and exc.value.file == "gateway.toml"
