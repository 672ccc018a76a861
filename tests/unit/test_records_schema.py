"""The request record built from finished contexts, and docs/records.md against the code."""

import re
from pathlib import Path

from gateway import reasons
from gateway.context import Decision, Principal, RequestContext, Target, Timings, Usage
from gateway.errors import PolicyBlocked, RateLimited, UpstreamError
from gateway.records.chain import Chain
from gateway.records.schema import CHECKPOINT_FIELDS, RECORD_FIELDS, build_record, user_hash

KEY = b"k" * 32
DOC = Path(__file__).resolve().parents[2] / "docs" / "records.md"


def make_ctx(**kw) -> RequestContext:
    base = dict(
        request_id="req-1", api="chat", shape="openai", runtime=None, received_at=1700000000.5,
        trace_id="t" * 32, span_id="s" * 16, principal=Principal("key-a", team="team-x", user="alice"),
        alias="gpt-fast", stream=True, tags=("prod",), target=Target("gpt-fast", "openai", "gpt-4o-mini"),
        attempts=1, status=200, usage=Usage(120, 30, 20, False),
        timings=Timings(start=10.0, upstream_start=10.001, first_byte=10.2, first_token=10.25, end=11.0,
                        upstream_wait=0.98),
    )
    base.update(kw)
    return RequestContext(**base)


def test_success_record_fields():
    rec = build_record(make_ctx(), cost_usd=0.0012, user_hash_key=KEY)
    assert rec["request_id"] == "req-1" and rec["trace_id"] == "t" * 32 and rec["span_id"] == "s" * 16
    assert (rec["key_id"], rec["team"], rec["tags"]) == ("key-a", "team-x", ["prod"])
    assert rec["user_hash"] == user_hash(KEY, "alice") and "alice" not in str(rec)
    assert (rec["route"], rec["alias"], rec["provider"], rec["model"]) == ("chat", "gpt-fast", "openai", "gpt-4o-mini")
    assert (rec["status"], rec["error_type"], rec["attempts"]) == (200, None, 1)
    assert (rec["input_tokens"], rec["output_tokens"], rec["cached_tokens"], rec["usage_estimated"]) == (120, 30, 20, False)
    assert rec["cost_usd"] == 0.0012
    assert rec["latency_ms"] == 1000.0 and rec["ttft_ms"] == 250.0
    assert rec["upstream_ms"] == 980.0 and rec["overhead_ms"] == 20.0
    assert rec["guardrail_action"] == "allow" and rec["block_reason"] is None
    assert set(rec) == {f for f, _, _ in RECORD_FIELDS} - {"writer", "seq", "prev_hash", "hash", "payload"}


def test_upstream_failure_record():
    err = UpstreamError("upstream failed", upstream_status=503)
    rec = build_record(make_ctx(status=502, error=err, attempts=3, usage=Usage(),
                                timings=Timings(start=1.0, end=1.5, upstream_wait=0.45)), cost_usd=0.0, user_hash_key=KEY)
    assert (rec["status"], rec["error_type"], rec["error_code"], rec["upstream_status"]) == (502, "api_error", "upstream_error", 503)
    assert rec["attempts"] == 3 and rec["ttft_ms"] is None and rec["overhead_ms"] == 50.0


def test_rate_limited_record():
    d = Decision("rl-team", "rate_limit", "block", reasons.RATE_LIMIT_REQUESTS)
    rec = build_record(make_ctx(status=0, error=RateLimited("slow down"), target=None, attempts=0, usage=Usage(),
                                decisions=[d], timings=Timings(start=1.0, end=1.0005)), cost_usd=0.0, user_hash_key=KEY)
    assert (rec["status"], rec["error_type"], rec["error_code"]) == (429, "rate_limit_error", "rate_limit_exceeded")
    assert rec["block_reason"] == reasons.RATE_LIMIT_REQUESTS and rec["guardrail_action"] == "block"
    assert rec["provider"] is None and rec["model"] is None and rec["upstream_ms"] == 0.0
    assert rec["decisions"][0]["kind"] == "rate_limit"


def test_guardrail_blocked_record():
    ds = [Decision("pii", "pii", "redact", reasons.PII_DETECTED, entities={"EMAIL": 2, "PHONE": 1}),
          Decision("inj", "injection", "block", reasons.INJECTION_DETECTED, score=0.97, unscanned_chars=12),
          Decision("pii-out", "pii", "mask", reasons.PII_DETECTED, direction="output", entities={"EMAIL": 1})]
    rec = build_record(make_ctx(status=400, error=PolicyBlocked("blocked"), decisions=ds, target=None),
                       cost_usd=0.0, user_hash_key=KEY)
    assert rec["guardrail_action"] == "block" and rec["block_reason"] == reasons.INJECTION_DETECTED
    assert rec["entities"] == {"EMAIL": 3, "PHONE": 1}
    assert rec["injection_score"] == 0.97 and rec["unscanned_chars"] == 12
    assert rec["error_code"] == "content_policy_violation" and len(rec["decisions"]) == 3


def test_client_disconnected_record():
    rec = build_record(make_ctx(status=200, client_disconnected=True, usage=Usage(100, 7, 0, True),
                                timings=Timings(start=1.0, first_token=1.1, end=1.3, upstream_wait=0.29)),
                       cost_usd=0.0001, user_hash_key=KEY)
    assert rec["client_disconnected"] is True and rec["usage_estimated"] is True and rec["output_tokens"] == 7


def test_unauthenticated_record_has_no_key_and_user_from_body():
    rec = build_record(make_ctx(principal=None, body={"user": "bob"}, status=401), cost_usd=0.0, user_hash_key=KEY)
    assert rec["key_id"] is None and rec["team"] is None and rec["user_hash"] == user_hash(KEY, "bob")


def test_sealed_record_has_exactly_the_documented_fields():
    line = Chain("w", None).seal(build_record(make_ctx(), cost_usd=0.0, user_hash_key=KEY))
    import orjson
    assert list(orjson.loads(line)) and set(orjson.loads(line)) == {f for f, _, _ in RECORD_FIELDS} - {"payload"}


def _doc_table(section: str) -> list[str]:
    text = DOC.read_text()
    body = text.split(f"<!-- {section} -->", 1)[1].split("<!-- end -->", 1)[0]
    return re.findall(r"^\| `([a-z0-9_]+)` \|", body, flags=re.M)


def test_doc_lists_the_record_fields():
    assert _doc_table("record-fields") == [f for f, _, _ in RECORD_FIELDS]
    assert _doc_table("checkpoint-fields") == [f for f, _, _ in CHECKPOINT_FIELDS]


def test_doc_lists_the_stats_keys():
    from gateway.records.stats import RollingStats
    snap = RollingStats().snapshot()
    documented = _doc_table("stats-fields")
    window_keys = list(snap["windows"]["1m"])
    assert documented == ["windows"] + window_keys + ["usage_1h", "cache_1h"]


def test_payload_is_recorded_only_when_captured_and_cut_to_the_limit():
    ctx = make_ctx()
    assert "payload" not in build_record(ctx, cost_usd=0.0, user_hash_key=b"k")
    ctx.body = {"model": "m", "messages": [{"role": "user", "content": "x" * 400}]}
    ctx.payload_out = [b"data: one\n\n", b"data: two\n\n"]
    rec = build_record(ctx, cost_usd=0.0, user_hash_key=b"k", payload_max_bytes=300)
    assert rec["payload"]["response"] == "data: one\n\ndata: two\n\n"
    assert len(rec["payload"]["request"]) == 300 and rec["payload"]["truncated"] is True


def test_doc_lists_the_feedback_fields():
    from gateway.records.schema import FEEDBACK_FIELDS

    assert _doc_table("feedback-fields") == [f for f, _, _ in FEEDBACK_FIELDS]


def test_doc_lists_the_shadow_fields():
    from gateway.records.schema import SHADOW_FIELDS

    assert _doc_table("shadow-fields") == [f for f, _, _ in SHADOW_FIELDS]
