"""What the router measures per target ("provider/model"): requests in flight, and an exponentially
weighted moving average of time to first token. The measured strategies (gateway.routing.strategies)
read these; the router writes them as attempts start and requests end.

One `TargetStats` per target, shared by every alias that routes to it and carried across reloads
like the breakers (a reload must not forget what was measured). Single-threaded (one event loop).
"""

from __future__ import annotations

# A failed attempt counts as a sample this many times the target's average (at least `_MIN_PENALTY_S`):
# a target that fails fast must not look fast.
_PENALTY = 2.0
_MIN_PENALTY_S = 1.0
ALPHA = 0.3  # the weight of the newest sample in the moving average


class TargetStats:
    __slots__ = ("in_flight", "ewma_s", "samples", "alpha")

    def __init__(self, alpha: float = ALPHA) -> None:
        self.in_flight = 0
        self.ewma_s: float | None = None  # None until the first sample: unmeasured targets go first
        self.samples = 0
        self.alpha = alpha

    def observe(self, seconds: float) -> None:
        """One request's time to first token (or to its whole answer, when it had no token)."""
        self.samples += 1
        self.ewma_s = seconds if self.ewma_s is None else self.ewma_s + self.alpha * (seconds - self.ewma_s)

    def observe_failure(self, seconds: float) -> None:
        self.observe(max(seconds, _PENALTY * (self.ewma_s or 0.0), _MIN_PENALTY_S))

    def snapshot(self) -> dict[str, object]:
        return {"in_flight": self.in_flight, "ewma_ttft_s": None if self.ewma_s is None else round(self.ewma_s, 4),
                "samples": self.samples}
