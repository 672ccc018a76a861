"""The console's read API over real sockets: /admin/requests (filters, pages, duplicates of a caller's
request id, the detail and its audit record), /admin/history, and the 400s of bad filters; against a
memory store with the file sink, and against Redis with the stream sink (two instances, one fleet)."""

from __future__ import annotations

import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import openai
import orjson
import pytest

from tests.support.gateway import OTHER_KEY, TEST_KEY

ADMIN_KEY = "admin-secret-log-0123456789"
LIMITS = {"limits.toml": """
[[rate_limits]]
id = "other-rpm"
scope = "key"
keys = ["other"]
rpm = 2
"""}


def config(sink: str, store: str) -> str:
    sink_text = ('type = "file"\npath = "audit/records.jsonl"' if sink == "file"
                 else 'type = "redis"\nstream = "test:audit"')
    return f"""
[store]
url = "{store}"
[admin]
key_env = "LOG_ADMIN_KEY"
[audit]
flush_interval_ms = 2
ship_interval_ms = 5
[[audit.sinks]]
{sink_text}
"""


@pytest.fixture(params=["file", "redis"])
def setup(request, make_gateway, monkeypatch):
    monkeypatch.setenv("LOG_ADMIN_KEY", ADMIN_KEY)
    if request.param == "file":
        return request.param, (lambda: make_gateway(extra=config("file", "memory://"), policies=LIMITS))
    url = request.getfixturevalue("redis_url")
    return request.param, (lambda: make_gateway(extra=config("redis", url), policies=LIMITS))


def get(gw, path: str, key: str | None = ADMIN_KEY) -> tuple[int, dict]:
    req = urllib.request.Request(gw.url + path, headers={"x-admin-key": key} if key else {})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, orjson.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, orjson.loads(err.read())


def send(gw, key: str, request_id: str, model: str = "demo") -> int:
    client = openai.OpenAI(base_url=gw.v1, api_key=key, max_retries=0)
    try:
        client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}],
                                       extra_headers={"x-request-id": request_id})
        return 200
    except openai.APIStatusError as err:
        return err.status_code


def wait_rows(gw, query: str, n: int, timeout: float = 10.0) -> list[dict]:
    deadline = time.time() + timeout
    while True:
        status, body = get(gw, "/admin/requests?" + query)
        assert status == 200, body
        if len(body["data"]) >= n or time.time() > deadline:
            return body["data"]
        time.sleep(0.05)


def test_filters_pages_duplicates_and_detail(setup):
    kind, make = setup
    gw = make()
    statuses = [send(gw, TEST_KEY, "dup-1") for _ in range(3)]
    statuses += [send(gw, OTHER_KEY, f"other-{i}") for i in range(3)]  # rpm 2: the third is refused
    assert statuses == [200, 200, 200, 200, 200, 429]
    rows = wait_rows(gw, "limit=50", 6)
    assert len(rows) == 6
    times = [r["time"] for r in rows]
    assert times == sorted(times, reverse=True)  # newest first

    # A caller's request id is not unique: every match comes back.
    dup = wait_rows(gw, "request_id=dup-1", 3)
    assert [r["request_id"] for r in dup] == ["dup-1"] * 3
    assert len({r["entry"] for r in dup}) == 3

    refused = wait_rows(gw, "status=4xx", 1)
    assert [(r["request_id"], r["status"], r["reason"]) for r in refused] == [("other-2", 429, "rate_limit.requests")]
    assert [r["request_id"] for r in wait_rows(gw, "reason=rate_limit", 1)] == ["other-2"]
    assert [r["request_id"] for r in wait_rows(gw, "reason=rate_limit.requests&key=other", 1)] == ["other-2"]
    assert wait_rows(gw, "reason=guardrail", 0) == []
    assert len(wait_rows(gw, "key=other&status=2xx", 2)) == 2
    assert len(wait_rows(gw, "team=team-a&alias=demo", 3)) == 3
    assert len(wait_rows(gw, "action=allow", 5)) == 5  # the limit refused the last
    assert [r["request_id"] for r in wait_rows(gw, "action=refuse", 1)] == ["other-2"]
    assert wait_rows(gw, f"until={rows[-1]['time']}", 0) == []
    assert len(wait_rows(gw, f"since={rows[0]['time']}", 1)) == 1

    # Pages of 4: every row once, in order.
    seen, cursor = [], None
    while True:
        status, body = get(gw, "/admin/requests?limit=4" + (f"&cursor={cursor}" if cursor else ""))
        assert status == 200
        seen += [r["entry"] for r in body["data"]]
        cursor = body["next"]
        if cursor is None:
            break
    assert seen == [r["entry"] for r in rows]

    # The detail is the record as the sink holds it, and reading it is recorded.
    status, detail = get(gw, "/admin/requests/" + urllib.parse.quote(refused[0]["entry"]))
    assert status == 200, detail
    rec = detail["record"]
    assert (rec["request_id"], rec["status"], rec["block_reason"], rec["key_id"]) == \
        ("other-2", 429, "rate_limit.requests", "other")
    assert "hash" in rec and "payload" not in rec
    assert read_admin_records(gw, kind, refused[0]["entry"])
    status, body = get(gw, "/admin/requests/999999999")
    assert status == 404 and body["error"]["code"] == "unknown_entry"


def read_admin_records(gw, kind: str, entry: str, timeout: float = 10.0) -> list[dict]:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if kind == "file":
            path = Path(gw.config_path).parent / "audit" / "records.jsonl"
            lines = [orjson.loads(x) for x in path.read_bytes().splitlines()]
        else:
            import redis

            client = redis.Redis.from_url(gw.state.runtime.config.main.store.url)
            lines = [orjson.loads(f[b"r"]) for _, f in client.xrange("test:audit")]
            client.close()
        found = [r for r in lines if r.get("type") == "admin" and r.get("target") == entry]
        if found:
            assert found[0]["action"] == "request_log.read" and found[0]["actor"] == "admin_key"
            return found
        time.sleep(0.05)
    return []


@pytest.mark.parametrize("query,param", [
    ("status=abc", "status"), ("status=6xx", "status"), ("limit=0", "limit"), ("limit=501", "limit"),
    ("cursor=%25%25%25", "cursor"), ("since=yesterday", "since"), ("until=soon", "until"),
    ("action=nuke", "action"), ("reason=RATE%20LIMIT", "reason"), ("colour=red", "colour"),
    ("key=", "key"), ("request_id=" + "x" * 300, "request_id"),
])
def test_bad_filters_are_clear_400s(make_gateway, monkeypatch, query, param):
    monkeypatch.setenv("LOG_ADMIN_KEY", ADMIN_KEY)
    gw = make_gateway(extra=config("file", "memory://"))
    status, body = get(gw, "/admin/requests?" + query)
    assert status == 400, body
    assert body["error"]["param"] == param and body["error"]["code"] == "invalid_filter"
    assert body["error"]["type"] == "invalid_request_error" and body["error"]["message"]


def test_admin_key_is_required_and_history_ranges_are_checked(make_gateway, monkeypatch):
    monkeypatch.setenv("LOG_ADMIN_KEY", ADMIN_KEY)
    gw = make_gateway(extra=config("file", "memory://"))
    for path in ("/admin/requests", "/admin/requests/1", "/admin/history"):
        status, body = get(gw, path, key=None)
        assert status == 401 and body["error"]["code"] == "invalid_admin_key", path
        status, _ = get(gw, path, key="wrong")
        assert status == 401
    status, body = get(gw, "/admin/history?range=2d")
    assert status == 400 and body["error"]["param"] == "range"
    status, body = get(gw, "/admin/history?range=1h&x=1")
    assert status == 400 and body["error"]["param"] == "x"


def test_no_sink_is_a_clear_404(make_gateway, monkeypatch):
    monkeypatch.setenv("LOG_ADMIN_KEY", ADMIN_KEY)
    gw = make_gateway(extra=f'\n[admin]\nkey_env = "LOG_ADMIN_KEY"\n')
    status, body = get(gw, "/admin/requests")
    assert status == 404 and body["error"]["code"] == "request_log_unavailable"


def wait_history(gw, rng: str, n: int, timeout: float = 10.0) -> dict:
    deadline = time.time() + timeout
    while True:
        status, body = get(gw, f"/admin/history?range={rng}")
        assert status == 200, body
        if body["totals"]["requests"] >= n or time.time() > deadline:
            return body


def test_history_counts_every_request_in_every_range(setup):
    kind, make = setup
    gw = make()
    statuses = [send(gw, OTHER_KEY, f"h-{i}") for i in range(3)]
    assert statuses == [200, 200, 429]
    for rng, points in (("15m", 15), ("1h", 60), ("24h", 96), ("7d", 168)):
        body = wait_history(gw, rng, 3)
        t = body["totals"]
        assert (t["requests"], t["refused"], t["refusals"], t["errors"]) == (3, 1, 1, 0), rng
        assert t["blocks"] == {"rate_limit.requests": 1}
        assert t["by_key"]["other"]["requests"] == 3
        assert t["by_alias"]["demo"]["requests"] == 3
        assert t["latency_ms"]["p50"] is not None
        assert len(body["points"]) == points and sum(p["requests"] for p in body["points"]) == 3
        assert body["shared"] is (kind == "redis")


def test_history_is_the_fleets_on_redis(make_gateway, monkeypatch, redis_url):
    monkeypatch.setenv("LOG_ADMIN_KEY", ADMIN_KEY)
    a = make_gateway(extra=config("redis", redis_url))
    b = make_gateway(extra=config("redis", redis_url))
    assert [send(a, TEST_KEY, "a-1"), send(b, TEST_KEY, "b-1"), send(b, TEST_KEY, "b-2")] == [200] * 3
    for gw in (a, b):
        assert wait_history(gw, "1h", 3)["totals"]["requests"] == 3
    # And the log of either instance finds the other's records.
    assert [r["request_id"] for r in wait_rows(a, "request_id=b-2", 1)] == ["b-2"]
