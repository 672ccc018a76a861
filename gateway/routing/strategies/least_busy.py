"""`least-busy`: the target with the fewest requests in flight (from this instance) first; equal
counts in a random order."""

from __future__ import annotations

import random

from gateway.context import Target
from gateway.routing.strategies import StatsOf, Strategy, ranked


class LeastBusy(Strategy):
    name = "least-busy"

    def order(self, targets: tuple[Target, ...], weights: tuple[float, ...], stats: StatsOf,
              rng: random.Random) -> list[Target]:
        return ranked(targets, [float(stats(t).in_flight) for t in targets], rng)
