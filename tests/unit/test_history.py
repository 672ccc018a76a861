"""The dashboard's history (gateway/records/history.py): exact per-minute counts, percentiles from the
mergeable log-bucket histograms against numpy on the same samples (within one bucket, 12%), the four
ranges, retention (7 days kept, older dropped), and two instances adding up in one Redis."""

from __future__ import annotations

import math
import random
import time

import numpy as np
import pytest

from gateway.records.recorder import _history_client
from gateway.records.history import (GROWTH, RANGES, RETENTION_S, History, MemoryHistory, RedisHistory, fold, quantile,
                                     summarise)

T0 = (int(time.time()) // 3600 - 2) * 3600 + 20  # two hours ago (the store keeps 8 days back from the clock)


def rec(t: float, *, status: int = 200, lat: float = 100.0, ttft: float | None = None, alias: str = "demo",
        provider: str = "p1", key: str = "k1", team: str = "t1", model: str = "m1", cost: float = 0.001,
        tin: int = 10, tout: int = 5, action: str = "allow", reason: str | None = None,
        entities: dict | None = None) -> dict:
    return {"time": t, "status": status, "latency_ms": lat, "ttft_ms": ttft, "alias": alias, "provider": provider,
            "key_id": key, "team": team, "model": model, "cost_usd": cost, "input_tokens": tin,
            "output_tokens": tout, "guardrail_action": action, "block_reason": reason, "entities": entities or {}}


def test_fold_counts_exactly_per_minute():
    m0 = T0 // 60
    records = [rec(T0 + i % 60, status=s) for i, s in enumerate([200] * 7 + [429] * 3 + [502] * 2 + [0])]
    records += [rec(T0 + 60 + 5, status=200, reason=None), rec(T0 + 61, status=403, reason="guardrail.pii",
                                                                action="block", entities={"email": 2})]
    got = fold(records)
    assert sorted(got) == [m0, m0 + 1]
    a, b = got[m0], got[m0 + 1]
    assert (a["n"], a["e4"], a["e5"], a.get("ref", 0)) == (13, 3, 3, 0)
    assert a["tin"] == 130 and a["tout"] == 65 and a["cost"] == pytest.approx(0.013)
    assert a["n|key|k1"] == 13 and a["tok|team|t1"] == 195 and a["an|demo"] == 13 and a["ae|demo"] == 3
    assert (b["n"], b["e4"], b["ref"], b["blk|guardrail.pii"], b["ga|block"], b["ent|email"]) == (2, 1, 1, 1, 1, 2)
    assert sum(v for k, v in a.items() if k.startswith("lat:")) == 13


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_percentiles_match_numpy_within_one_bucket(seed):
    rnd = random.Random(seed)
    samples = [rnd.lognormvariate(math.log(300), 1.0) + 1.0 for _ in range(5000)]
    # split over 3 instances and 7 minutes, merged the way the store merges them (adding counters)
    merged: dict[str, float] = {}
    for part in (samples[0::3], samples[1::3], samples[2::3]):
        for m in fold([rec(T0 + i * 3.7 % 420, lat=x, ttft=x / 2) for i, x in enumerate(part)]).values():
            for k, v in m.items():
                merged[k] = merged.get(k, 0.0) + v
    lat = {int(k[4:]): v for k, v in merged.items() if k.startswith("lat:")}
    ttft = {int(k[5:]): v for k, v in merged.items() if k.startswith("ttft:")}
    for q in (0.5, 0.95, 0.99):
        for hist, values in ((lat, samples), (ttft, [x / 2 for x in samples])):
            true = float(np.percentile(values, q * 100, method="inverted_cdf"))
            got = quantile(hist, q)
            assert got is not None
            assert true <= got * 1.001 and got <= true * GROWTH * 1.001, (q, true, got)


def test_per_alias_and_provider_latency_percentiles():
    rnd = random.Random(7)
    fast = [rnd.uniform(10, 50) for _ in range(400)]
    slow = [rnd.uniform(1000, 3000) for _ in range(100)]
    records = [rec(T0, lat=x, alias="fast", provider="pa") for x in fast]
    records += [rec(T0, lat=x, alias="slow", provider="pb") for x in slow]
    doc = summarise(sorted(fold(records).items()), 60)["totals"]
    for rows, name, values in ((doc["by_alias"], "fast", fast), (doc["by_alias"], "slow", slow),
                               (doc["by_provider"], "pa", fast), (doc["by_provider"], "pb", slow)):
        for q in (50, 95):
            true = float(np.percentile(values, q, method="inverted_cdf"))
            got = rows[name][f"p{q}_latency_ms"]
            assert true <= got * 1.001 and got <= true * GROWTH * 1.001, (name, q, true, got)


async def _ranges(history: History, now: float) -> None:
    # one request per hour over 8 days, and one per minute over the last 2 hours
    hours = [rec(now - h * 3600 - 1) for h in range(8 * 24)]
    minutes = [rec(now - i * 60 - 1, status=500) for i in range(120)]
    for r in hours + minutes:
        history.observe(r)
    await history.flush()
    got = {name: await history.range(name, now=now) for name in RANGES}
    assert [len(got[n]["points"]) for n in ("15m", "1h", "24h", "7d")] == [15, 60, 96, 168]
    assert [got[n]["step_s"] for n in ("15m", "1h", "24h", "7d")] == [60, 60, 900, 3600]
    for name in RANGES:
        doc = got[name]
        span = RANGES[name][0]
        lo, hi = doc["from"], doc["to"]
        assert hi - lo == span and lo <= now < hi
        want = sum(1 for r in hours + minutes if lo <= r["time"] < hi)
        assert doc["totals"]["requests"] == want == sum(p["requests"] for p in doc["points"]), name
        assert doc["totals"]["errors"] == sum(1 for r in minutes if lo <= r["time"] < hi)
        ts = [p["t"] for p in doc["points"]]
        assert ts == sorted(ts) and ts[0] == lo


async def test_ranges_memory():
    history = History(MemoryHistory())
    await _ranges(history, now=time.time())


async def test_ranges_redis(redis_url):
    history = History(RedisHistory(await _history_client(redis_url)))
    await _ranges(history, now=time.time())
    await history.store.close()


async def test_memory_retention_keeps_seven_days_and_drops_older():
    store = MemoryHistory()
    history = History(store)
    now = time.time()
    for age_days in (0, 6.9, 7.0, 7.5, 8.5, 30):
        history.observe(rec(now - age_days * 86400))
    await history.flush()
    minutes = sorted(store.minutes)
    kept = {round((now - m * 60) / 86400, 1) for m in minutes}
    assert all(d <= 8.0 for d in kept) and len(minutes) == 4, kept  # 0, 6.9, 7.0 and 7.5 days old
    assert sum(store.hours[h]["n"] for h in store.hours) == 4
    week = await history.range("7d", now=now)
    # the 7-day range is 168 whole hours ending with the current one
    assert week["totals"]["requests"] == sum(1 for d in (0, 6.9, 7.0) if now - d * 86400 >= week["from"])


async def test_redis_keys_expire_after_the_retention(redis_url):
    client = await _history_client(redis_url)
    history = History(RedisHistory(client, prefix="ret"))
    history.observe(rec(T0))
    await history.flush()
    for unit, k in (("m", T0 // 60), ("h", T0 // 3600)):
        ttl = await client.ttl(f"ret:{unit}:{k}")
        assert 7 * 86400 < ttl <= RETENTION_S
    await client.aclose()


async def test_two_instances_sharing_redis_add_up(redis_url):
    a = History(RedisHistory(await _history_client(redis_url), prefix="fleet"))
    b = History(RedisHistory(await _history_client(redis_url), prefix="fleet"))
    now = float(T0 + 30)
    for i in range(30):
        a.observe(rec(now - i, lat=10.0 + i, alias="x", key="ka"))
    for i in range(12):
        b.observe(rec(now - i, lat=2000.0, status=503, alias="x", key="kb"))
    await a.flush()
    await b.flush()
    for h in (a, b):
        doc = await h.range("15m", now=now)
        t = doc["totals"]
        assert (t["requests"], t["errors"]) == (42, 12)
        assert t["by_alias"]["x"]["requests"] == 42 and t["by_alias"]["x"]["errors"] == 12
        assert t["by_key"]["ka"]["requests"] == 30 and t["by_key"]["kb"]["requests"] == 12
        assert t["latency_ms"]["p50"] < 50 and t["latency_ms"]["p95"] >= 2000
        assert doc["shared"] is True
    await a.close()
    await b.close()


def _fold_one_by_one(records: list[dict]) -> dict[int, dict[str, float]]:
    """The fold as it was written before records were grouped: every record written out in order (the oracle)."""
    from gateway.records.history import _add, _bounded, bucket_of
    out: dict[int, dict[str, float]] = {}
    seen: dict[int, dict[str, set]] = {}
    for r in records:
        minute = int(r["time"]) // 60
        m, s = out.setdefault(minute, {}), seen.setdefault(minute, {})
        err = r["status"] >= 500 or r["status"] == 0
        _add(m, "n", 1)
        if err:
            _add(m, "e5", 1)
        elif r["status"] >= 400:
            _add(m, "e4", 1)
        if r["block_reason"] is not None:
            _add(m, "ref", 1)
            _add(m, "blk|" + r["block_reason"], 1)
        lat_b = bucket_of(r["latency_ms"])
        _add(m, f"lat:{lat_b}", 1)
        if r["ttft_ms"] is not None:
            _add(m, f"ttft:{bucket_of(r['ttft_ms'])}", 1)
        tin, tout, cost = r["input_tokens"], r["output_tokens"], r["cost_usd"]
        _add(m, "tin", tin)
        _add(m, "tout", tout)
        _add(m, "cost", cost)
        for dim, name in (("model", "model"), ("key", "key_id"), ("team", "team")):
            if r.get(name):
                v = _bounded(m, s, dim, r[name])
                _add(m, f"cost|{dim}|{v}", cost)
                _add(m, f"tok|{dim}|{v}", tin + tout)
                _add(m, f"n|{dim}|{v}", 1)
        for prefix, v in (("a", r.get("alias")), ("p", r.get("provider"))):
            if v:
                v = _bounded(m, s, prefix, v)
                _add(m, f"{prefix}n|{v}", 1)
                _add(m, f"{prefix}l|{v}", r["latency_ms"])
                _add(m, f"{prefix}h|{v}|{lat_b}", 1)
                if err:
                    _add(m, f"{prefix}e|{v}", 1)
        if r["guardrail_action"] != "allow":
            _add(m, "ga|" + r["guardrail_action"], 1)
        for entity, count in (r.get("entities") or {}).items():
            _add(m, "ent|" + _bounded(m, s, "ent", entity), count)
    return out


@pytest.mark.parametrize("seed", range(8))
def test_grouped_fold_equals_writing_out_every_record(seed):
    """Grouping records before writing them out changes no counter, also past TOP distinct values a
    dimension (which values get "~other" depends on the order of first appearance)."""
    rng = random.Random(seed)
    pool = lambda prefix, n: [f"{prefix}{i}" for i in range(n)]  # noqa: E731
    keys, models = pool("k", rng.choice([3, 80])), pool("m", rng.choice([2, 70]))
    records = []
    for _ in range(rng.randint(1, 3000)):
        ents = {e: rng.randint(1, 3) for e in rng.sample(pool("E", 60 if seed % 2 else 3), rng.randint(0, 2))}
        records.append(rec(T0 + rng.uniform(0, 240), status=rng.choice([200, 200, 200, 400, 403, 429, 500, 502, 0]),
                           lat=rng.choice([0.5, rng.uniform(1, 5000)]), ttft=rng.choice([None, rng.uniform(0, 900)]),
                           alias=rng.choice(pool("a", 60) + [""]), provider=rng.choice(["p1", "p2", ""]),
                           key=rng.choice(keys), team=rng.choice(["t1", "t2", ""]), model=rng.choice(models),
                           cost=rng.choice([0.0, rng.uniform(0, 0.1)]), tin=rng.randint(0, 900), tout=rng.randint(0, 900),
                           action=rng.choice(["allow", "allow", "redact", "block"]),
                           reason=rng.choice([None, None, "guardrail.pii", "rate_limit.requests"]), entities=ents))
    if seed % 4 < 2:  # mostly repeats, as under load: groups of many records
        protos = records[:rng.randint(1, 25)]
        records = [dict(rng.choice(protos)) for _ in range(rng.randint(1, 3000))]
    want, got = _fold_one_by_one(records), fold(records)
    assert sorted(got) == sorted(want)
    for minute in want:
        assert sorted(got[minute]) == sorted(want[minute]), minute
        for k, v in want[minute].items():
            assert got[minute][k] == pytest.approx(v, rel=1e-9, abs=1e-12), k
