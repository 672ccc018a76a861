"""One record per request, built when it ends, for every outcome; /metrics and /stats; verify."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import openai
import orjson
import pytest
import urllib.request
from prometheus_client.parser import text_string_to_metric_families

from tests.support.fake_upstream import Reply, transcript
from tests.support.gateway import TEST_KEY, UPSTREAM_SECRET

MSGS = [{"role": "user", "content": "Say hello"}]
AUDIT = """
[audit]
flush_interval_ms = 2
[[audit.sinks]]
type = "file"
path = "audit/records.jsonl"
"""
LIMITS = {"limits.toml": """
[[rate_limits]]
scope = "key"
keys = ["other"]
rpm = 1
"""}


def records(gw, n: int, timeout: float = 10) -> list[dict]:
    path = Path(gw.config_path).parent / "audit" / "records.jsonl"
    deadline = time.time() + timeout
    while time.time() < deadline:
        if path.exists():
            lines = [orjson.loads(x) for x in path.read_bytes().splitlines() if x.strip()]
            reqs = [r for r in lines if r.get("type") == "request"]
            if len(reqs) >= n:
                return reqs
        time.sleep(0.05)
    raise AssertionError(f"expected {n} records in {path}")


def client(gw, key=TEST_KEY) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.v1, api_key=key, max_retries=0)


def wait_idle(gw) -> None:
    for _ in range(200):
        if gw.state.in_flight == 0:
            return
        time.sleep(0.02)


def test_records_for_each_outcome(make_gateway, upstream, servers):
    gw = make_gateway(extra=AUDIT, policies=LIMITS)
    trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    # 1. success
    client(gw).chat.completions.create(model="gpt", messages=MSGS, extra_headers={
        "traceparent": f"00-{trace}-00f067aa0ba902b7-01", "x-gateway-tags": "feature-x,exp-1"})
    # 2. upstream failure (every attempt fails)
    for _ in range(3):
        upstream.push(Reply(status=503, body=b'{"error": {"message": "down"}}'))
    with pytest.raises(openai.APIStatusError):
        client(gw).chat.completions.create(model="gpt", messages=MSGS)
    # 3. rate limited
    from tests.support.gateway import OTHER_KEY
    client(gw, OTHER_KEY).chat.completions.create(model="demo", messages=MSGS)
    with pytest.raises(openai.RateLimitError):
        client(gw, OTHER_KEY).chat.completions.create(model="demo", messages=MSGS)
    # 4. client disconnected mid-stream
    upstream.push(Reply(sse=transcript("openai_stream_text.sse"), stall_after=2))
    s = client(gw).chat.completions.create(model="gpt", messages=MSGS, stream=True)
    next(iter(s))
    s.close()
    servers.run(asyncio.wait_for(upstream.abandoned_event.wait(), 5))
    wait_idle(gw)
    recs = records(gw, 5)
    ok, failed, limited_ok, limited, gone = recs[:5]
    assert ok["status"] == 200 and ok["key_id"] == "test" and ok["team"] == "team-a"
    assert ok["trace_id"] == trace and ok["parent_span_id"] == "00f067aa0ba902b7"
    assert ok["provider"] == "up" and ok["model"] == "gpt-4o-mini" and ok["alias"] == "gpt"
    assert ok["input_tokens"] == 1830 and ok["output_tokens"] == 10 and ok["cached_tokens"] == 1792
    assert ok["cost_usd"] > 0 and ok["tags"] == ["feature-x", "exp-1"]
    assert ok["latency_ms"] >= ok["upstream_ms"] >= 0 and ok["overhead_ms"] >= 0 and ok["ttft_ms"] is not None
    assert ok["user_hash"] and ok["user_hash"] != "alice"
    assert failed["status"] == 503 and failed["attempts"] == 3 and failed["upstream_status"] == 503
    assert limited_ok["status"] == 200 and limited_ok["provider"] == "mock"
    assert limited["status"] == 429 and limited["block_reason"].startswith("rate_limit")
    assert gone["client_disconnected"] is True and gone["usage_estimated"] is True and gone["output_tokens"] > 0
    assert len({r["request_id"] for r in recs}) == len(recs)
    # The log verifies, and nothing in it holds the provider secret.
    text = (Path(gw.config_path).parent / "audit" / "records.jsonl").read_text()
    assert UPSTREAM_SECRET not in text


def test_metrics_parse_and_stats_report(make_gateway, upstream):
    gw = make_gateway(extra=AUDIT)
    for _ in range(3):
        client(gw).chat.completions.create(model="gpt", messages=MSGS)
    with urllib.request.urlopen(gw.url + "/metrics", timeout=5) as r:
        families = {f.name: f for f in text_string_to_metric_families(r.read().decode())}
    reqs = families["gateway_requests"]
    total = sum(s.value for s in reqs.samples if s.name == "gateway_requests_total" and s.labels.get("status") == "200")
    assert total == 3
    assert {"gateway_request_duration_seconds", "gateway_time_to_first_token_seconds", "gateway_overhead_seconds"} <= set(families)
    with urllib.request.urlopen(gw.url + "/stats", timeout=5) as r:
        stats = orjson.loads(r.read())
    assert stats["breakers"] == {"up/gpt-4o-mini": "closed", "mock/mock-1": "closed"}
    assert UPSTREAM_SECRET not in orjson.dumps(stats).decode()


def test_audit_verify_passes_on_the_written_log_and_fails_after_an_edit(make_gateway, upstream):
    gw = make_gateway(extra=AUDIT)
    for _ in range(4):
        client(gw).chat.completions.create(model="gpt", messages=MSGS)
    records(gw, 4)
    cmd = [sys.executable, "-m", "gateway", "audit", "verify", "--config", str(gw.config_path)]
    ok = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    path = Path(gw.config_path).parent / "audit" / "records.jsonl"
    data = path.read_bytes()
    i = data.index(b'"output_tokens":10')
    path.write_bytes(data[:i] + b'"output_tokens":11' + data[i + 18:])
    bad = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert bad.returncode != 0 and "hash mismatch" in (bad.stdout + bad.stderr)


def test_logged_payloads_are_stored_after_redaction(make_gateway, upstream):
    gw = make_gateway(extra=AUDIT.replace("flush_interval_ms = 2", "flush_interval_ms = 2\nlog_payloads = true"),
                      policies={"guardrails.toml": """
[[guardrails]]
id = "pii"
type = "pii"
entities = ["EMAIL_ADDRESS"]
action = "redact"
direction = "both"
"""})
    upstream.push(Reply(body=orjson.dumps({"id": "c", "object": "chat.completion", "created": 1, "model": "m",
                                           "choices": [{"index": 0, "finish_reason": "stop", "message": {
                                               "role": "assistant", "content": "Reply to ann@corp.com"}}],
                                           "usage": {"prompt_tokens": 3, "completion_tokens": 4}})))
    client(gw).chat.completions.create(model="gpt", messages=[{"role": "user", "content": "mail bob@corp.com"}])
    rec = records(gw, 1)[0]
    assert "bob@corp.com" not in rec["payload"]["request"] and "<EMAIL_ADDRESS>" in rec["payload"]["request"]
    assert "ann@corp.com" not in rec["payload"]["response"] and "<EMAIL_ADDRESS>" in rec["payload"]["response"]
