"""Redis stops under the console: the request log (list and detail), the history and the alerts timeline
answer a clear 503 with Retry-After within a socket timeout, never a 500 or a hang; with Redis back they answer again.

A real redis-server the test owns is the gateway's store and its audit stream sink."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.conftest_redis import RedisServer
from tests.faults.wire import AUTH, MSGS

ADMIN = {"x-admin-key": "admin-secret-outage-0123456789"}


def config(url: str) -> str:
    return f"""
[store]
url = "{url}"
on_store_error = "open"
[admin]
key_env = "OUTAGE_ADMIN_KEY"
[audit]
flush_interval_ms = 2
ship_interval_ms = 5
[[audit.sinks]]
type = "redis"
stream = "outage:audit"
"""


@pytest.fixture
def redis():
    server = RedisServer().start()
    yield server
    server.close()


def rows(gw) -> list[dict]:
    deadline = time.time() + 10
    while True:
        r = httpx.get(gw.url + "/admin/requests", headers=ADMIN, timeout=10)
        assert r.status_code == 200, r.text
        if r.json()["data"] or time.time() > deadline:
            return r.json()["data"]
        time.sleep(0.05)


def test_log_and_history_answer_503_while_redis_is_down(make_gateway, redis, monkeypatch):
    monkeypatch.setenv("OUTAGE_ADMIN_KEY", ADMIN["x-admin-key"])
    gw = make_gateway(extra=config(redis.url))
    assert httpx.post(gw.v1 + "/chat/completions", json={"model": "demo", "messages": MSGS}, headers=AUTH,
                      timeout=10).status_code == 200
    entry = rows(gw)[0]["entry"]
    deadline = time.time() + 5
    while httpx.get(gw.url + "/admin/history?range=15m", headers=ADMIN).json()["totals"]["requests"] < 1:
        assert time.time() < deadline, "the history never showed the request"
        time.sleep(0.1)
    redis.stop()
    for path in ("/admin/requests", "/admin/requests?request_id=x&status=4xx", f"/admin/requests/{entry}",
                 "/admin/history?range=15m", "/admin/history?range=7d", "/admin/alerts/events"):
        t0 = time.monotonic()
        r = httpx.get(gw.url + path, headers=ADMIN, timeout=20)
        assert time.monotonic() - t0 < 5, f"{path} waited on a dead Redis"
        assert r.status_code == 503, (path, r.status_code, r.text)
        err = r.json()["error"]
        what = "history" if "history" in path else "alert_events" if "alerts" in path else "request_log"
        assert err["type"] == "api_error" and err["code"] == f"{what}_unavailable", err
        assert what.replace("_", " ") in err["message"] and "unavailable" in err["message"] and r.headers["retry-after"]
    redis.start()  # empty: the stream and the history are gone, the endpoints answer again
    deadline = time.time() + 10
    while True:
        codes = [httpx.get(gw.url + p, headers=ADMIN, timeout=10).status_code
                 for p in ("/admin/requests", "/admin/history?range=1h", "/admin/alerts/events")]
        if codes == [200, 200, 200]:
            break
        assert time.time() < deadline, codes
        time.sleep(0.2)
