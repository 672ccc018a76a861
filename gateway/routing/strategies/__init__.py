"""How an alias orders its targets for one request (`strategy` in `[models.X]`).

A strategy is one module here plus one line in `registry.py`. `order` returns every target of the
route once, best first; the router then walks that order (skipping open breakers, moving on after a
failure), so a strategy only ranks and never needs to know about failures or retries.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from gateway.config.schema import ModelConfig
    from gateway.context import Target
    from gateway.pricing import Pricing
    from gateway.routing.stats import TargetStats

StatsOf = Callable[["Target"], "TargetStats"]


class Strategy:
    """Ranks a route's targets. Built once per alias when the config is compiled."""

    name: ClassVar[str]

    def __init__(self, model: ModelConfig | None = None, pricing: Pricing | None = None) -> None:
        pass

    def order(self, targets: tuple[Target, ...], weights: tuple[float, ...], stats: StatsOf,
              rng: random.Random) -> list[Target]:
        raise NotImplementedError


def ranked(targets: tuple[Target, ...], scores: Sequence[float], rng: random.Random) -> list[Target]:
    """Targets by ascending score (`scores[i]` is `targets[i]`'s), equal scores in a random order, so
    ties share the load."""
    keyed = sorted((score, rng.random(), i) for i, score in enumerate(scores))
    return [targets[i] for _, _, i in keyed]
