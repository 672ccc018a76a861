"""A circuit breaker per upstream target: stop sending requests to a target that keeps failing.

closed: requests flow; failures are counted. It opens after `failure_threshold` consecutive
failures, or when more than `error_rate` of the requests in the last `window_s` seconds failed
(counted only once `min_requests` were seen in the window). open: requests are refused until
`cooldown_s` has passed. half_open: exactly one probe request goes through; its success closes the
breaker, its failure opens it again for another cooldown. A probe that never reports (its request
was cancelled) is replaced by another after a further `cooldown_s`, so a breaker cannot stick.

Single-threaded by design (one event loop); `clock` is injectable for deterministic tests.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

CLOSED = "closed"
OPEN = "open"
HALF_OPEN = "half_open"

_BUCKETS = 30  # the error-rate window is kept as this many time buckets of counts


class CircuitBreaker:
    __slots__ = ("failure_threshold", "error_rate", "window_s", "min_requests", "cooldown_s", "_clock",
                 "_state", "_consecutive", "_opened_at", "_probe_at", "_buckets", "_width",
                 "_total", "_failures", "opened_count", "half_opened_count", "closed_count")

    def __init__(
        self,
        failure_threshold: int | None = 5,
        error_rate: float | None = None,
        window_s: float = 30,
        min_requests: int = 10,
        cooldown_s: float = 30,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if error_rate is not None and not 0 <= error_rate < 1:
            raise ValueError("error_rate must be in [0, 1)")
        if window_s <= 0 or cooldown_s < 0:
            raise ValueError("window_s must be positive and cooldown_s not negative")
        self.failure_threshold = failure_threshold
        self.error_rate = error_rate
        self.window_s = window_s
        self.min_requests = min_requests
        self.cooldown_s = cooldown_s
        self._clock = clock
        self._state = CLOSED
        self._consecutive = 0
        self._opened_at = 0.0
        self._probe_at: float | None = None  # when the half-open probe was let through
        self._width = window_s / _BUCKETS
        self._buckets: deque[list[int]] = deque()  # [bucket number, requests, failures], oldest first
        self._total = 0
        self._failures = 0
        self.opened_count = 0  # how many times it opened, for /stats
        self.half_opened_count = 0  # how many times a probe was let through (metrics: transitions)
        self.closed_count = 0  # how many times a probe's success closed it

    @property
    def state(self) -> str:
        return self._state

    def allow(self) -> bool:
        """May a request go to this target now? In half_open, True only for the one probe."""
        if self._state == CLOSED:
            return True
        now = self._clock()
        if self._state == OPEN:
            if now - self._opened_at < self.cooldown_s:
                return False
            self._state = HALF_OPEN
            self.half_opened_count += 1
            self._probe_at = now
            return True
        if self._probe_at is not None and now - self._probe_at < self.cooldown_s:
            return False
        self._probe_at = now  # the previous probe never reported
        return True

    def record_success(self) -> None:
        if self._state == HALF_OPEN:
            self._close()
        elif self._state == CLOSED:
            self._consecutive = 0
            self._count(failed=False)
        # open: a late result of a request let through before opening says nothing new

    def record_failure(self) -> None:
        if self._state == HALF_OPEN:
            self._open()
        elif self._state == CLOSED:
            self._consecutive += 1
            self._count(failed=True)
            if (self.failure_threshold and self._consecutive >= self.failure_threshold) or self._rate_exceeded():
                self._open()

    def _rate_exceeded(self) -> bool:
        if self.error_rate is None or self._total < max(self.min_requests, 1):
            return False
        return self._failures / self._total > self.error_rate

    def _count(self, *, failed: bool) -> None:
        if self.error_rate is None:
            return
        bucket = int(self._clock() // self._width)
        self._expire(bucket)
        if self._buckets and self._buckets[-1][0] == bucket:
            entry = self._buckets[-1]
        else:
            entry = [bucket, 0, 0]
            self._buckets.append(entry)
        entry[1] += 1
        self._total += 1
        if failed:
            entry[2] += 1
            self._failures += 1

    def _expire(self, bucket: int) -> None:
        oldest = bucket - _BUCKETS + 1
        while self._buckets and self._buckets[0][0] < oldest:
            _, requests, failures = self._buckets.popleft()
            self._total -= requests
            self._failures -= failures

    def _open(self) -> None:
        self._state = OPEN
        self._opened_at = self._clock()
        self._probe_at = None
        self.opened_count += 1

    def _close(self) -> None:
        self._state = CLOSED
        self.closed_count += 1
        self._consecutive = 0
        self._probe_at = None
        self._buckets.clear()
        self._total = 0
        self._failures = 0

    def snapshot(self) -> dict[str, object]:
        """The breaker's state for /health/ready and /stats (JSON-ready)."""
        if self.error_rate is not None:
            self._expire(int(self._clock() // self._width))
        retry_in = 0.0
        if self._state == OPEN:
            retry_in = max(0.0, self.cooldown_s - (self._clock() - self._opened_at))
        return {
            "state": self._state,
            "consecutive_failures": self._consecutive,
            "window_requests": self._total,
            "window_failures": self._failures,
            "error_rate": round(self._failures / self._total, 4) if self._total else None,
            "retry_in_s": round(retry_in, 3),
            "opened_count": self.opened_count,
        }
