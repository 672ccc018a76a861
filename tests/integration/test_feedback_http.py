"""`POST /v1/feedback` over real sockets with the openai SDK: feedback links to the judged request's record
in the audit chain (the newest by the sending key when the id repeats, or the named entry), the comment
is redacted by the PII guardrail, aggregates reach /stats and /metrics; unknown and foreign request ids and
bad bodies are refused in OpenAI's shape; against the file sink (memory store) and the Redis stream sink."""

from __future__ import annotations

import time
import urllib.error
import urllib.request

import openai
import orjson
import pytest

from tests.support.gateway import OTHER_KEY, TEST_KEY

ADMIN_KEY = "admin-secret-feedback-0123456789"
POLICIES = {"guard.toml": """
[[guardrails]]
id = "emails"
type = "pii"
entities = ["EMAIL_ADDRESS"]
action = "redact"
direction = "both"
"""}


def config(sink: str, store: str) -> str:
    sink_text = ('type = "file"\npath = "audit/records.jsonl"' if sink == "file"
                 else f'type = "redis"\nstream = "test:fb:{time.time_ns()}"')
    return f"""
[store]
url = "{store}"
[admin]
key_env = "FB_ADMIN_KEY"
[audit]
flush_interval_ms = 2
ship_interval_ms = 5
[[audit.sinks]]
{sink_text}
"""


@pytest.fixture(params=["file", "redis"])
def gw(request, make_gateway, monkeypatch):
    monkeypatch.setenv("FB_ADMIN_KEY", ADMIN_KEY)
    store = "memory://" if request.param == "file" else request.getfixturevalue("redis_url")
    return make_gateway(extra=config(request.param, store), policies=POLICIES)


def client(gw, key: str = TEST_KEY) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.v1, api_key=key, max_retries=0)


def ask(gw, key: str, request_id: str, model: str = "demo") -> None:
    client(gw, key).chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}],
                                            extra_headers={"x-request-id": request_id})


def send_feedback(gw, body: dict, key: str = TEST_KEY) -> dict:
    return client(gw, key).post("/feedback", body=body, cast_to=object)


def send_until_found(gw, body: dict, key: str = TEST_KEY, timeout: float = 10.0) -> dict:
    """The judged record reaches the log's index within milliseconds of the answer: retry its 404."""
    deadline = time.time() + timeout
    while True:
        try:
            return send_feedback(gw, body, key)
        except openai.NotFoundError:
            if time.time() > deadline:
                raise
            time.sleep(0.05)


def admin_get(gw, path: str) -> bytes:
    req = urllib.request.Request(gw.url + path, headers={"x-admin-key": ADMIN_KEY})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return resp.read()


def feedback_records(gw, n: int, timeout: float = 10.0) -> list[dict]:
    """Feedback records as the audit log holds them (the file sink's lines, or the Redis stream)."""
    deadline = time.time() + timeout
    while True:
        recs = []
        recorder = gw.state.runtime.services.recorder
        for sink in recorder._durable:
            if sink.name == "file":
                with open(sink.path, "rb") as fh:
                    recs = [orjson.loads(line) for line in fh if line.strip()]
            else:
                import redis

                r = redis.Redis.from_url(recorder.cfg.sinks[0].url or gw.state.runtime.config.main.store.url)
                recs = [orjson.loads(e[b"r"]) for _, e in r.xrange(sink.stream)]
        recs = [r for r in recs if r.get("type") == "feedback"]
        if len(recs) >= n or time.time() > deadline:
            return recs
        time.sleep(0.05)


def test_feedback_links_to_the_newest_record_of_the_sending_key(gw):
    ask(gw, TEST_KEY, "dup-1")
    ask(gw, TEST_KEY, "dup-1")
    ask(gw, OTHER_KEY, "dup-1")  # the same caller-supplied id from another key
    got = send_until_found(gw, {"request_id": "dup-1", "score": "up", "labels": ["helpful", "concise"],
                                "comment": "great, mail me at jane.doe@example.com"})
    assert got["object"] == "feedback" and got["alias"] == "demo" and got["score"] == "up"
    assert "jane.doe@example.com" not in got["comment"] and "<EMAIL_ADDRESS>" in got["comment"]
    rows = orjson.loads(admin_get(gw, "/admin/requests?request_id=dup-1&key=test"))["data"]
    assert len(rows) == 2
    assert got["entry"] == rows[0]["entry"]  # newest of the sending key's two

    [rec] = feedback_records(gw, 1)
    judged = orjson.loads(admin_get(gw, f"/admin/requests/{got['entry']}"))["record"]
    assert (rec["judged_writer"], rec["judged_seq"], rec["judged_hash"]) == (judged["writer"], judged["seq"], judged["hash"])
    assert rec["judged_key_id"] == "test" and rec["key_id"] == "test" and rec["actor"] == "key"
    assert rec["score_normalised"] == 1.0 and rec["labels"] == ["helpful", "concise"]
    assert "jane.doe@example.com" not in rec["comment"] and rec["comment_entities"] == {"EMAIL_ADDRESS": 1}
    assert rec["hash"] and rec["prev_hash"]  # sealed into the chain like any record

    # The older record, named by its entry; then a 1-5 score.
    send_feedback(gw, {"request_id": "dup-1", "score": 2, "entry": rows[1]["entry"]})
    stats = orjson.loads(admin_get(gw, "/stats"))["feedback"]
    assert stats["by_alias"]["demo"]["count"] == 2
    assert stats["by_alias"]["demo"]["positive"] == 1 and stats["by_alias"]["demo"]["negative"] == 1
    assert stats["by_alias"]["demo"]["mean_score"] == pytest.approx((1.0 + 0.25) / 2)
    assert stats["by_target"]["mock/mock-1"]["count"] == 2
    metrics = admin_get(gw, "/metrics").decode()
    assert 'gateway_feedback_total{alias="demo",score="up",target="mock/mock-1"} 1.0' in metrics
    assert 'gateway_feedback_total{alias="demo",score="2",target="mock/mock-1"} 1.0' in metrics
    assert 'gateway_feedback_score_sum_total{alias="demo",target="mock/mock-1"} 1.25' in metrics


def test_unknown_and_foreign_request_ids_are_refused(gw):
    ask(gw, TEST_KEY, "mine-1")
    send_until_found(gw, {"request_id": "mine-1", "score": 5})  # indexed now
    with pytest.raises(openai.NotFoundError) as err:
        send_feedback(gw, {"request_id": "never-sent", "score": "down"})
    assert err.value.body["code"] == "unknown_request" and err.value.body["param"] == "request_id"
    # The other key may not judge this key's request (403), nor name its entry.
    with pytest.raises(openai.PermissionDeniedError) as err:
        send_feedback(gw, {"request_id": "mine-1", "score": "down"}, key=OTHER_KEY)
    assert err.value.body["code"] == "foreign_request"
    entry = orjson.loads(admin_get(gw, "/admin/requests?request_id=mine-1"))["data"][0]["entry"]
    with pytest.raises(openai.PermissionDeniedError):
        send_feedback(gw, {"request_id": "mine-1", "score": "down", "entry": entry}, key=OTHER_KEY)
    with pytest.raises(openai.NotFoundError):  # an entry that is not that request's
        send_feedback(gw, {"request_id": "other-id", "score": "down", "entry": entry})
    with pytest.raises(openai.AuthenticationError):
        send_feedback(gw, {"request_id": "mine-1", "score": "down"}, key="sk-nobody")
    # The admin key may judge any request.
    got = send_feedback(gw, {"request_id": "mine-1", "score": "down"}, key=ADMIN_KEY)
    assert got["entry"] == entry
    recs = feedback_records(gw, 2)
    assert [(r["actor"], r["key_id"]) for r in recs] == [("key", "test"), ("admin_key", None)]


@pytest.mark.parametrize("body,param", [
    ({"score": "up"}, "request_id"),
    ({"request_id": "", "score": "up"}, "request_id"),
    ({"request_id": "x" * 300, "score": "up"}, "request_id"),
    ({"request_id": "r"}, "score"),
    ({"request_id": "r", "score": 0}, "score"),
    ({"request_id": "r", "score": 6}, "score"),
    ({"request_id": "r", "score": 4.5}, "score"),
    ({"request_id": "r", "score": True}, "score"),
    ({"request_id": "r", "score": "meh"}, "score"),
    ({"request_id": "r", "score": "up", "labels": "x"}, "labels"),
    ({"request_id": "r", "score": "up", "labels": ["ok"] * 17}, "labels"),
    ({"request_id": "r", "score": "up", "labels": [""]}, "labels[0]"),
    ({"request_id": "r", "score": "up", "labels": ["a", 3]}, "labels[1]"),
    ({"request_id": "r", "score": "up", "comment": "x" * 2001}, "comment"),
    ({"request_id": "r", "score": "up", "comment": 5}, "comment"),
    ({"request_id": "r", "score": "up", "extra": 1}, "extra"),
])
def test_bad_bodies_are_400_naming_the_field(gw, body, param):
    with pytest.raises(openai.BadRequestError) as err:
        send_feedback(gw, body)
    assert err.value.status_code == 400
    assert err.value.body["type"] == "invalid_request_error" and err.value.body["param"] == param
    assert feedback_records(gw, 0, timeout=0) == []


def test_not_json_is_400(gw):
    req = urllib.request.Request(gw.v1 + "/feedback", data=b"{nope", method="POST",
                                 headers={"Authorization": f"Bearer {TEST_KEY}", "Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, timeout=10)
    assert err.value.code == 400
    assert orjson.loads(err.value.read())["error"]["type"] == "invalid_request_error"


def test_no_request_log_is_404(make_gateway):
    gw = make_gateway()
    with pytest.raises(openai.NotFoundError) as err:
        send_feedback(gw, {"request_id": "r", "score": "up"})
    assert err.value.body["code"] == "request_log_unavailable"


def test_a_comment_a_block_rule_catches_refuses_the_feedback(make_gateway, monkeypatch):
    monkeypatch.setenv("FB_ADMIN_KEY", ADMIN_KEY)
    gw = make_gateway(extra=config("file", "memory://"), policies={"deny.toml": """
[[guardrails]]
id = "codes"
type = "deny_list"
phrases = ["project falcon"]
action = "block"
"""})
    ask(gw, TEST_KEY, "fb-block")
    send_until_found(gw, {"request_id": "fb-block", "score": "up", "comment": "fine"})
    with pytest.raises(openai.BadRequestError) as err:
        send_feedback(gw, {"request_id": "fb-block", "score": "down", "comment": "this leaks Project Falcon"})
    assert err.value.body["code"] == "content_policy_violation"
    recs = feedback_records(gw, 1)
    assert len(recs) == 1 and recs[0]["comment"] == "fine"  # only the first was recorded


def test_a_read_only_admin_key_may_not_send_feedback(make_gateway, monkeypatch):
    monkeypatch.setenv("FB_ADMIN_KEY", ADMIN_KEY)
    monkeypatch.setenv("FB_READ_KEY", "read-only-admin-0123456789")
    extra = config("file", "memory://").replace('key_env = "FB_ADMIN_KEY"',
                                               'key_env = "FB_ADMIN_KEY"\n[[admin.keys]]\nid = "ro"\nkey_env = "FB_READ_KEY"\nrole = "read"')
    gw = make_gateway(extra=extra)
    ask(gw, TEST_KEY, "fb-ro")
    send_until_found(gw, {"request_id": "fb-ro", "score": 4})
    with pytest.raises(openai.AuthenticationError):
        send_feedback(gw, {"request_id": "fb-ro", "score": 1}, key="read-only-admin-0123456789")
    assert send_feedback(gw, {"request_id": "fb-ro", "score": 1}, key=ADMIN_KEY)["score"] == 1
