"""The alerts timeline over real sockets: a rule fires and resolves against webhook receivers on loopback
(one answers 200, one 500), and GET /admin/alerts/events shows both events newest first with each
webhook's delivery status; on Redis a second instance shows the same events (the fleet's timeline)."""

from __future__ import annotations

import time
import urllib.error
import urllib.request

import openai
import orjson
import pytest

from tests.integration.test_alerts import FLAKY, MSGS, client, receiver
from tests.support.fake_upstream import Reply

ADMIN_KEY = "admin-secret-alerts-0123456789"


ADMIN = """
[admin]
key_env = "ALERTS_ADMIN_KEY"
"""


POLICY = """
[[alerts]]
id = "errors-high"
metric = "windows.1m.error_rate"
op = ">"
threshold = 0.5
min_requests = 1
every = "0.1s"
cooldown = 0
severity = "critical"
summary = "upstream errors"
webhooks = [
  {{ url = "{url}/ok", format = "json" }},
  {{ url = "{url}/fail", format = "json", max_attempts = 1 }},
]
"""


def events(gw, query: str = "", key: str = ADMIN_KEY) -> tuple[int, dict]:
    req = urllib.request.Request(gw.url + "/admin/alerts/events" + query, headers={"x-admin-key": key})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, orjson.loads(r.read())
    except urllib.error.HTTPError as err:
        return err.code, orjson.loads(err.read())


def wait_events(gw, want, timeout: float = 10.0) -> list[dict]:
    deadline = time.time() + timeout
    while True:
        status, body = events(gw)
        assert status == 200, body
        if want(body["data"]) or time.time() > deadline:
            return body["data"]
        time.sleep(0.05)


def settled(data: list[dict]) -> bool:
    return len(data) == 2 and all(h["status"] != "queued" for e in data for h in e["webhooks"])


def test_fired_and_resolved_with_delivery_status(make_gateway, upstream, servers, store_url, monkeypatch):
    monkeypatch.setenv("ALERTS_ADMIN_KEY", ADMIN_KEY)
    rec = receiver(servers)
    extra = FLAKY + ADMIN + f'[store]\nurl = "{store_url}"\n'
    gw = make_gateway(extra=extra, policies={"alerts.toml": POLICY.format(url=rec.url)})
    assert events(gw)[1]["data"] == []
    c = client(gw)
    upstream.push(Reply(status=500, body=b'{"error": {"message": "boom"}}'),
                  Reply(status=500, body=b'{"error": {"message": "boom"}}'))
    t0 = time.time()
    for _ in range(2):
        with pytest.raises(openai.APIStatusError):
            c.chat.completions.create(model="flaky", messages=MSGS)
    rec.wait_for("ok", 1)
    for _ in range(3):
        c.chat.completions.create(model="flaky", messages=MSGS)
    rec.wait_for("ok", 2)
    data = wait_events(gw, settled)
    assert [(e["alert"], e["status"], e["severity"]) for e in data] == [
        ("errors-high", "resolved", "critical"), ("errors-high", "firing", "critical")]
    resolved, fired = data
    assert t0 <= fired["at"] <= resolved["at"] <= time.time()
    # resolved at the first tick at or under 0.5: after the 4th or the 5th request
    assert fired["value"] == 1.0 and resolved["value"] in (0.5, 0.4) and fired["summary"] == "upstream errors"
    for e in data:
        ok, fail = e["webhooks"]
        assert (ok["webhook"], ok["status"], ok["error"]) == ("127.0.0.1", "delivered", None)
        assert (fail["status"], fail["error"]) == ("failed", "HTTP 500")
        assert e["at"] <= ok["done_at"] <= time.time()
    body = events(gw, "?limit=1")[1]
    assert [e["status"] for e in body["data"]] == ["resolved"]
    assert body["shared"] is (store_url != "memory://")
    if store_url != "memory://":  # the fleet's timeline: another instance shows the same events
        other = make_gateway(extra=extra)
        assert [e["id"] for e in events(other)[1]["data"]] == [e["id"] for e in data]


@pytest.mark.parametrize("query,param", [("?limit=0", "limit"), ("?limit=x", "limit"), ("?limit=501", "limit"),
                                         ("?since=1", "since")])
def test_bad_parameters_are_400s(make_gateway, monkeypatch, query, param):
    monkeypatch.setenv("ALERTS_ADMIN_KEY", ADMIN_KEY)
    gw = make_gateway(extra='[admin]\nkey_env = "ALERTS_ADMIN_KEY"\n')
    status, body = events(gw, query)
    assert status == 400 and body["error"]["param"] == param


def test_needs_the_admin_key(make_gateway, monkeypatch):
    monkeypatch.setenv("ALERTS_ADMIN_KEY", ADMIN_KEY)
    gw = make_gateway(extra='[admin]\nkey_env = "ALERTS_ADMIN_KEY"\n')
    assert events(gw, key="wrong")[0] == 401
