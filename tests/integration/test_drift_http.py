"""Input drift over real sockets: the openai SDK sends one prompt mix, then (after the current window has
moved on) either another mix or the same one; PSI per feature in /stats and /metrics, and a `drift` alert
that fires on a webhook receiver on loopback when the mix switched and stays quiet when it did not."""

from __future__ import annotations

import time
import urllib.request

import openai
import orjson
import pytest

from tests.integration.test_alerts import receiver
from tests.support.gateway import TEST_KEY

WINDOW_S = 4
DRIFT = f"""
[drift]
enabled = true
window_s = {WINDOW_S}
reference_s = 60
bucket_s = 1
min_requests = 20
"""
TOOLS = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object", "properties": {}}}}]
LONG_RU = "Пожалуйста, кратко изложите следующие заметки для еженедельного обзора и перечислите задачи. " * 12


def alerts(url: str) -> dict:
    return {"alerts.toml": f"""
[[alerts]]
id = "inputs-drifted"
type = "drift"
alias = "demo"
every = "0.1s"
cooldown = 0
send_resolved = false
webhooks = [{{ url = "{url}/ok" }}]
"""}


def mix_a(c: openai.OpenAI) -> None:
    c.chat.completions.create(model="demo", messages=[{"role": "user", "content": "Say hello"}])


def mix_b(c: openai.OpenAI) -> None:
    history = [{"role": "user", "content": "Привет"}, {"role": "assistant", "content": "Здравствуйте"}] * 3
    c.chat.completions.create(model="demo", messages=history + [{"role": "user", "content": LONG_RU}], tools=TOOLS)


def stats(gw) -> dict:
    with urllib.request.urlopen(gw.url + "/stats", timeout=10) as resp:
        return orjson.loads(resp.read())


@pytest.mark.parametrize("switch", [True, False], ids=["mix-switched", "mix-unchanged"])
def test_psi_rises_and_the_alert_fires_only_when_the_mix_switches(make_gateway, servers, switch):
    rec = receiver(servers)
    gw = make_gateway(extra=DRIFT, policies=alerts(rec.url))
    c = openai.OpenAI(base_url=gw.v1, api_key=TEST_KEY, max_retries=0)
    for _ in range(25):
        mix_a(c)
    time.sleep(WINDOW_S + 1.2)  # the reference now holds mix A; the current window is empty
    row = stats(gw)["drift"]["by_alias"]["demo"]
    assert row["current"] == 0 and row["reference"] == 25 and row["max_psi"] is None  # too few to judge
    t0 = time.monotonic()
    for _ in range(25):
        (mix_b if switch else mix_a)(c)
    assert time.monotonic() - t0 < WINDOW_S - 1, "the machine is too slow for this window"
    row = stats(gw)["drift"]["by_alias"]["demo"]
    assert (row["current"], row["reference"]) == (25, 25)
    psi = row["psi"]
    if switch:
        for feature in ("prompt_tokens", "messages", "language", "tools"):
            assert psi[feature] > 0.2, (feature, psi)
        assert row["bins"]["language"]["cyrillic"] == 25 and row["bins"]["tools"]["yes"] == 25
        [fired] = rec.wait_for("ok", 1, timeout=WINDOW_S - 1)
        assert fired["alert"] == "inputs-drifted" and fired["status"] == "firing" and fired["type"] == "drift"
        assert fired["value"] > 0.2 and fired["threshold"] == 0.2
        with urllib.request.urlopen(gw.url + "/metrics", timeout=10) as resp:
            text = resp.read().decode()
        assert 'gateway_input_drift_psi{alias="demo",feature="language"}' in text
    else:
        assert all(v < 0.2 for v in psi.values()), psi
        time.sleep(1.0)  # several evaluations (every 0.1 s) with PSI in hand
        assert stats(gw)["alerts"]["rules"]["inputs-drifted"]["firing"] is False
        assert rec.bodies("ok") == []
