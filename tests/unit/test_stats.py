"""/stats rolling windows: percentiles over a known set, windows expire, memory stays bounded, and the
windows of several workers merge into the instance's."""

import orjson
import pytest

from gateway.records.stats import GAMMA, RollingStats, bin_of, percentile


def rec(lat, status=200, ttft=None, block=None, key="k1", team="t1", model="m1", tokens=(10, 5), cost=0.01):
    return {"status": status, "latency_ms": lat, "ttft_ms": ttft, "block_reason": block, "key_id": key,
            "team": team, "model": model, "input_tokens": tokens[0], "output_tokens": tokens[1], "cost_usd": cost}


def test_percentiles_match_a_known_set():
    st = RollingStats(clock=lambda: 1000.0)
    st.started = 0.0
    lats = list(range(1, 51))  # 50 requests, 1..50 ms, spread over 5 seconds (10 a second)
    for i, lat in enumerate(lats):
        st.observe(rec(float(lat), ttft=float(lat) / 2), now=995.0 + i // 10)
    w = st.snapshot(now=999.5)["windows"]["1m"]
    assert w["requests"] == 50 and w["rps"] == round(50 / 60, 3)
    # Within 2% of the exact nearest-rank values (a log bin's midpoint).
    assert w["latency_ms"] == {k: pytest.approx(v, rel=0.02) for k, v in {"p50": 25.0, "p95": 48.0, "p99": 50.0}.items()}
    assert w["ttft_ms"] == {k: pytest.approx(v, rel=0.02) for k, v in {"p50": 12.5, "p95": 24.0, "p99": 25.0}.items()}
    assert st.snapshot(now=999.5)["windows"]["1h"]["latency_ms"] == w["latency_ms"]


def test_nearest_rank_over_bins():
    assert percentile({}, 0.5) is None
    assert percentile({bin_of(7.0): 1}, 0.99) == pytest.approx(7.0, rel=0.02)
    hist: dict[int, int] = {}
    for x in (1.0, 2.0, 3.0, 4.0):
        hist[bin_of(x)] = hist.get(bin_of(x), 0) + 1
    assert percentile(hist, 0.5) == pytest.approx(2.0, rel=0.02)
    assert percentile({bin_of(0.0): 3}, 0.5) < 0.01  # zero lands in the lowest bin, not an error


def test_bins_are_within_two_percent_everywhere():
    for ms in (0.013, 0.9, 1.0, 17.3, 250.0, 9_999.0, 300_000.0):
        assert percentile({bin_of(ms): 1}, 0.5) == pytest.approx(ms, rel=(GAMMA - 1) / 2 + 1e-3)


def test_workers_windows_merge_into_the_instances():
    """Two workers' exports (through JSON, as the instance directory carries them) merge into the same
    counts and percentiles as one process that saw every request."""
    one, a, b = RollingStats(), RollingStats(), RollingStats()
    for st in (one, a, b):
        st.started = 0.0
    for i in range(200):
        r = rec(float(1 + i), status=502 if i % 10 == 0 else 200, block="guardrail.pii" if i % 7 == 0 else None,
                key=f"k{i % 3}", ttft=float(i) / 3)
        one.observe(r, now=5000.0 + i % 40)
        (a if i < 100 else b).observe(r, now=5000.0 + i % 40)  # b saw the slow half
    peer = orjson.loads(orjson.dumps(b.export(now=5045.0), option=orjson.OPT_NON_STR_KEYS))
    merged, whole = a.snapshot(now=5045.0, peers=[peer]), one.snapshot(now=5045.0)
    assert merged["windows"] == whole["windows"]
    assert merged["usage_1h"] == whole["usage_1h"]
    assert merged["windows"]["1m"]["requests"] == 200 and merged["windows"]["1m"]["errors"] == 20
    alone = a.snapshot(now=5045.0)["windows"]["1m"]
    assert alone["requests"] == 100 and alone["latency_ms"] != whole["windows"]["1m"]["latency_ms"]


def test_error_rates_block_reasons_and_usage():
    st = RollingStats()
    now = 5000.0
    st.started = 0.0
    for _ in range(6):
        st.observe(rec(10.0), now=now)
    st.observe(rec(10.0, status=502), now=now)
    st.observe(rec(1.0, status=429, block="rate_limit.requests", key="k2", tokens=(0, 0), cost=0.0), now=now)
    st.observe(rec(1.0, status=429, block="rate_limit.requests", key="k2", tokens=(0, 0), cost=0.0), now=now)
    st.observe(rec(1.0, status=400, block="guardrail.pii", model=None), now=now)
    snap = st.snapshot(now=now)
    w = snap["windows"]["5m"]
    assert w["requests"] == 10 and w["error_rate"] == 0.1 and w["rejected_rate"] == 0.3
    assert w["top_block_reasons"] == [{"reason": "rate_limit.requests", "count": 2}, {"reason": "guardrail.pii", "count": 1}]
    assert snap["usage_1h"]["by_key"]["k1"] == {"requests": 8, "input_tokens": 80, "output_tokens": 40, "cost_usd": 0.08}
    assert snap["usage_1h"]["by_key"]["k2"]["requests"] == 2
    assert snap["usage_1h"]["by_model"]["m1"]["requests"] == 9


def test_windows_expire():
    st = RollingStats()
    st.started = 0.0
    st.observe(rec(5.0), now=10_000.0)
    assert st.snapshot(now=10_030.0)["windows"]["1m"]["requests"] == 1
    assert st.snapshot(now=10_061.0)["windows"]["1m"]["requests"] == 0
    assert st.snapshot(now=10_200.0)["windows"]["5m"]["requests"] == 1
    assert st.snapshot(now=10_301.0)["windows"]["5m"]["requests"] == 0
    assert st.snapshot(now=10_000.0 + 3000)["windows"]["1h"]["requests"] == 1
    assert st.snapshot(now=10_000.0 + 3700)["windows"]["1h"]["requests"] == 0


def test_memory_is_bounded_under_load():
    st = RollingStats()
    for i in range(20_000):
        st.observe(rec(float(i % 997)), now=777.0)
    # 997 distinct latencies: at most one bin per 4% of range, not one entry per request.
    assert all(len(b.lat) <= 200 for b in st._sec + st._min)
    assert st.snapshot(now=777.0)["windows"]["1m"]["requests"] == 20_000


def test_registered_sources_fill_slots_and_failures_are_contained():
    st = RollingStats()
    st.register("budgets", lambda: {"team-x": {"used_usd": 1.5, "limit_usd": 10}})
    st.register("breakers", lambda: 1 / 0)
    snap = st.snapshot()
    assert snap["budgets"]["team-x"]["used_usd"] == 1.5
    assert snap["breakers"]["error"].startswith("ZeroDivisionError")


def test_cache_outcomes_hit_ratio_and_saved_usd_per_alias():
    st = RollingStats()
    st.started = 0.0
    now = 7200.0

    def cached(alias, outcome, saved=0.0):
        return {**rec(2.0), "alias": alias, "cache": outcome, "cache_saved_usd": saved}

    for _ in range(3):
        st.observe(cached("gpt", "hit", 0.25), now=now)
    st.observe(cached("gpt", "miss"), now=now)
    st.observe(cached("gpt", "bypass"), now=now)
    st.observe(cached("claude", "bypass"), now=now)
    st.observe(rec(2.0), now=now)  # no [[cache]] rule: not counted
    by_alias = st.snapshot(now=now)["cache_1h"]["by_alias"]
    assert by_alias == {
        "claude": {"hit": 0, "miss": 0, "bypass": 1, "hit_ratio": None, "saved_usd": 0.0},
        "gpt": {"hit": 3, "miss": 1, "bypass": 1, "hit_ratio": 0.75, "saved_usd": 0.75},
    }
    assert st.snapshot(now=now + 3700)["cache_1h"]["by_alias"] == {}, "an hour later the window is empty"


def test_cache_outcomes_merge_across_workers():
    """Under --workers each worker exports its buckets and /stats merges them: the cache rows add up."""
    a, b = RollingStats(), RollingStats()
    now = 9000.0
    for st, outcome in ((a, "hit"), (a, "miss"), (b, "hit"), (b, "hit")):
        st.started = 0.0
        st.observe({**rec(2.0), "alias": "gpt", "cache": outcome, "cache_saved_usd": 0.5 if outcome == "hit" else 0.0},
                   now=now)
    import orjson

    peer = orjson.loads(orjson.dumps(b.export(now=now), option=orjson.OPT_NON_STR_KEYS))  # as gateway.records.multiproc writes it
    row = a.snapshot(now=now, peers=[peer])["cache_1h"]["by_alias"]["gpt"]
    assert row == {"hit": 3, "miss": 1, "bypass": 0, "hit_ratio": 0.75, "saved_usd": 1.5}
