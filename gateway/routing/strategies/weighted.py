"""`weighted` (the default): a random order drawn by weight, without replacement."""

from __future__ import annotations

import random

from gateway.context import Target
from gateway.routing.strategies import StatsOf, Strategy


class Weighted(Strategy):
    name = "weighted"

    def order(self, targets: tuple[Target, ...], weights: tuple[float, ...], stats: StatsOf,
              rng: random.Random) -> list[Target]:
        if len(targets) == 1:
            return list(targets)
        pool = list(zip(targets, weights))
        order: list[Target] = []
        while pool:
            pick = rng.random() * sum(w for _, w in pool)
            for i, (t, w) in enumerate(pool):
                pick -= w
                if pick < 0 or i == len(pool) - 1:
                    order.append(t)
                    pool.pop(i)
                    break
        return order
