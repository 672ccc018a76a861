"""Shadow traffic over real sockets with the openai SDK: the primary alias answers from the mock provider,
the candidate from the fake upstream, which holds or fails the shadow copy. The caller's answer, latency,
limits and budgets never depend on the copy; the sample rate is honoured; the copy's tokens count against
the shadow budget only; a full queue drops copies and counts them; each pair is recorded and summarised."""

from __future__ import annotations

import asyncio
import time
import urllib.request

import openai
import orjson
import pytest

from tests.support.fake_upstream import Reply
from tests.support.gateway import TEST_KEY

PROMPT = "Hello! How can I help you today?"  # the mock echoes it; the fake upstream's answer is this text


def config(sample: float, audit: bool = True) -> str:
    audit_text = '[audit]\nflush_interval_ms = 2\n[[audit.sinks]]\ntype = "file"\npath = "audit/records.jsonl"\n'
    return f"""
[models.prim]
targets = [{{ provider = "mock", model = "mock-1" }}]
shadow = {{ alias = "cand", sample = {sample}, timeout_s = 10 }}

[models.cand]
targets = [{{ provider = "up", model = "cand-model" }}]
max_attempts = 1
{audit_text if audit else ""}"""


def make(make_gateway, sample: float, server: str = "", policies: dict | None = None):
    return make_gateway(extra=config(sample), server=server, policies=policies)


def client(gw) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.v1, api_key=TEST_KEY, max_retries=0)


def ask(gw, text: str = PROMPT, stream: bool = False, model: str = "prim") -> str:
    c = client(gw)
    msgs = [{"role": "user", "content": text}]
    if stream:
        return "".join(ch.choices[0].delta.content or "" for ch in
                       c.chat.completions.create(model=model, messages=msgs, stream=True) if ch.choices)
    return c.chat.completions.create(model=model, messages=msgs).choices[0].message.content


def stats(gw) -> dict:
    with urllib.request.urlopen(gw.url + "/stats", timeout=10) as resp:
        return orjson.loads(resp.read())


def metrics(gw) -> str:
    with urllib.request.urlopen(gw.url + "/metrics", timeout=10) as resp:
        return resp.read().decode()


def wait_pairs(gw, n: int, timeout: float = 10.0) -> dict:
    deadline = time.time() + timeout
    while True:
        s = stats(gw)["shadow"]
        row = s["by_alias"].get("prim")
        if (row is not None and row["pairs"] >= n) or time.time() > deadline:
            return s
        time.sleep(0.05)


def pair_records(gw, n: int = 1) -> list[dict]:
    path = gw.config_path.parent / "audit" / "records.jsonl"
    deadline = time.time() + 5
    while True:
        recs = [orjson.loads(x) for x in path.read_bytes().splitlines()] if path.exists() else []
        recs = [r for r in recs if r["type"] == "shadow"]
        if len(recs) >= n or time.time() > deadline:
            return recs
        time.sleep(0.05)


@pytest.mark.parametrize("stream", [False, True])
def test_a_held_shadow_never_delays_or_changes_the_callers_answer(make_gateway, upstream, servers, stream):
    gw = make(make_gateway, 1.0)
    reference = ask(gw, stream=stream, model="demo")  # the same mock answer with no shadow at all
    hold = asyncio.Event()
    upstream.push(Reply(body=_chat_body("Hello! How can I help you?"), hold=hold))
    t0 = time.monotonic()
    answer = ask(gw, stream=stream)
    elapsed = time.monotonic() - t0
    assert answer == reference == PROMPT
    assert elapsed < 1.0  # the copy is still held upstream
    deadline = time.time() + 5
    while not upstream.requests and time.time() < deadline:
        time.sleep(0.01)
    [seen] = upstream.requests  # the copy reached the candidate while the caller already had its answer
    assert seen.body["model"] == "cand-model" and "stream" not in seen.body
    assert stats(gw)["shadow"]["by_alias"] == {}  # no pair yet: the candidate has not answered
    servers.loop.call_soon_threadsafe(hold.set)
    s = wait_pairs(gw, 1)
    row = s["by_alias"]["prim"]
    assert row["candidate"] == "cand" and row["compared"] == 1 and row["shadow_failed"] == 0
    assert 0.5 < row["jaccard"] < 1.0 and 0.5 < row["cosine"] < 1.0
    assert row["shadow"]["output_tokens"] == 10
    [rec] = pair_records(gw)
    assert rec["outcome"] == "compared" and rec["alias"] == "prim" and rec["candidate"] == "cand"
    assert rec["primary"]["finish_reason"] == rec["shadow"]["finish_reason"] == "stop"
    assert rec["primary"]["answer_chars"] == len(PROMPT)
    assert rec["shadow"]["answer_chars"] == len("Hello! How can I help you?")
    assert rec["shadow"]["latency_ms"] > rec["primary"]["latency_ms"]  # the copy waited for the hold
    assert rec["hash"]
    assert 'gateway_shadow_pairs_total{alias="prim",candidate="cand",outcome="compared"} 1.0' in metrics(gw)


def _chat_body(text: str) -> bytes:
    return orjson.dumps({"id": "c1", "object": "chat.completion", "created": 1, "model": "cand-model",
                         "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                                      "finish_reason": "stop"}],
                         "usage": {"prompt_tokens": 1830, "completion_tokens": 10, "total_tokens": 1840}})


@pytest.mark.parametrize("reply", [Reply(status=500, body=b'{"error": {"message": "boom"}}'), Reply(hang=True),
                                   Reply(body=b"not json")], ids=["error", "stall", "malformed"])
def test_a_failing_or_stalled_shadow_never_affects_the_caller(make_gateway, upstream, reply):
    gw = make_gateway(extra=config(1.0).replace("timeout_s = 10", "timeout_s = 1"))
    upstream.push(reply)
    t0 = time.monotonic()
    assert ask(gw) == PROMPT
    assert time.monotonic() - t0 < 0.9
    s = wait_pairs(gw, 1, timeout=8)
    row = s["by_alias"]["prim"]
    assert row["shadow_failed"] == 1 and row["compared"] == 0
    [rec] = pair_records(gw)
    assert rec["outcome"] == ("timeout" if reply.hang else "shadow_error") and rec["primary"]["status"] == 200
    assert rec["jaccard"] is None
    assert ask(gw) == PROMPT  # and the next caller too


def test_the_copy_is_the_body_after_input_guardrails(make_gateway, upstream):
    gw = make(make_gateway, 1.0, policies={"g.toml": """
[[guardrails]]
id = "emails"
type = "pii"
entities = ["EMAIL_ADDRESS"]
action = "redact"
"""})
    ask(gw, text="write to jane.doe@example.com please")
    wait_pairs(gw, 1)
    sent = orjson.dumps(upstream.requests[0].body).decode()
    assert "jane.doe@example.com" not in sent and "<EMAIL_ADDRESS>" in sent


def test_sample_rate_is_honoured(make_gateway, upstream):
    gw = make(make_gateway, 0.0)
    for _ in range(20):
        ask(gw)
    time.sleep(0.2)
    assert upstream.requests == [] and stats(gw)["shadow"]["sampled"] == 0
    gw = make(make_gateway, 0.25)
    n = 200
    for _ in range(n):
        ask(gw)
    sampled = stats(gw)["shadow"]["sampled"]
    # Binomial(200, 0.25): mean 50, sd 6.1; 4.5 sd either side fails by chance about once in 150,000 runs.
    assert 23 <= sampled <= 77, sampled
    wait_pairs(gw, sampled)
    assert len(upstream.requests) == sampled


def test_shadow_costs_hit_the_shadow_budget_not_the_callers(make_gateway, upstream):
    gw = make(make_gateway, 1.0, policies={"budgets.toml": """
[[budgets]]
id = "caller"
scope = "key"
tokens = 100000
window = "day"

[[budgets]]
id = "everyone"
scope = "global"
tokens = 100000
window = "day"

[[budgets]]
id = "shadow"
scope = "shadow"
tokens = 100000
window = "day"

[[rate_limits]]
id = "caller-rpm"
scope = "key"
rpm = 3
"""})
    for _ in range(3):
        assert ask(gw) == PROMPT
    wait_pairs(gw, 3)
    report = {r["id"]: r for r in stats(gw)["budgets"] if r["subject"] in ("test", "*", "cand")}
    recs = pair_records(gw, 3)
    primary_tokens = sum(r["primary"]["input_tokens"] + r["primary"]["output_tokens"] for r in recs)
    assert report["shadow"]["spent"] == 3 * 1840  # the candidate's usage, three copies
    assert report["caller"]["spent"] == report["everyone"]["spent"] == primary_tokens < 1840
    # The copies took nothing of the caller's rpm either: its third request was admitted, a fourth is not.
    with pytest.raises(openai.RateLimitError):
        ask(gw)


def test_a_used_up_shadow_budget_refuses_the_copy_not_the_caller(make_gateway, upstream):
    gw = make(make_gateway, 1.0, policies={"budgets.toml": """
[[budgets]]
id = "shadow"
scope = "shadow"
tokens = 0
window = "day"
"""})
    assert ask(gw) == PROMPT
    s = wait_pairs(gw, 1)
    assert s["by_alias"]["prim"]["shadow_failed"] == 1
    assert pair_records(gw)[0]["outcome"] == "refused"
    assert upstream.requests == []


def test_a_full_queue_drops_copies_and_counts_them(make_gateway, upstream, servers):
    gw = make(make_gateway, 1.0, server="shadow_queue = 1\nshadow_workers = 1")
    hold = asyncio.Event()
    upstream.push(Reply(body=_chat_body("x"), hold=hold), Reply(body=_chat_body("y"), hold=hold))
    ask(gw)  # taken by the only worker, held upstream
    deadline = time.time() + 5
    while not upstream.requests and time.time() < deadline:
        time.sleep(0.01)
    for _ in range(4):  # one waits in the queue; three are dropped
        assert ask(gw) == PROMPT
    s = stats(gw)["shadow"]
    assert s["sampled"] == 5 and s["dropped"] == 3
    assert 'gateway_shadow_dropped_total{alias="prim"} 3.0' in metrics(gw)
    servers.loop.call_soon_threadsafe(hold.set)
    assert wait_pairs(gw, 2)["by_alias"]["prim"]["pairs"] == 2
