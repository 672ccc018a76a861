"""Rolling windows behind /stats: per-second buckets for the last 5 minutes, per-minute buckets for the
last hour. Each bucket keeps counts and latency histograms with log-spaced bins (each bin 4% wider
than the one below it), so memory is bounded whatever the traffic and buckets merge by adding counts:
across time for a window, and across the workers of an instance (`export`, `snapshot(peers=...)`).
Percentiles are nearest-rank over the merged bins, within 2% of the exact value (a bin's midpoint).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable

TOP_REASONS = 10
_OUTCOMES = {"hit": 0, "miss": 1, "bypass": 2}
GAMMA = 1.04  # bin i holds (GAMMA**(i-1), GAMMA**i] ms: a bin's midpoint is within 2% of any value in it
_LOG_GAMMA = math.log(GAMMA)
_MIN_MS = 0.001


class _Bucket:
    __slots__ = ("epoch", "count", "errors", "rejected", "lat", "ttft", "blocks", "usage", "cache")

    def __init__(self) -> None:
        self.reset(-1)

    def reset(self, epoch: int) -> None:
        self.epoch = epoch
        self.count = 0
        self.errors = 0
        self.rejected = 0
        self.lat: dict[int, int] = {}  # histogram bin -> requests
        self.ttft: dict[int, int] = {}
        self.blocks: dict[str, int] = {}
        self.usage: dict[tuple[str, str], list[float]] = {}  # (dimension, value) -> [in, out, cost, requests]
        self.cache: dict[str, list[float]] = {}  # alias -> [hit, miss, bypass, USD saved] (the response cache)


def bin_of(ms: float) -> int:
    return math.ceil(math.log(ms if ms > _MIN_MS else _MIN_MS) / _LOG_GAMMA)


def bin_value(i: int) -> float:
    """The midpoint of bin i (its bounds' mean), in ms."""
    return round(GAMMA ** i * 2 / (1 + GAMMA), 3)


def percentile(hist: dict[int, int], p: float) -> float | None:
    """Nearest-rank percentile of a histogram (bin -> count), as the bin's midpoint."""
    total = sum(hist.values())
    if not total:
        return None
    rank = max(math.ceil(p * total), 1)
    seen = 0
    for i in sorted(hist):
        seen += hist[i]
        if seen >= rank:
            return bin_value(i)
    return None  # unreachable: seen reaches total


def _add_hist(into: dict[int, int], hist: dict[int, int]) -> None:
    for i, n in hist.items():
        into[i] = into.get(i, 0) + n


class RollingStats:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._sec = [_Bucket() for _ in range(300)]
        self._min = [_Bucket() for _ in range(60)]
        self.started = clock()
        self.sources: dict[str, Callable[[], object]] = {}  # "budgets", "breakers", ... filled by others

    def register(self, name: str, source: Callable[[], object]) -> None:
        self.sources[name] = source

    def _add(self, b: _Bucket, rec: dict, usage: bool) -> None:
        b.count += 1
        status = rec["status"]
        if status >= 500 or status == 0:
            b.errors += 1
        elif status >= 400:
            b.rejected += 1
        i = bin_of(rec["latency_ms"])
        b.lat[i] = b.lat.get(i, 0) + 1
        ttft = rec["ttft_ms"]
        if ttft is not None:
            i = bin_of(ttft)
            b.ttft[i] = b.ttft.get(i, 0) + 1
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
        self._add(b, rec, False)
        m = s // 60
        b = self._min[m % 60]
        if b.epoch != m:
            b.reset(m)
        self._add(b, rec, True)

    def _window(self, buckets: Iterable[_Bucket], lo: int, hi: int, seconds: float) -> dict:
        live = [b for b in buckets if lo <= b.epoch <= hi]
        count = sum(b.count for b in live)
        errors = sum(b.errors for b in live)
        rejected = sum(b.rejected for b in live)
        lat: dict[int, int] = {}
        ttft: dict[int, int] = {}
        blocks: dict[str, int] = {}
        for b in live:
            _add_hist(lat, b.lat)
            _add_hist(ttft, b.ttft)
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

    def export(self, now: float | None = None) -> dict:
        """The live buckets as JSON-ready data, for the other workers of the instance to merge."""
        now = self._clock() if now is None else now
        s = int(now)
        m = s // 60

        def rows(buckets: list[_Bucket], lo: int, usage: bool) -> list[list]:
            return [[b.epoch, b.count, b.errors, b.rejected, b.lat, b.ttft, b.blocks,
                     [[d, v, *row] for (d, v), row in b.usage.items()] if usage else [],
                     b.cache if usage else {}]
                    for b in buckets if b.epoch >= lo and b.count]

        return {"started": self.started, "sec": rows(self._sec, s - 299, False), "min": rows(self._min, m - 59, True)}

    @staticmethod
    def _imported(rows: list[list]) -> list[_Bucket]:
        out = []
        for epoch, count, errors, rejected, lat, ttft, blocks, usage, *rest in rows:
            b = _Bucket()
            b.cache = rest[0] if rest else {}  # alias -> [hit, miss, bypass, USD saved]
            b.epoch, b.count, b.errors, b.rejected, b.blocks = epoch, count, errors, rejected, blocks
            b.lat = {int(i): n for i, n in lat.items()}  # JSON object keys are strings
            b.ttft = {int(i): n for i, n in ttft.items()}
            b.usage = {(d, v): [inp, out, cost, n] for d, v, inp, out, cost, n in usage}
            out.append(b)
        return out

    def snapshot(self, now: float | None = None, peers: Iterable[dict] = ()) -> dict:
        """The windows of this process merged with `peers` (other workers' `export`)."""
        now = self._clock() if now is None else now
        s = int(now)
        m = s // 60
        sec: list[_Bucket] = list(self._sec)
        mins: list[_Bucket] = list(self._min)
        started = self.started
        for p in peers:
            sec += self._imported(p["sec"])
            mins += self._imported(p["min"])
            started = min(started, p["started"])
        # Windows cover whole buckets up to the current one, so "1m" is the last 60 one-second buckets.
        elapsed = max(now - started, 1.0)
        out = {
            "windows": {
                "1m": self._window(sec, s - 59, s, min(60.0, elapsed)),
                "5m": self._window(sec, s - 299, s, min(300.0, elapsed)),
                "1h": self._window(mins, m - 59, m, min(3600.0, elapsed)),
            },
            "usage_1h": self._usage(mins, m),
            "cache_1h": self._cache(mins, m),
        }
        for name, source in self.sources.items():
            try:
                out[name] = source()
            except Exception as exc:  # a broken source must not take /stats down; say which and why
                out[name] = {"error": f"{type(exc).__name__}: {exc}"}
        return out

    @staticmethod
    def _usage(buckets: list[_Bucket], m: int) -> dict:
        agg: dict[str, dict[str, dict]] = {"key_id": {}, "team": {}, "model": {}}
        for b in buckets:
            if not (m - 59 <= b.epoch <= m):
                continue
            for (dim, v), (inp, out, cost, n) in b.usage.items():
                row = agg[dim].setdefault(v, {"requests": 0, "input_tokens": 0, "output_tokens": 0, "cost_usd": 0.0})
                row["requests"] += n
                row["input_tokens"] += inp
                row["output_tokens"] += out
                row["cost_usd"] = round(row["cost_usd"] + cost, 6)
        return {"by_key": agg["key_id"], "by_team": agg["team"], "by_model": agg["model"]}

    @staticmethod
    def _cache(buckets: list[_Bucket], m: int) -> dict:
        """The response cache per alias over the last hour: outcomes, the hit ratio among requests that
        could be served from it (hits and misses; a bypass never could) and the USD its hits saved."""
        agg: dict[str, list[float]] = {}
        for b in buckets:
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
