"""What holds while the shared store is down or paused, with a real redis-server stopped (kill) or
paused (SIGSTOP): every 503 says when to retry, revocation follows one stated rule, a request waits at
most one socket timeout however many checks it makes, and requests served unchecked are counted in
/stats and /metrics.
"""

from __future__ import annotations

import os
import signal
import time

import httpx
import pytest

from gateway import errors
from tests.conftest_redis import RedisServer
from tests.faults.wire import AUTH, MSGS, openai_error
from tests.support.fake_upstream import Reply
from tests.support.gateway import OTHER_KEY

RPM = {"limits.toml": """
[[rate_limits]]
id = "rpm"
scope = "key"
rpm = 1000
"""}
OTHER = {"Authorization": f"Bearer {OTHER_KEY}"}


def store(url: str, mode: str, grace: float = 30.0, timeout: float = 0.25) -> str:
    return f"""
[store]
url = "{url}"
on_store_error = "{mode}"
revocation_grace_s = {grace}
socket_timeout_s = {timeout}
"""


@pytest.fixture
def redis():
    server = RedisServer().start()
    yield server
    if server._proc is not None:
        os.kill(server._proc.pid, signal.SIGCONT)  # a test that failed while it was paused
    server.close()


def chat(gw, headers=AUTH, model="demo") -> httpx.Response:
    return httpx.post(gw.v1 + "/chat/completions", json={"model": model, "messages": MSGS}, headers=headers, timeout=15)


def past_the_revocation_cache() -> None:
    time.sleep(1.1)  # a key's answer is cached for 1 s; after that the store is asked again


def test_every_error_class_that_answers_503_carries_retry_after():
    classes = [errors.GatewayError, *errors.GatewayError.__subclasses__()]
    for cls in classes:
        assert "retry-after" in cls("x", status=503).headers, cls
        if cls.status == 503:
            assert "retry-after" in cls("x").headers, cls
    given = errors.Overloaded("x", headers={"retry-after": "7"})
    assert given.headers["retry-after"] == "7", "a known wait is kept"


def test_503_on_revocation_check_with_redis_down_has_retry_after(make_gateway, redis):
    """The reported case: Redis down for more than a second, the revocation check refuses."""
    gw = make_gateway(extra=store(redis.url, "closed"))
    assert chat(gw).status_code == 200
    redis.stop()
    past_the_revocation_cache()
    r = chat(gw, OTHER)  # a key the store never answered for
    assert r.status_code == 503 and openai_error(r.content)["code"] == "store_unavailable"
    assert r.headers["retry-after"] == "1"
    ready = httpx.get(gw.url + "/health/ready")
    assert ready.status_code == 503 and ready.headers["retry-after"] == "1"


def test_503_mapped_from_an_upstream_503_has_retry_after(make_gateway, upstream):
    gw = make_gateway()
    upstream.push(*[Reply(status=503, body=b'{"error": {"message": "busy"}}') for _ in range(3)])
    r = chat(gw, model="gpt")
    assert r.status_code == 503 and r.headers["retry-after"]


def test_revocation_with_the_store_down_follows_one_rule_closed(make_gateway, redis):
    """A 'not revoked' answer stands for revocation_grace_s, a 'revoked' one for the whole outage, then
    on_store_error decides (closed: 503)."""
    gw = make_gateway(extra=store(redis.url, "closed", grace=3.0))
    assert httpx.post(gw.url + "/admin/keys/other/revoke", timeout=5).status_code == 200
    t0 = time.monotonic()
    assert chat(gw).status_code == 200
    assert chat(gw, OTHER).status_code == 401
    redis.stop()
    past_the_revocation_cache()
    assert time.monotonic() - t0 < 2.5, "the machine is too slow for this test's timing"
    assert chat(gw).status_code == 200, "the last answer stands within the grace"
    assert chat(gw, OTHER).status_code == 401, "an outage never un-revokes a key"
    time.sleep(max(0.0, 3.2 - (time.monotonic() - t0)))
    r = chat(gw)
    assert r.status_code == 503 and r.headers["retry-after"], "past the grace, closed refuses"
    assert chat(gw, OTHER).status_code == 401, "still revoked"


def test_revocation_with_the_store_down_open_serves_and_counts(make_gateway, redis):
    gw = make_gateway(extra=store(redis.url, "open", grace=0.0))
    assert chat(gw).status_code == 200
    stats = httpx.get(gw.url + "/stats").json()
    assert stats["fail_open_total"] == 0
    redis.stop()
    past_the_revocation_cache()
    assert [chat(gw).status_code for _ in range(3)] == [200, 200, 200]
    stats = httpx.get(gw.url + "/stats").json()
    assert stats["fail_open_by_check"]["revocation"] == 3 and stats["fail_open_total"] >= 3
    metrics = httpx.get(gw.url + "/metrics").text
    assert 'gateway_store_fail_open_total{check="revocation"} 3.0' in metrics


def test_limits_fail_open_is_in_stats_and_metrics(make_gateway, redis):
    gw = make_gateway(extra=store(redis.url, "open"), policies=RPM)
    assert chat(gw).status_code == 200
    redis.stop()
    assert [chat(gw).status_code for _ in range(2)] == [200, 200]
    stats = httpx.get(gw.url + "/stats").json()
    assert stats["fail_open_by_check"]["limits"] == 2 and stats["fail_open_total"] == 2
    metrics = httpx.get(gw.url + "/metrics").text
    assert 'gateway_store_fail_open_total{check="limits"} 2.0' in metrics


@pytest.mark.parametrize("mode,status", [("closed", 503), ("open", 200)])
def test_a_paused_redis_costs_a_request_one_socket_timeout_not_two(make_gateway, redis, mode, status):
    """Revocation check and limits both need the store; with Redis stopped by SIGSTOP the first to time
    out marks it down and the second fails at once. A 1 s socket timeout makes one wait (1 s) and two
    (2 s) far apart, whatever the machine's load."""
    gw = make_gateway(extra=store(redis.url, mode, timeout=1.0), policies=RPM)
    assert chat(gw).status_code == 200
    os.kill(redis._proc.pid, signal.SIGSTOP)
    try:
        past_the_revocation_cache()
        t0 = time.monotonic()
        r = chat(gw)
        waited = time.monotonic() - t0
    finally:
        os.kill(redis._proc.pid, signal.SIGCONT)
    assert r.status_code == status, r.content
    assert waited < 1.8, f"waited {waited:.2f}s: more than one socket timeout"
    if status == 503:
        assert r.headers["retry-after"]
