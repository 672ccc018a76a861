"""History for the dashboard's charts: per-minute aggregates of the request records, kept 8 days.

Each minute is a flat map of counters, all of them sums, so the minutes of every instance merge by
adding (Redis HINCRBYFLOAT) and any range is the sum of its minutes:

    n, e5 (5xx and no response), e4 (4xx), ref (refused by a policy: a block reason), tin, tout, cost
    lat:<i>, ttft:<i>      latency and time-to-first-token histograms: bucket i holds values up to
                           GROWTH**i ms (log-spaced, ~12% wide), so percentiles are mergeable
    cost|<dim>|<v>, tok|<dim>|<v>, n|<dim>|<v>   by model, key and team (at most TOP values per
                           dimension and minute per instance; the rest under "~other")
    an|<alias>, ae|<alias>, al|<alias>   requests, errors and summed latency per alias; pn|, pe|, pl| per provider
    ah|<alias>|<i>, ph|<provider>|<i>    latency histogram per alias and per provider (p50/p95 of the panels)
    ga|<action>, ent|<entity>, blk|<reason>  guardrail actions, entities redacted, refusals by reason

The request path only appends the finished record to a list (`observe`); a background task folds the
list into minutes and adds them to the store once a second: the shared Redis store when the gateway
has one (every instance writes, every dashboard reads the fleet), otherwise process memory. Hourly
sums are kept beside the minutes for the 7-day range.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Iterable

log = logging.getLogger(__name__)

RETENTION_S = 8 * 86400
GROWTH = 1.12
BUCKETS = 120  # 1.12**120 ms is about 8 hours
TOP = 50
FLUSH_S = 1.0
RANGES = {"15m": (15 * 60, 60, "m"), "1h": (3600, 60, "m"), "24h": (86400, 900, "m"), "7d": (7 * 86400, 3600, "h")}
_ERROR_DIMS = (("model", "model"), ("key", "key_id"), ("team", "team"))


def bucket_of(ms: float) -> int:
    if ms <= 1.0:
        return 0
    return min(int(math.ceil(math.log(ms) / math.log(GROWTH))), BUCKETS - 1)


def quantile(hist: dict[int, float], q: float) -> float | None:
    """The upper edge of the bucket holding the q-th value (at most 12% above the true value)."""
    total = sum(hist.values())
    if total <= 0:
        return None
    rank = max(q * total, 1e-9)
    seen = 0.0
    for i in sorted(hist):
        seen += hist[i]
        if seen >= rank:
            return round(GROWTH ** i, 1)
    return round(GROWTH ** max(hist), 1)


def _add(m: dict[str, float], field: str, v: float) -> None:
    m[field] = m.get(field, 0.0) + v


def _bounded(m: dict[str, float], seen: dict[str, set], dim: str, value: str) -> str:
    vals = seen.setdefault(dim, set())
    if value in vals:
        return value
    if len(vals) < TOP:
        vals.add(value)
        return value
    return "~other"


def fold(records: Iterable[dict]) -> dict[int, dict[str, float]]:
    """Per minute (unix minute), the counters of these records.

    Records are first grouped by everything the counters are keyed by (one tuple and one list update per
    record: under load most records share a minute, status, key, alias and latency bucket), then each group
    is written out once, its counts multiplied. Writing out every record as it came cost ~25 string-keyed
    dict updates a record, ~6% of a pass-through worker's CPU (benchmarks/history_fold.py has both)."""
    groups: dict[tuple, list[float]] = {}
    for rec in records:
        lat = rec["latency_ms"]
        ttft = rec["ttft_ms"]
        entities = rec.get("entities")
        sig = (int(rec["time"]) // 60, rec["status"], rec["block_reason"], bucket_of(lat),
               None if ttft is None else bucket_of(ttft), rec.get("model"), rec.get("key_id"), rec.get("team"),
               rec.get("alias"), rec.get("provider"), rec["guardrail_action"],
               tuple(entities.items()) if entities else ())
        g = groups.get(sig)
        if g is None:
            groups[sig] = [1, rec["input_tokens"], rec["output_tokens"], rec["cost_usd"], lat]
        else:
            g[0] += 1
            g[1] += rec["input_tokens"]
            g[2] += rec["output_tokens"]
            g[3] += rec["cost_usd"]
            g[4] += lat
    out: dict[int, dict[str, float]] = {}
    seen: dict[int, dict[str, set]] = {}
    # Groups come in the order of their first record, so "the first TOP values of a minute" are the same
    # values as when every record was written out in order.
    for (minute, status, block_reason, lat_b, ttft_b, model, key_id, team, alias, provider, action,
         entities), (n, tin, tout, cost, lat) in groups.items():
        m = out.setdefault(minute, {})
        s = seen.setdefault(minute, {})
        err = status >= 500 or status == 0
        _add(m, "n", n)
        if err:
            _add(m, "e5", n)
        elif status >= 400:
            _add(m, "e4", n)
        if block_reason is not None:
            _add(m, "ref", n)
            _add(m, "blk|" + block_reason, n)
        _add(m, f"lat:{lat_b}", n)
        if ttft_b is not None:
            _add(m, f"ttft:{ttft_b}", n)
        _add(m, "tin", tin)
        _add(m, "tout", tout)
        _add(m, "cost", cost)
        for dim, v in (("model", model), ("key", key_id), ("team", team)):
            if v:
                v = _bounded(m, s, dim, v)
                _add(m, f"cost|{dim}|{v}", cost)
                _add(m, f"tok|{dim}|{v}", tin + tout)
                _add(m, f"n|{dim}|{v}", n)
        for prefix, v in (("a", alias), ("p", provider)):
            if v:
                v = _bounded(m, s, prefix, v)
                _add(m, f"{prefix}n|{v}", n)
                _add(m, f"{prefix}l|{v}", lat)
                _add(m, f"{prefix}h|{v}|{lat_b}", n)
                if err:
                    _add(m, f"{prefix}e|{v}", n)
        if action != "allow":
            _add(m, "ga|" + action, n)
        for entity, count in entities:
            _add(m, "ent|" + _bounded(m, s, "ent", entity), count * n)
    return out


def summarise(points: list[tuple[int, dict[str, float]]], step_s: int) -> dict:
    """The history document: one point per step, and totals over the range."""
    series = []
    total: dict[str, float] = {}
    for t, m in points:
        for k, v in m.items():
            _add(total, k, v)
        series.append(_point(t, m, step_s))
    return {"step_s": step_s, "points": series, "totals": _totals(total)}


def _hist(m: dict[str, float], name: str) -> dict[int, float]:
    p = name + ":"
    return {int(k[len(p):]): v for k, v in m.items() if k.startswith(p)}


def _point(t: int, m: dict[str, float], step_s: int) -> dict:
    lat, ttft = _hist(m, "lat"), _hist(m, "ttft")
    n = m.get("n", 0.0)
    return {
        "t": t, "requests": int(n), "rps": round(n / step_s, 4), "errors": int(m.get("e5", 0)),
        "refused": int(m.get("e4", 0)), "refusals": int(m.get("ref", 0)),
        "latency_ms": {f"p{q}": quantile(lat, q / 100) for q in (50, 95, 99)},
        "ttft_ms": {f"p{q}": quantile(ttft, q / 100) for q in (50, 95, 99)},
        "input_tokens": int(m.get("tin", 0)), "output_tokens": int(m.get("tout", 0)),
        "cost_usd": round(m.get("cost", 0.0), 6),
        "guardrail": _prefixed(m, "ga|"), "entities": _prefixed(m, "ent|"), "blocks": _prefixed(m, "blk|"),
    }


def _prefixed(m: dict[str, float], p: str) -> dict[str, int]:
    return {k[len(p):]: int(v) for k, v in m.items() if k.startswith(p)}


def _totals(m: dict[str, float]) -> dict:
    out: dict = _point(0, m, 1)
    del out["t"], out["rps"]
    for dim, _ in _ERROR_DIMS:
        rows: dict[str, dict] = {}
        for kind, field in (("cost", "cost_usd"), ("tok", "tokens"), ("n", "requests")):
            for v, x in _prefixed_f(m, f"{kind}|{dim}|").items():
                rows.setdefault(v, {"requests": 0, "tokens": 0, "cost_usd": 0.0})[field] = (
                    round(x, 6) if field == "cost_usd" else int(x))
        out[f"by_{dim}"] = rows
    for prefix, name in (("a", "by_alias"), ("p", "by_provider")):
        hists: dict[str, dict[int, float]] = {}
        for k, x in _prefixed_f(m, f"{prefix}h|").items():
            v, _, i = k.rpartition("|")
            hists.setdefault(v, {})[int(i)] = x
        rows = {}
        for v, n in _prefixed_f(m, f"{prefix}n|").items():
            hist = hists.get(v, {})
            rows[v] = {"requests": int(n), "errors": int(m.get(f"{prefix}e|{v}", 0)),
                       "mean_latency_ms": round(m.get(f"{prefix}l|{v}", 0.0) / n, 1) if n else None,
                       "p50_latency_ms": quantile(hist, 0.5), "p95_latency_ms": quantile(hist, 0.95)}
        out[name] = rows
    return out


def _prefixed_f(m: dict[str, float], p: str) -> dict[str, float]:
    return {k[len(p):]: v for k, v in m.items() if k.startswith(p)}


class MemoryHistory:
    """One process's history (a memory store: nothing is shared, nothing survives a restart)."""

    shared = False

    def __init__(self) -> None:
        self.minutes: dict[int, dict[str, float]] = {}
        self.hours: dict[int, dict[str, float]] = {}

    async def add(self, minutes: dict[int, dict[str, float]]) -> None:
        for minute, m in minutes.items():
            for table, k in ((self.minutes, minute), (self.hours, minute // 60)):
                row = table.setdefault(k, {})
                for f, v in m.items():
                    row[f] = row.get(f, 0.0) + v
        cut = int(time.time() - RETENTION_S) // 60
        for k in [k for k in self.minutes if k < cut]:
            del self.minutes[k]
        for k in [k for k in self.hours if k < cut // 60]:
            del self.hours[k]

    async def read(self, unit: str, keys: list[int]) -> list[dict[str, float]]:
        table = self.minutes if unit == "m" else self.hours
        return [table.get(k, {}) for k in keys]

    async def close(self) -> None:
        pass


class RedisHistory:
    """The fleet's history in the shared Redis store: a hash per minute and per hour, expiring after 8 days."""

    shared = True

    def __init__(self, client, prefix: str = "gateway:history") -> None:
        self.client = client
        self.prefix = prefix

    def _key(self, unit: str, k: int) -> str:
        return f"{self.prefix}:{unit}:{k}"

    async def add(self, minutes: dict[int, dict[str, float]]) -> None:
        pipe = self.client.pipeline(transaction=False)
        for minute, m in minutes.items():
            for unit, k in (("m", minute), ("h", minute // 60)):
                key = self._key(unit, k)
                for f, v in m.items():
                    pipe.hincrbyfloat(key, f, v)
                pipe.expire(key, RETENTION_S)
        await pipe.execute()

    async def read(self, unit: str, keys: list[int]) -> list[dict[str, float]]:
        pipe = self.client.pipeline(transaction=False)
        for k in keys:
            pipe.hgetall(self._key(unit, k))
        got = await pipe.execute()
        return [{f.decode(): float(v) for f, v in h.items()} for h in got]

    async def close(self) -> None:
        await self.client.aclose()


class History:
    """Collects finished records (`observe`, on the request path: one list append) and folds them into
    the store once a second in a background task; serves the ranges the dashboard asks for."""

    def __init__(self, store: MemoryHistory | RedisHistory) -> None:
        self.store = store
        self._pending: list[dict] = []
        self._task: asyncio.Task | None = None
        self.observe = self._pending.append  # the request path's whole cost: one list append

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="history-writer")

    async def flush(self) -> None:
        if not self._pending:
            return
        batch = self._pending[:]
        self._pending.clear()
        minutes = fold(batch)
        try:
            await self.store.add(minutes)
        except Exception as exc:  # the store is down: keep the counts for the next try (bounded)
            log.warning("history: the store did not take %d records, retrying: %s", len(batch), exc)
            if len(self._pending) < 100_000:
                self._pending[:0] = batch

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_S)
            await self.flush()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        await self.flush()
        await self.store.close()

    async def range(self, name: str, now: float | None = None) -> dict:
        span, step, unit = RANGES[name]
        now = time.time() if now is None else now
        unit_s = 60 if unit == "m" else 3600
        last = int(now) // unit_s
        first = last - span // unit_s + 1
        keys = list(range(first, last + 1))
        rows = await self.store.read(unit, keys)
        per = step // unit_s
        points: list[tuple[int, dict[str, float]]] = []
        for i in range(0, len(keys), per):
            merged: dict[str, float] = {}
            for row in rows[i:i + per]:
                for f, v in row.items():
                    merged[f] = merged.get(f, 0.0) + v
            points.append((keys[i] * unit_s, merged))
        out = summarise(points, step)
        out.update({"range": name, "shared": self.store.shared, "from": first * unit_s, "to": (last + 1) * unit_s})
        return out
