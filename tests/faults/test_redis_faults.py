"""The shared store failing under the gateway: Redis stopped, restarted on the same port, and slow
(CLIENT PAUSE).

With `on_store_error = "closed"` a request that cannot be checked is refused at once with a 503 in the
caller's shape (never a hang, never a 500); with "open" it is served on the process's own counters.
Once Redis is back the gateway uses it again without a restart. Every request leaves one record.
"""

from __future__ import annotations

import socket
import time

import httpx
import pytest

from tests.conftest_redis import RedisServer
from tests.faults.wire import AUTH, MSGS, anthropic_error, by_request_id, openai_error, records

LIMITS = {"limits.toml": """
[[rate_limits]]
id = "rpm"
scope = "key"
rpm = 3
"""}


def config(url: str, mode: str) -> str:
    return f"""
[store]
url = "{url}"
on_store_error = "{mode}"

[audit]
flush_interval_ms = 2
[[audit.sinks]]
type = "file"
path = "audit/records.jsonl"
"""


@pytest.fixture
def redis():
    server = RedisServer().start()
    yield server
    server.close()


def chat(gw) -> httpx.Response:
    return httpx.post(gw.v1 + "/chat/completions", json={"model": "demo", "messages": MSGS}, headers=AUTH, timeout=10)


def messages(gw) -> httpx.Response:
    body = {"model": "demo", "max_tokens": 16, "messages": MSGS}
    return httpx.post(gw.v1 + "/messages", json=body, headers=AUTH, timeout=10)


def audit(gw):
    return gw.config_path.parent / "audit" / "records.jsonl"


def wait_store_retry() -> None:
    time.sleep(0.6)  # the limits engine skips a failed store for 0.5 s before trying it again


def slow_redis(port: int, seconds: float) -> None:
    """Hold every client's commands for `seconds`, longer than the 0.25 s socket timeout. (CLIENT PAUSE,
    as redis-server 7 refuses DEBUG SLEEP unless started with enable-debug-command.)"""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(f"CLIENT PAUSE {int(seconds * 1000)} ALL\r\n".encode())
        assert s.recv(16).startswith(b"+OK")


def test_redis_stopped_then_restarted_closed(make_gateway, redis):
    gw = make_gateway(extra=config(redis.url, "closed"), policies=LIMITS)
    ok = chat(gw)
    assert ok.status_code == 200
    redis.stop()
    t0 = time.monotonic()
    down = [chat(gw), messages(gw)]
    assert time.monotonic() - t0 < 3, "a dead store costs a request at most a socket timeout"
    assert down[0].status_code == 503 and openai_error(down[0].content)["code"] == "store_unavailable"
    assert down[0].headers["retry-after"]
    assert down[1].status_code == 503 and anthropic_error(down[1].content)["type"] == "overloaded_error"
    redis.start()  # same port, empty: counters and loaded scripts are gone
    wait_store_retry()
    served = [chat(gw).status_code for _ in range(4)]
    assert served == [200, 200, 200, 429], "a fresh Redis enforces the limit again, exactly"
    ids = [r.headers["x-request-id"] for r in (ok, *down)]
    recs = records(audit(gw), len(ids) + 4)
    counts = by_request_id(recs)
    assert len(recs) == len(ids) + 4 and all(counts[i] == 1 for i in ids)


def test_redis_stopped_open_serves_on_local_counters(make_gateway, redis):
    gw = make_gateway(extra=config(redis.url, "open"), policies=LIMITS)
    assert chat(gw).status_code == 200
    redis.stop()
    statuses = [chat(gw).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429], "the local fallback still holds the key to its limit"
    redis.start()
    wait_store_retry()
    assert chat(gw).status_code == 200


def test_slow_redis_refuses_quickly_and_never_double_counts(make_gateway, redis):
    gw = make_gateway(extra=config(redis.url, "closed"), policies=LIMITS)
    assert chat(gw).status_code == 200
    slow_redis(redis.port, 0.8)
    t0 = time.monotonic()
    slow = chat(gw)
    assert time.monotonic() - t0 < 0.7, "the request waited on Redis past the socket timeout"
    assert slow.status_code == 503 and openai_error(slow.content)["code"] == "store_unavailable"
    time.sleep(0.8)
    wait_store_retry()
    after = [chat(gw).status_code for _ in range(3)]
    # The reservation sent before the timeout may still have run once Redis woke up: a refused request
    # can use up its unit (never more than one), so 1 or 2 of the 3 remaining requests are served.
    assert after.count(429) >= 1 and after[0] == 200
    assert after == sorted(after), "200s, then 429s"
    assert len(records(audit(gw), 5)) == 5


def test_health_ready_reports_the_store(make_gateway, redis):
    gw = make_gateway(extra=config(redis.url, "closed"), policies=LIMITS)
    assert httpx.get(gw.url + "/health/ready").status_code == 200
    redis.stop()
    r = httpx.get(gw.url + "/health/ready")
    assert r.status_code == 503 and r.json()["checks"]["store"]["ok"] is False
    assert httpx.get(gw.url + "/health").status_code == 200, "liveness does not depend on the store"
    redis.start()
    assert httpx.get(gw.url + "/health/ready").status_code == 200
