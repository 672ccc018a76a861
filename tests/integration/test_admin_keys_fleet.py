"""Keys over the admin API across a fleet, and a key's own limits against the TOML rules they mirror.

Two real `gateway serve` processes share a real redis-server: a key created through one works on the
other within a second, and stops working there within a second of its revocation. A key's limits set
through the API refuse exactly what a `[[rate_limits]]` / `[[budgets]]` rule with `scope = "key"`
refuses, request for request (a differential test over the same traffic)."""

from __future__ import annotations

import time

import httpx
import openai
import pytest

from tests.support.gateway import OTHER_KEY, TEST_KEY, base_config, write_config
from tests.support.processes import GatewayProcess

MSGS = [{"role": "user", "content": "Say hello"}]
ADMIN_KEY = "admin-secret-0123456789"
ADMIN = '\n[admin]\nkey_env = "TEST_ADMIN_KEY"\n'


def admin(url: str, method: str, path: str, **kw) -> httpx.Response:
    return httpx.request(method, url + path, headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=10, **kw)


def outcome(url: str, key: str, model: str = "demo", **kw) -> tuple[int, str | None]:
    c = openai.OpenAI(base_url=url + "/v1", api_key=key, max_retries=0)
    try:
        c.chat.completions.create(model=model, messages=MSGS, **kw)
        return 200, None
    except openai.APIStatusError as exc:
        return exc.status_code, (exc.body or {}).get("code")


def until(fn, want, within: float) -> float:
    """Seconds until fn() == want, failing past `within`."""
    start = time.monotonic()
    while True:
        got = fn()
        took = time.monotonic() - start
        if got == want:
            return took
        assert took < within, f"still {got!r} after {took:.2f}s (wanted {want!r})"
        time.sleep(0.02)


def test_a_key_created_on_one_instance_works_on_another_within_a_second_and_stops_after_revoke(
        tmp_path, upstream, redis_url, monkeypatch):
    monkeypatch.setenv("TEST_ADMIN_KEY", ADMIN_KEY)
    cfg = write_config(tmp_path, base_config(upstream.url, ADMIN + f'\n[store]\nurl = "{redis_url}"\n'))
    a, b = GatewayProcess(cfg), GatewayProcess(cfg)
    try:
        r = admin(a.url, "POST", "/admin/keys", json={"id": "fleet-1", "team": "t"})
        assert r.status_code == 201, r.text
        secret = r.json()["secret"]
        assert until(lambda: outcome(b.url, secret), (200, None), within=1.0) < 1.0
        assert admin(b.url, "GET", "/admin/keys/fleet-1").json()["team"] == "t"
        assert admin(a.url, "POST", "/admin/keys/fleet-1/revoke").status_code == 200
        until(lambda: outcome(b.url, secret), (401, "revoked_api_key"), within=1.0)
        # Revoked through the other instance, restored through the first: both follow.
        assert admin(b.url, "POST", "/admin/keys/fleet-1/unrevoke").status_code == 200
        until(lambda: outcome(a.url, secret), (200, None), within=1.0)
        # A rotation through B: the new secret works on A within a second, the old one stops there.
        new = admin(b.url, "POST", "/admin/keys/fleet-1/rotate", json={"grace_s": 0}).json()["secret"]
        until(lambda: outcome(a.url, new), (200, None), within=1.0)
        until(lambda: outcome(a.url, secret), (401, "expired_api_key"), within=1.0)
    finally:
        a.stop()
        b.stop()


def test_managed_keys_survive_a_restart_on_redis(tmp_path, upstream, redis_url, monkeypatch):
    monkeypatch.setenv("TEST_ADMIN_KEY", ADMIN_KEY)
    cfg = write_config(tmp_path, base_config(upstream.url, ADMIN + f'\n[store]\nurl = "{redis_url}"\n'))
    a = GatewayProcess(cfg)
    try:
        secret = admin(a.url, "POST", "/admin/keys", json={"id": "kept"}).json()["secret"]
    finally:
        a.stop()
    a = GatewayProcess(cfg)
    try:
        assert outcome(a.url, secret) == (200, None)
    finally:
        a.stop()


# Each case: the limits, the same table as a TOML rule, and the traffic (chat kwargs per request).
CASES = [
    ({"rpm": 3}, "rpm = 3", [{}] * 5),
    ({"concurrency": 0}, "concurrency = 0", [{}] * 2),
    ({"tpm": 40}, "tpm = 40", [{"max_tokens": 30}] * 6),
    ({"budget_usd": 0}, "usd = 0.0", [{}] * 2),
    ({"budget_usd": 0.00002, "budget_window": "day"}, 'usd = 0.00002\nwindow = "day"', [{"max_tokens": 1}] * 10),
]


@pytest.mark.parametrize("limits,toml,traffic", CASES, ids=[str(c[0]) for c in CASES])
def test_api_limits_refuse_exactly_what_the_toml_scope_key_rule_refuses(make_gateway, store_url, upstream,
                                                                         limits, toml, traffic, monkeypatch):
    monkeypatch.setenv("TEST_ADMIN_KEY", ADMIN_KEY)
    table = "budgets" if "usd" in toml else "rate_limits"
    gw = make_gateway(extra=ADMIN + f'\n[store]\nurl = "{store_url}"\n[pricing."mock-1"]\ninput = 1.0\n'
                                    'output = 1.0\n',
                      policies={"limits.toml": f'[[{table}]]\nid = "toml-rule"\nscope = "key"\nkeys = ["other"]\n'
                                               f'{toml}\n'})
    r = admin(gw.url, "POST", "/admin/keys", json={"id": "api-key", "limits": limits})
    assert r.status_code == 201, r.text
    api_secret = r.json()["secret"]
    # The same traffic, interleaved so both see the same clock: the TOML key "other" and the API key.
    # A request settles in the gateway's `finally`, after the client has its answer: a short pause lets
    # it land before the next reservation, for both keys alike (else each pair races its own settle).
    toml_seen, api_seen = [], []
    for kw in traffic:
        toml_seen.append(outcome(gw.url, OTHER_KEY, "demo", **kw))
        time.sleep(0.1)
        api_seen.append(outcome(gw.url, api_secret, "demo", **kw))
        time.sleep(0.1)
    assert api_seen == toml_seen, (toml_seen, api_seen)
    assert any(s != 200 for s, _ in toml_seen), "the traffic must reach the limit, or nothing is compared"
    assert any(s == 200 for s, _ in toml_seen) or limits.get("budget_usd") == 0 or limits.get("concurrency") == 0
    # A key without limits is never refused by them.
    assert outcome(gw.url, TEST_KEY, "demo") == (200, None)


def test_with_the_store_down_changes_are_503_and_loaded_keys_keep_working(make_gateway, monkeypatch):
    """Redis paused (SIGSTOP): a change answers 503 store_unavailable with Retry-After; the
    keys already loaded keep authenticating from the local table (revocation then follows
    `on_store_error`, here "open"); once Redis is back, the change goes through."""
    import os
    import signal

    from tests.conftest_redis import RedisServer

    monkeypatch.setenv("TEST_ADMIN_KEY", ADMIN_KEY)
    server = RedisServer().start()
    try:
        gw = make_gateway(extra=ADMIN + f'\n[store]\nurl = "{server.url}"\non_store_error = "open"\n'
                                        'socket_timeout_s = 0.2\n')
        secret = admin(gw.url, "POST", "/admin/keys", json={"id": "before-outage"}).json()["secret"]
        os.kill(server._proc.pid, signal.SIGSTOP)
        for method, path, body in (("POST", "/admin/keys", {"id": "during"}),
                                   ("PATCH", "/admin/keys/before-outage", {"team": "x"}),
                                   ("POST", "/admin/keys/before-outage/revoke", None),
                                   ("POST", "/admin/keys/before-outage/rotate", {})):
            r = admin(gw.url, method, path, json=body)
            assert r.status_code == 503, (path, r.text)
            assert r.json()["error"]["code"] == "store_unavailable" and r.headers["Retry-After"]
        assert outcome(gw.url, secret) == (200, None)
        os.kill(server._proc.pid, signal.SIGCONT)
        deadline = time.monotonic() + 10
        while admin(gw.url, "GET", "/admin/keys/before-outage").status_code != 200:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert admin(gw.url, "POST", "/admin/keys", json={"id": "after"}).status_code == 201
    finally:
        os.kill(server._proc.pid, signal.SIGCONT)
        server.close()
