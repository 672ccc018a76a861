"""`least-latency`: the target with the lowest moving average of time to first token first.

Exploration keeps the averages honest: a target never measured yet ranks first (optimistic start),
and with probability `explore` a request takes a uniformly random order instead, so a target that
was slow once is measured again and wins back its traffic when it recovers. A failed attempt counts
as a slow sample (gateway.routing.stats), so a target that fails fast does not look fast.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

from gateway.context import Target
from gateway.routing.strategies import StatsOf, Strategy, ranked

if TYPE_CHECKING:
    from gateway.config.schema import ModelConfig
    from gateway.pricing import Pricing


class LeastLatency(Strategy):
    name = "least-latency"

    def __init__(self, model: ModelConfig | None = None, pricing: Pricing | None = None) -> None:
        self.explore = model.explore if model is not None else 0.1

    def order(self, targets: tuple[Target, ...], weights: tuple[float, ...], stats: StatsOf,
              rng: random.Random) -> list[Target]:
        if self.explore and rng.random() < self.explore:
            order = list(targets)
            rng.shuffle(order)
            return order
        scores = []
        for t in targets:
            ewma = stats(t).ewma_s
            scores.append(-1.0 if ewma is None else ewma)
        return ranked(targets, scores, rng)
