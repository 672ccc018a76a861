"""When to retry an upstream attempt and how long to wait first.

Exponential backoff with full jitter (a uniform draw in [0, base * 2^(attempt-1)], capped at
`max_s`), so that many gateways retrying one overloaded upstream spread out instead of arriving
together. A `Retry-After` from the upstream (seconds or an HTTP date) replaces the computed delay,
capped at `max_retry_after_s`; all retries of one request fit in `retry_budget_s`.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from email.utils import parsedate_to_datetime

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504, 529})


def retryable_status(status: int) -> bool:
    return status in RETRYABLE_STATUSES


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After value: delta-seconds or an HTTP date. None if unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)  # OpenAI-compatible servers sometimes send fractions
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None or when.tzinfo is None:  # a date without a zone is not HTTP-date
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if seconds != seconds or seconds == float("inf"):  # NaN, inf
        return None
    return max(0.0, seconds)


class RetryPolicy:
    __slots__ = ("max_attempts", "base_s", "max_s", "jitter", "retry_budget_s", "max_retry_after_s",
                 "_random", "_now")

    def __init__(
        self,
        max_attempts: int = 3,
        base_s: float = 0.1,
        max_s: float = 5.0,
        jitter: bool = True,
        retry_budget_s: float = 10.0,
        max_retry_after_s: float | None = None,
        rng: Callable[[], float] = random.random,
        now: Callable[[], float] = time.time,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.max_attempts = max_attempts
        self.base_s = base_s
        self.max_s = max_s
        self.jitter = jitter
        self.retry_budget_s = retry_budget_s
        self.max_retry_after_s = max_s if max_retry_after_s is None else max_retry_after_s
        self._random = rng
        self._now = now  # wall clock, for Retry-After HTTP dates

    def retryable_status(self, status: int) -> bool:
        return status in RETRYABLE_STATUSES

    def delay(self, attempt: int, retry_after: str | None = None) -> float:
        """Seconds to wait after attempt number `attempt` (1 = the first try) failed."""
        told = parse_retry_after(retry_after, self._now())
        if told is not None:
            return min(told, self.max_retry_after_s)
        ceiling = min(self.max_s, self.base_s * 2.0 ** min(max(attempt, 1) - 1, 62))
        return self._random() * ceiling if self.jitter else ceiling

    def should_retry(self, attempt: int, elapsed_s: float, delay_s: float) -> bool:
        """Is another attempt allowed after attempt `attempt`, `elapsed_s` into the request,
        waiting `delay_s` first?"""
        return attempt < self.max_attempts and elapsed_s + delay_s <= self.retry_budget_s
