"""Upstream faults over real sockets: resets mid-stream, slow drips, hangs, malformed SSE and JSON, and
200s that carry an error. For each, the caller gets a well-formed answer or error, the request is
counted once against limits and budgets, and exactly one audit record is written for it."""

from __future__ import annotations

import time

import httpx

import pytest

from tests.faults.wire import AUTH, MSGS, audit_verify, by_request_id, openai_error, openai_stream, records
from tests.support.fake_upstream import Reply, sse_events, transcript

AUDIT = """
[audit]
flush_interval_ms = 2
[[audit.sinks]]
type = "file"
path = "audit/records.jsonl"

[models.retrying]
targets = [{ provider = "up", model = "gpt-4o-mini" }]
retry_base_s = 0.01
max_attempts = 3
"""
SERVER = """
first_byte_timeout_s = 0.5
idle_timeout_s = 0.5
total_timeout_s = 5
"""
ONE_RPM = {"limits.toml": """
[[rate_limits]]
id = "one"
scope = "key"
rpm = 1
"""}
STREAM = transcript("openai_stream_text.sse")


@pytest.fixture
def gw(make_gateway):
    return make_gateway(extra=AUDIT, server=SERVER)


def audit_path(gw):
    return gw.config_path.parent / "audit" / "records.jsonl"


def chat(gw, model="gpt", stream=False, **body) -> httpx.Response:
    payload = {"model": model, "messages": MSGS, "stream": stream, **body}
    return httpx.post(gw.v1 + "/chat/completions", json=payload, headers=AUTH, timeout=15)


def wait_idle(gw) -> None:
    for _ in range(250):
        if gw.state.in_flight == 0:
            return
        time.sleep(0.02)


def garbage_sse() -> bytes:
    """The text transcript with a stray non-SSE line, a comment, an unknown field and an empty data."""
    events = STREAM.replace(b"\r\n", b"\n").split(b"\n\n")
    return b"\n\n".join(events[:2] + [b"this is not sse", b": a comment", b"foo: bar", b"data:"] + events[2:])


def truncated_json_sse(with_usage: bool) -> bytes:
    cut = b'data: {"id":"x","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"He'
    if with_usage:  # the adapter parses chunks that carry usage, so this exercises its JSON decoding
        cut = b'data: {"id":"x","choices":[],"usage":{"prompt_tokens":3,'
    events = STREAM.replace(b"\r\n", b"\n").split(b"\n\n")
    return b"\n\n".join(events[:2] + [cut] + events[2:])


def without_done() -> bytes:
    return STREAM.replace(b"\r\n", b"\n").replace(b"data: [DONE]\n\n", b"")


@pytest.mark.parametrize("sse,name", [
    (STREAM, "clean"),
    (garbage_sse(), "garbage lines"),
    (truncated_json_sse(False), "truncated JSON"),
    (truncated_json_sse(True), "truncated JSON in a usage chunk"),
    (without_done(), "no [DONE]"),
])
def test_malformed_upstream_sse_still_gives_the_client_valid_sse(gw, upstream, sse, name):
    upstream.push(Reply(sse=sse))
    r = chat(gw, stream=True)
    assert r.status_code == 200, name
    chunks, end = openai_stream(r.content)
    assert end in ("done", "error"), name
    wait_idle(gw)
    recs = records(audit_path(gw), 1)
    assert len(recs) == 1 and recs[0]["request_id"] == r.headers["x-request-id"]


def test_upstream_reset_mid_stream_ends_with_an_error_event_and_one_record(gw, upstream):
    upstream.push(Reply(sse=STREAM, reset_after=3))
    r = chat(gw, stream=True)
    chunks, end = openai_stream(r.content)
    assert end == "error" and len(chunks) >= 2
    wait_idle(gw)
    (rec,) = records(audit_path(gw), 1)
    assert rec["request_id"] == r.headers["x-request-id"] and rec["error_code"] and rec["attempts"] == 1
    assert len(upstream.requests) == 1, "nothing is retried once bytes went to the client"


def test_slow_drip_within_the_idle_timeout_is_relayed_whole(gw, upstream):
    upstream.push(Reply(sse=STREAM, event_delay=0.05))
    r = chat(gw, stream=True)
    chunks, end = openai_stream(r.content)
    assert end == "done"
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c.get("choices"))
    assert text == "Hello! How can I help you today?"


def test_drip_slower_than_the_idle_timeout_ends_with_an_error_event(gw, upstream):
    events = sse_events(STREAM)
    # The role chunk and the first text together, then a stall: content has started, so no retry.
    upstream.push(Reply(writes=[events[0] + events[1], b"".join(events[2:])], event_delay=1.0))
    r = chat(gw, stream=True)
    _, end = openai_stream(r.content)
    assert end == "error"
    assert len(upstream.requests) == 1


def test_stall_before_the_first_content_is_retried(gw, upstream):
    upstream.push(Reply(sse=STREAM, event_delay=1.0))  # the role chunk, then nothing for 1 s
    r = chat(gw, stream=True)
    chunks, end = openai_stream(r.content)
    assert end == "done" and r.headers["x-gateway-attempts"] == "2"
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c.get("choices"))
    assert text == "Hello! How can I help you today?"
    assert len(upstream.requests) == 2


@pytest.mark.parametrize("stream", [False, True])
def test_hanging_upstream_is_a_504_in_openai_shape_and_one_record(gw, upstream, stream):
    upstream.push(*[Reply(hang=True)] * 3)
    t0 = time.monotonic()
    r = chat(gw, stream=stream)
    assert time.monotonic() - t0 < 5
    assert r.status_code == 504
    assert openai_error(r.content)["code"] == "upstream_timeout"
    wait_idle(gw)
    recs = records(audit_path(gw), 1)
    assert by_request_id(recs) == {r.headers["x-request-id"]: 1}


@pytest.mark.parametrize("body", [b"", b"not json", b'{"choices": [', b"[1, 2, 3]", b"\xff\xfe garbage"])
def test_malformed_upstream_json_is_a_502_in_openai_shape(gw, upstream, body):
    upstream.push(*[Reply(body=body)] * 3)  # a 200 that fails before its content is retried, like a 5xx
    r = chat(gw)
    assert r.status_code == 502, r.content
    openai_error(r.content)
    assert len(upstream.requests) == 3
    wait_idle(gw)
    assert len(records(audit_path(gw), 1)) == 1


def test_upstream_200_with_an_error_body_is_not_passed_off_as_a_completion(gw, upstream):
    upstream.push(*[Reply(body=b'{"error": {"message": "model overloaded", "type": "server_error", "code": null}}')] * 3)
    r = chat(gw)
    assert r.status_code == 502, r.content
    openai_error(r.content)
    assert len(upstream.requests) == 3


def test_upstream_200_sse_carrying_only_an_error_event_is_retried_then_a_502(gw, upstream):
    # No content came before the error: nothing was sent, so each attempt is retried like a 5xx, and
    # when all fail the caller gets an error response rather than a stream.
    upstream.push(*[Reply(sse=b'data: {"error": {"message": "overloaded", "type": "server_error"}}\n\n')] * 3)
    r = chat(gw, stream=True)
    assert r.status_code == 502
    assert openai_error(r.content)["code"] == "upstream_stream_error"
    assert len(upstream.requests) == 3


def test_a_retried_request_is_counted_once_against_the_rate_limit(make_gateway, upstream):
    gw = make_gateway(extra=AUDIT, server=SERVER, policies=ONE_RPM)
    upstream.push(Reply(status=500, body=b'{"error": {"message": "boom"}}'), Reply(status=503, body=b"{}"))
    r = chat(gw, model="retrying")
    assert r.status_code == 200 and r.headers["x-gateway-attempts"] == "3"
    again = chat(gw, model="retrying")
    assert again.status_code == 429 and openai_error(again.content)["code"] == "rate_limit_exceeded"
    assert len(upstream.requests) == 3
    wait_idle(gw)
    recs = records(audit_path(gw), 2)
    assert by_request_id(recs) == {r.headers["x-request-id"]: 1, again.headers["x-request-id"]: 1}


def test_a_failed_request_with_retries_consumes_exactly_one_request(make_gateway, upstream):
    gw = make_gateway(extra=AUDIT, server=SERVER, policies={"limits.toml": """
        [[rate_limits]]
        id = "two"
        scope = "key"
        rpm = 2
        """})
    upstream.push(*[Reply(status=503, body=b'{"error": {"message": "down"}}')] * 3)
    failed = chat(gw, model="retrying")
    assert failed.status_code == 503 and openai_error(failed.content)["type"] == "api_error"
    assert len(upstream.requests) == 3
    assert chat(gw, model="retrying").status_code == 200, "the failed request took one of the two, not three"
    assert chat(gw, model="retrying").status_code == 429


def test_a_retried_request_is_charged_once_against_a_token_budget(make_gateway, upstream, servers):
    gw = make_gateway(extra=AUDIT, server=SERVER, policies={"budgets.toml": """
        [[budgets]]
        id = "tok"
        scope = "key"
        tokens = 1000000
        window = "day"
        """})
    upstream.push(Reply(status=500, body=b"{}"), Reply(status=500, body=b"{}"))
    r = chat(gw, model="retrying")
    assert r.status_code == 200 and r.headers["x-gateway-attempts"] == "3"
    usage = r.json()["usage"]
    wait_idle(gw)
    store = gw.state.runtime.services.store
    (key,) = [k for k in store._budgets if "bg:tok:" in k]  # the memory store's one budget counter
    spent, reserved = servers.run(store.budget_usage(key, 0, time.time() * 1000))
    assert spent == usage["prompt_tokens"] + usage["completion_tokens"] and reserved == 0


def test_every_fault_leaves_one_record_per_request_and_a_verifiable_chain(gw, upstream):
    upstream.push(Reply(sse=STREAM, reset_after=2), Reply(hang=True), Reply(hang=True), Reply(hang=True),
                  *[Reply(body=b"nope")] * 3, Reply(sse=STREAM, stall_after=2), Reply(sse=without_done()))
    ids = [chat(gw, stream=True).headers["x-request-id"], chat(gw).headers["x-request-id"],
           chat(gw).headers["x-request-id"], chat(gw, stream=True).headers["x-request-id"],
           chat(gw, stream=True).headers["x-request-id"]]
    wait_idle(gw)
    recs = records(audit_path(gw), len(ids))
    assert by_request_id(recs) == {i: 1 for i in ids}
    out = audit_verify(gw.config_path)
    assert out.returncode == 0, out.stdout + out.stderr
