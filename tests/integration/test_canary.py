"""Canary routing over real sockets: a candidate target gets its share of traffic, or chosen keys' and
tags'; when it fails past its bound one gateway process rolls it back, and a second process sharing
the same redis-server stops sending to it too; an alert fires on the rollback."""

from __future__ import annotations

import random
import time
import urllib.request

import openai
import orjson
import pytest

from tests.integration.test_alerts import receiver
from tests.support.fake_upstream import FakeUpstream
from tests.support.gateway import TEST_KEY, base_config, sha, write_config
from tests.support.processes import GatewayProcess

MSGS = [{"role": "user", "content": "Say hello"}]
TEXT = "Hello! How can I help you today?"
THIRD_KEY = "sk-third-0123456789"
THIRD = {"third.toml": f"""
[[keys]]
id = "third"
key_sha256 = "{sha(THIRD_KEY)}"
"""}


@pytest.fixture
def stable_and_candidate(servers):
    stable, cand = FakeUpstream(), FakeUpstream()
    stable.url, cand.url = servers.serve(stable.app()), servers.serve(cand.app())
    yield stable, cand
    servers.stop_app(stable.url)
    servers.stop_app(cand.url)


def canary_config(stable: FakeUpstream, cand: FakeUpstream, canary: str) -> str:
    return f"""
[providers.stable]
type = "openai"
base_url = "{stable.url}/v1"

[providers.cand]
type = "openai"
base_url = "{cand.url}/v1"

[models.rollout]
targets = [{{ provider = "stable", model = "m-stable" }}]

[models.rollout.canary]
target = {{ provider = "cand", model = "m-new" }}
{canary}
"""


def ask(url: str, key: str = TEST_KEY, tags: str | None = None):
    c = openai.OpenAI(base_url=url + "/v1", api_key=key, max_retries=0)
    headers = {"x-gateway-tags": tags} if tags else None
    raw = c.chat.completions.with_raw_response.create(model="rollout", messages=MSGS, extra_headers=headers)
    assert raw.parse().choices[0].message.content == TEXT  # a failing candidate fails over to stable
    return raw.headers


def stats(url: str) -> dict:
    with urllib.request.urlopen(url + "/stats", timeout=5) as r:
        return orjson.loads(r.read())


def test_share_keys_and_tags_choose_the_candidate(make_gateway, stable_and_candidate):
    stable, cand = stable_and_candidate
    gw = make_gateway(policies=THIRD, extra=canary_config(stable, cand, """
share = 0.25
keys = ["third"]
tags = ["beta"]
max_error_rate = 0.5
"""))
    gw.state.runtime.router.rng = random.Random(5)
    seen = [ask(gw.url)["x-gateway-model"] for _ in range(200)]
    assert 30 <= seen.count("m-new") <= 70, seen.count("m-new")  # 25% of 200: 50, sd about 6
    assert all(ask(gw.url, key=THIRD_KEY)["x-gateway-model"] == "m-new" for _ in range(15))
    assert all(ask(gw.url, tags="x, beta")["x-gateway-model"] == "m-new" for _ in range(15))


def test_no_share_sends_only_the_chosen_keys(make_gateway, stable_and_candidate):
    stable, cand = stable_and_candidate
    gw = make_gateway(policies=THIRD, extra=canary_config(stable, cand, 'keys = ["third"]\nmax_error_rate = 0.5\n'))
    assert {ask(gw.url)["x-gateway-model"] for _ in range(30)} == {"m-stable"}
    assert {ask(gw.url, key=THIRD_KEY)["x-gateway-model"] for _ in range(5)} == {"m-new"}
    assert len(cand.requests) == 5


def test_a_failing_candidate_is_rolled_back_by_one_process_and_the_other_follows(
        tmp_path, redis_url, servers, stable_and_candidate):
    stable, cand = stable_and_candidate
    cand.fail_rate = 1.0  # every candidate request answers 500
    rec = receiver(servers)
    main = base_config(stable.url, extra=canary_config(stable, cand, """
share = 0.5
tags = ["beta"]
max_error_rate = 0.2
min_requests = 5
window_s = 60
check_s = 0.2
""") + f'\n[store]\nurl = "{redis_url}"\n')
    cfg = write_config(tmp_path, main, {"alerts.toml": f"""
        [[alerts]]
        id = "canary-rolled-back"
        metric = "canary.rollout.rolled_back"
        op = ">"
        threshold = 0
        every = "0.1s"
        cooldown = 0
        severity = "critical"
        webhooks = [{{ url = "{rec.url}/ok", format = "json" }}]
        """})
    one, two = GatewayProcess(cfg), GatewayProcess(cfg)
    try:
        for _ in range(2):  # the second process sends to the candidate while it is live
            assert ask(two.url, tags="beta")["x-gateway-model"] == "m-stable"  # failed over
        assert len(cand.requests) == 2
        for _ in range(5):  # five failures on the first process: past 0.2, rolled back
            h = ask(one.url, tags="beta")
            assert h["x-gateway-model"] == "m-stable" and h["x-gateway-attempts"] == "2"
        assert len(cand.requests) == 7
        first = stats(one.url)["canary"]["rollout"]
        assert first["rolled_back"] == 1 and first["rollbacks"] == 1 and "error rate" in first["reason"]
        for _ in range(10):  # rolled back: tagged requests go straight to the stable target
            assert ask(one.url, tags="beta")["x-gateway-attempts"] == "1"
        time.sleep(0.3)  # the second process's check_s
        for _ in range(20):
            h = ask(two.url, tags="beta")
            assert h["x-gateway-model"] == "m-stable" and h["x-gateway-attempts"] == "1"
        assert len(cand.requests) == 7, "no process sends to the rolled-back candidate"
        second = stats(two.url)["canary"]["rollout"]
        assert second["rolled_back"] == 1 and second["rollbacks"] == 0 and "error rate" in second["reason"]
        for proc in (one, two):
            with urllib.request.urlopen(proc.url + "/metrics", timeout=5) as r:
                metrics = r.read().decode()
            assert 'gateway_canary_rolled_back{alias="rollout",target="cand/m-new"} 1.0' in metrics
        fired = rec.wait_for("ok", 1)
        assert fired[0]["alert"] == "canary-rolled-back" and fired[0]["status"] == "firing"
    finally:
        one.stop()
        two.stop()
