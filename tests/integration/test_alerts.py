"""Alerts end to end: rules fire and resolve against a webhook receiver on loopback, budget rules read the
store's counters, and a slow or failing webhook never slows a request."""

from __future__ import annotations

import asyncio
import time
import urllib.request

import openai
import orjson
from aiohttp import web

from tests.support.fake_upstream import Reply
from tests.support.gateway import TEST_KEY

MSGS = [{"role": "user", "content": "Say hello"}]


class Receiver:
    """Webhook endpoints: /ok answers 200, /slow sleeps 5 s first, /fail answers 500."""

    def __init__(self) -> None:
        self.hits: list[tuple[str, dict]] = []
        self.slow_started = 0
        self.slow_done = 0

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/{name}", self.handle)
        return app

    async def handle(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        body = orjson.loads(await request.read())
        self.hits.append((name, body))
        if name == "slow":
            self.slow_started += 1
            await asyncio.sleep(5)
            self.slow_done += 1
        return web.Response(status=500 if name == "fail" else 200)

    def bodies(self, name: str) -> list[dict]:
        return [b for n, b in self.hits if n == name]

    def wait_for(self, name: str, count: int, timeout: float = 10.0) -> list[dict]:
        deadline = time.time() + timeout
        while time.time() < deadline:
            got = self.bodies(name)
            if len(got) >= count:
                return got
            time.sleep(0.05)
        raise AssertionError(f"{name}: {len(self.bodies(name))} deliveries, wanted {count}: {self.hits}")


def receiver(servers):
    rec = Receiver()
    rec.url = servers.serve(rec.app())  # type: ignore[attr-defined]
    return rec


def client(gw) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.v1, api_key=TEST_KEY, max_retries=0)


FLAKY = """
[models.flaky]
targets = [{ provider = "up", model = "gpt-4o-mini" }]
max_attempts = 1
breaker_failures = 100
"""


def test_error_rate_alert_fires_and_resolves_on_json_and_slack_webhooks(make_gateway, upstream, servers, monkeypatch):
    rec = receiver(servers)
    monkeypatch.setenv("TEST_SLACK_HOOK", rec.url + "/slack")
    gw = make_gateway(extra=FLAKY, policies={"alerts.toml": f"""
        [[alerts]]
        id = "errors-high"
        metric = "windows.1m.error_rate"
        op = ">"
        threshold = 0.5
        min_requests = 1
        for = "0.4s"
        every = "0.1s"
        cooldown = 0
        severity = "critical"
        summary = "upstream errors"
        runbook = "https://example.com/runbooks/errors"
        webhooks = [
          {{ url = "{rec.url}/ok", format = "json" }},
          {{ url_env = "TEST_SLACK_HOOK", format = "slack" }},
        ]
        """})
    c = client(gw)
    upstream.push(Reply(status=500, body=b'{"error": {"message": "boom"}}'),
                  Reply(status=500, body=b'{"error": {"message": "boom"}}'))
    t0 = time.time()
    for _ in range(2):
        try:
            c.chat.completions.create(model="flaky", messages=MSGS)
        except openai.APIStatusError as exc:
            assert exc.status_code >= 500
    [fired] = rec.wait_for("ok", 1)
    assert time.time() - t0 >= 0.4, "fires only after the condition held for `for`"
    assert fired["alert"] == "errors-high" and fired["status"] == "firing" and fired["severity"] == "critical"
    assert fired["metric"] == "windows.1m.error_rate" and fired["value"] == 1.0
    assert fired["op"] == ">" and fired["threshold"] == 0.5 and fired["for_s"] == 0.4
    assert fired["runbook"] == "https://example.com/runbooks/errors" and fired["summary"] == "upstream errors"
    assert fired["started_at"].endswith("Z") and ":" in fired["instance"]
    [slack] = rec.wait_for("slack", 1)
    assert slack["text"].startswith("[FIRING] critical: errors-high - upstream errors")
    assert slack["attachments"][0]["color"] == "#d00000"
    for _ in range(3):  # 2 errors in 5 requests: 0.4, back under the threshold
        c.chat.completions.create(model="flaky", messages=MSGS)
    resolved = rec.wait_for("ok", 2)[1]
    assert resolved["status"] == "resolved" and resolved["value"] == 0.4
    assert rec.wait_for("slack", 2)[1]["text"].startswith("[RESOLVED]")
    time.sleep(0.5)
    assert len(rec.bodies("ok")) == 2, "no repeats while nothing changes"
    with urllib.request.urlopen(gw.url + "/stats", timeout=5) as r:
        seen = orjson.loads(r.read())["alerts"]
    assert seen["rules"]["errors-high"] == {"firing": False, "pending": False, "value": 0.4, "no_data": False}
    assert sorted((w["format"], w["delivered"], w["failed"]) for w in seen["webhooks"]) == [("json", 2, 0), ("slack", 2, 0)]


def test_budget_alert_reads_the_store_counter(make_gateway, servers, store_url):
    rec = receiver(servers)
    gw = make_gateway(extra=f'[store]\nurl = "{store_url}"\n', policies={"budgets.toml": f"""
        [[budgets]]
        id = "team-daily"
        scope = "team"
        tokens = 100
        window = "day"

        [[alerts]]
        id = "team-a-budget-30"
        type = "budget"
        budget = "team-daily"
        subject = "team-a"
        percent = 30
        every = "0.1s"
        webhooks = [{{ url = "{rec.url}/ok" }}]
        """})
    words = " ".join(["word"] * 20)
    # The mock counts words: 20 in, 20 echoed back = 40 tokens of 100.
    client(gw).chat.completions.create(model="demo", max_tokens=40, messages=[{"role": "user", "content": words}])
    [fired] = rec.wait_for("ok", 1)
    assert fired["type"] == "budget" and fired["budget"] == "team-daily" and fired["subject"] == "team-a"
    assert fired["status"] == "firing" and fired["value"] >= 30 and fired["threshold"] == 30


def test_slow_and_failing_webhooks_never_delay_requests(make_gateway, servers):
    rec = receiver(servers)
    gw = make_gateway(policies={"alerts.toml": f"""
        [[alerts]]
        id = "any-traffic"
        metric = "windows.1m.requests"
        op = ">="
        threshold = 1
        every = "0.1s"
        webhooks = [
          {{ url = "{rec.url}/slow", timeout_s = 30, max_attempts = 1 }},
          {{ url = "{rec.url}/fail", max_attempts = 4, backoff_s = 0.1 }},
        ]
        """})
    c = client(gw)
    c.chat.completions.create(model="demo", messages=MSGS)
    rec.wait_for("slow", 1)
    assert rec.slow_started == 1 and rec.slow_done == 0
    durations = []
    t0 = time.time()
    for _ in range(20):
        t = time.perf_counter()
        c.chat.completions.create(model="demo", messages=MSGS)
        with c.chat.completions.create(model="demo", messages=MSGS, stream=True) as stream:
            for _ in stream:
                pass
        durations.append(time.perf_counter() - t)
    assert rec.slow_done == 0, "the slow delivery was still in progress while requests were measured"
    assert max(durations) < 1.0, durations  # generous: each pair takes milliseconds
    assert time.time() - t0 < 4.0
    # The failing hook was retried with backoff, up to max_attempts, without holding anything up.
    assert len(rec.wait_for("fail", 4)) == 4
    time.sleep(0.3)
    assert len(rec.bodies("fail")) == 4
