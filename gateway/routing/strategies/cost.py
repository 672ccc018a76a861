"""`cost`: the cheapest target first, by the price table (input plus output price per million
tokens); a target with no price goes last. Health is the router's part: a target whose breaker is
open is skipped, and a failed attempt moves to the next cheapest."""

from __future__ import annotations

import math
import random
from typing import TYPE_CHECKING

from gateway.context import Target
from gateway.routing.strategies import StatsOf, Strategy, ranked

if TYPE_CHECKING:
    from gateway.config.schema import ModelConfig
    from gateway.pricing import Pricing


class Cost(Strategy):
    name = "cost"

    def __init__(self, model: ModelConfig | None = None, pricing: Pricing | None = None) -> None:
        self.pricing = pricing
        self._price: dict[str, float] = {}  # by model name

    def _price_of(self, target: Target) -> float:
        price = self._price.get(target.model)
        if price is None:
            p = self.pricing.price(target.model) if self.pricing is not None else None
            price = self._price[target.model] = math.inf if p is None else p.input + p.output
        return price

    def order(self, targets: tuple[Target, ...], weights: tuple[float, ...], stats: StatsOf,
              rng: random.Random) -> list[Target]:
        return ranked(targets, [self._price_of(t) for t in targets], rng)
