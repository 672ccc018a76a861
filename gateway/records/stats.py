"""Rolling windows behind /stats: per-second buckets for the last 5 minutes, per-minute buckets for the
last hour. Each bucket keeps counts and a bounded latency sample (reservoir), so memory is fixed
whatever the traffic. Percentiles are nearest-rank over the merged samples (exact while a bucket has
fewer requests than its sample cap).
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable

SECOND_SAMPLES = 64
MINUTE_SAMPLES = 512
TOP_REASONS = 10
_OUTCOMES = {"hit": 0, "miss": 1, "bypass": 2}


class _Bucket:
    __slots__ = ("epoch", "count", "errors", "rejected", "lat", "ttft", "seen_lat", "seen_ttft", "blocks", "usage",
                 "cache")

    def __init__(self) -> None:
        self.reset(-1)

    def reset(self, epoch: int) -> None:
        self.epoch = epoch
        self.count = 0
        self.errors = 0
        self.rejected = 0
        self.lat: list[float] = []
        self.ttft: list[float] = []
        self.seen_lat = 0
        self.seen_ttft = 0
        self.blocks: dict[str, int] = {}
        self.usage: dict[tuple[str, str], list[float]] = {}  # (dimension, value) -> [in, out, cost, requests]
        self.cache: dict[str, list[float]] = {}  # alias -> [hit, miss, bypass, USD saved] (the response cache)


def _sample(samples: list[float], seen: int, x: float, cap: int) -> None:
    if seen < cap:
        samples.append(x)
    else:
        j = random.randrange(seen + 1)  # Algorithm R: each value kept with probability cap/seen
        if j < cap:
            samples[j] = x


def percentile(sorted_values: list[float], p: float) -> float | None:
    if not sorted_values:
        return None
    rank = max(math.ceil(p * len(sorted_values)), 1)
    return sorted_values[rank - 1]


class RollingStats:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._sec = [_Bucket() for _ in range(300)]
        self._min = [_Bucket() for _ in range(60)]
        self.started = clock()
        self.sources: dict[str, Callable[[], object]] = {}  # "budgets", "breakers", ... filled by others

    def register(self, name: str, source: Callable[[], object]) -> None:
        self.sources[name] = source

    def _add(self, b: _Bucket, rec: dict, cap: int, usage: bool) -> None:
        b.count += 1
        status = rec["status"]
        if status >= 500 or status == 0:
            b.errors += 1
        elif status >= 400:
            b.rejected += 1
        _sample(b.lat, b.seen_lat, rec["latency_ms"], cap)
        b.seen_lat += 1
        ttft = rec["ttft_ms"]
        if ttft is not None:
            _sample(b.ttft, b.seen_ttft, ttft, cap)
            b.seen_ttft += 1
        reason = rec["block_reason"]
        if reason is not None:
            b.blocks[reason] = b.blocks.get(reason, 0) + 1
        if usage:
            inp, out, cost = rec["input_tokens"], rec["output_tokens"], rec["cost_usd"]
            for dim in ("key_id", "team", "model"):
                v = rec[dim]
                if v is None:
                    continue
                row = b.usage.get((dim, v))
                if row is None:
                    b.usage[(dim, v)] = [inp, out, cost, 1]
                else:
                    row[0] += inp
                    row[1] += out
                    row[2] += cost
                    row[3] += 1
            outcome = rec.get("cache")
            if outcome is not None:
                c = b.cache.get(rec["alias"] or "-")
                if c is None:
                    c = b.cache[rec["alias"] or "-"] = [0, 0, 0, 0.0]
                c[_OUTCOMES.get(outcome, 2)] += 1
                c[3] += rec["cache_saved_usd"] or 0.0

    def observe(self, rec: dict, now: float | None = None) -> None:
        now = self._clock() if now is None else now
        s = int(now)
        b = self._sec[s % 300]
        if b.epoch != s:
            b.reset(s)
        self._add(b, rec, SECOND_SAMPLES, False)
        m = s // 60
        b = self._min[m % 60]
        if b.epoch != m:
            b.reset(m)
        self._add(b, rec, MINUTE_SAMPLES, True)

    def _window(self, buckets: list[_Bucket], lo: int, hi: int, seconds: float) -> dict:
        live = [b for b in buckets if lo <= b.epoch <= hi]
        count = sum(b.count for b in live)
        errors = sum(b.errors for b in live)
        rejected = sum(b.rejected for b in live)
        lat = sorted(x for b in live for x in b.lat)
        ttft = sorted(x for b in live for x in b.ttft)
        blocks: dict[str, int] = {}
        for b in live:
            for r, n in b.blocks.items():
                blocks[r] = blocks.get(r, 0) + n
        top = sorted(blocks.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_REASONS]
        return {
            "requests": count,
            "errors": errors,
            "rejected": rejected,
            "rps": round(count / seconds, 3),
            "error_rate": round(errors / count, 4) if count else 0.0,
            "rejected_rate": round(rejected / count, 4) if count else 0.0,
            "latency_ms": {f"p{q}": percentile(lat, q / 100) for q in (50, 95, 99)},
            "ttft_ms": {f"p{q}": percentile(ttft, q / 100) for q in (50, 95, 99)},
            "top_block_reasons": [{"reason": r, "count": n} for r, n in top],
        }

    def snapshot(self, now: float | None = None) -> dict:
        now = self._clock() if now is None else now
        s = int(now)
        m = s // 60
        # Windows cover whole buckets up to the current one, so "1m" is the last 60 one-second buckets.
        elapsed = max(now - self.started, 1.0)
        out = {
            "windows": {
                "1m": self._window(self._sec, s - 59, s, min(60.0, elapsed)),
                "5m": self._window(self._sec, s - 299, s, min(300.0, elapsed)),
                "1h": self._window(self._min, m - 59, m, min(3600.0, elapsed)),
            },
            "usage_1h": self._usage(m),
            "cache_1h": self._cache(m),
        }
        for name, source in self.sources.items():
            try:
                out[name] = source()
            except Exception as exc:  # a broken source must not take /stats down; say which and why
                out[name] = {"error": f"{type(exc).__name__}: {exc}"}
        return out

    def _usage(self, m: int) -> dict:
        agg: dict[str, dict[str, dict]] = {"key_id": {}, "team": {}, "model": {}}
        for b in self._min:
            if not (m - 59 <= b.epoch <= m):
                continue
            for (dim, v), (inp, out, cost, n) in b.usage.items():
                row = agg[dim].setdefault(v, {"requests": 0, "input_tokens": 0, "output_tokens": 0, "cost_usd": 0.0})
                row["requests"] += n
                row["input_tokens"] += inp
                row["output_tokens"] += out
                row["cost_usd"] = round(row["cost_usd"] + cost, 6)
        return {"by_key": agg["key_id"], "by_team": agg["team"], "by_model": agg["model"]}

    def _cache(self, m: int) -> dict:
        """The response cache per alias over the last hour: outcomes, the hit ratio among requests that
        could be served from it (hits and misses; a bypass never could) and the USD its hits saved."""
        agg: dict[str, list[float]] = {}
        for b in self._min:
            if not (m - 59 <= b.epoch <= m):
                continue
            for alias, c in b.cache.items():
                row = agg.setdefault(alias, [0, 0, 0, 0.0])
                for i in range(4):
                    row[i] += c[i]
        out = {}
        for alias, (hit, miss, bypass, saved) in sorted(agg.items()):
            out[alias] = {"hit": int(hit), "miss": int(miss), "bypass": int(bypass),
                          "hit_ratio": round(hit / (hit + miss), 4) if hit + miss else None,
                          "saved_usd": round(saved, 6)}
        return {"by_alias": out}
