"""Routing strategies by their config name: one line per strategy."""

from __future__ import annotations

from gateway.routing.strategies import Strategy
from gateway.routing.strategies.cost import Cost
from gateway.routing.strategies.least_busy import LeastBusy
from gateway.routing.strategies.least_latency import LeastLatency
from gateway.routing.strategies.weighted import Weighted

STRATEGIES: dict[str, type[Strategy]] = {cls.name: cls for cls in (
    Weighted,
    LeastLatency,
    LeastBusy,
    Cost,
)}
