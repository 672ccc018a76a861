"""`[[alerts]]`: schema refusals, the per-rule state machine (for, cooldown, resolve) and the payloads."""

from __future__ import annotations

import pytest

from gateway.alerts.evaluator import AlertEvaluator, read_path
from gateway.alerts.rules import Alerts
from gateway.alerts.webhooks import Notification, json_payload, slack_payload
from gateway.config.validate import ConfigError, SourcedRule

HOOK = [{"url": "http://127.0.0.1:9/hook", "format": "json"}]


def rule(**data) -> SourcedRule:
    return SourcedRule("alerts.toml", "alerts[0]", {"id": "r", "webhooks": HOOK, **data})


def compile_one(budgets=(), **data):
    return Alerts.compile([rule(**data)], list(budgets)).rules[0]


def test_metric_rule_compiles_with_window_shorthand_and_for():
    r = compile_one(metric="latency_ms.p95", window="5m", op=">=", threshold=2000, **{"for": "2m"}, cooldown="10m")
    assert r.path == ("windows", "5m", "latency_ms", "p95")
    assert (r.op, r.threshold, r.for_s, r.cooldown_s, r.window) == (">=", 2000.0, 120.0, 600.0, "5m")


@pytest.mark.parametrize("data, key", [
    ({"metric": "windows.5m.error_rate"}, "alerts[0]"),  # no threshold
    ({"metric": "windows.2m.error_rate", "threshold": 1}, "alerts[0].metric"),
    ({"metric": "windows.5m.latency_ms.p90", "threshold": 1}, "alerts[0].metric"),
    ({"metric": "windows.5m.error_rate", "threshold": 1, "op": "=="}, "alerts[0].op"),
    ({"metric": "windows.5m.error_rate", "threshold": 1, "every": "soon"}, "alerts[0].every"),
    ({"metric": "windows.5m.error_rate", "threshold": 1, "colour": "red"}, "alerts[0].colour"),
    ({"metric": "windows.5m.error_rate", "threshold": 1, "webhooks": [{"format": "slack"}]}, "alerts[0].webhooks.0"),
    ({"metric": "windows.5m.error_rate", "threshold": 1, "webhooks": [{"url": "ftp://x"}]}, "alerts[0].webhooks[0].url"),
    ({"metric": "windows.5m.error_rate", "threshold": 1, "webhooks": [{"url_env": "NOPE_UNSET_URL"}]},
     "alerts[0].webhooks[0].url_env"),
    ({"type": "budget", "budget": "nope", "percent": 80}, "alerts[0].budget"),
])
def test_bad_rules_name_the_key(data, key):
    with pytest.raises(ConfigError) as exc:
        compile_one(**data)
    assert exc.value.key == key, exc.value


def test_duplicate_ids_are_refused():
    with pytest.raises(ConfigError, match="unique alert id"):
        Alerts.compile([rule(metric="in_flight", threshold=1), rule(metric="in_flight", threshold=2)], [])


BUDGETS = [SourcedRule("b.toml", "budgets[0]", {"id": "team-monthly", "scope": "team", "usd": 100}),
           SourcedRule("b.toml", "budgets[1]", {"id": "all", "scope": "global", "usd": 1000})]


def test_budget_rules_need_a_subject_only_for_per_each_budgets():
    r = compile_one(BUDGETS, type="budget", budget="team-monthly", percent=80, subject="ml")
    assert (r.subject, r.op, r.threshold, r.budget.id) == ("ml", ">=", 80.0, "team-monthly")
    with pytest.raises(ConfigError, match="team whose budget"):
        compile_one(BUDGETS, type="budget", budget="team-monthly", percent=80)
    assert compile_one(BUDGETS, type="budget", budget="all", percent=50).subject == "*"
    with pytest.raises(ConfigError, match="one shared counter"):
        compile_one(BUDGETS, type="budget", budget="all", percent=50, subject="x")


def test_url_env_is_read_and_never_shown(monkeypatch):
    monkeypatch.setenv("ALERT_HOOK_URL", "https://hooks.example.com/services/T000/SECRET")
    r = compile_one(metric="in_flight", threshold=1, webhooks=[{"url_env": "ALERT_HOOK_URL", "format": "slack"}])
    assert r.webhooks[0].url.endswith("SECRET") and r.webhooks[0].label == "$ALERT_HOOK_URL"


def test_read_path():
    data = {"windows": {"5m": {"latency_ms": {"p95": 12.5, "p99": None}, "requests": 3}}, "flag": True}
    assert read_path(data, ("windows", "5m", "latency_ms", "p95")) == 12.5
    assert read_path(data, ("windows", "5m", "latency_ms", "p99")) is None
    assert read_path(data, ("windows", "1m", "requests")) is None
    assert read_path(data, ("flag",)) is None


class _Sink:
    def __init__(self) -> None:
        self.sent: list[Notification] = []

    def send(self, webhook, n) -> None:
        self.sent.append(n)

    def stats(self):
        return []


async def test_state_machine_waits_for_for_then_fires_once_resolves_and_respects_cooldown():
    alerts = Alerts.compile([rule(metric="windows.1m.error_rate", threshold=0.05, every="1s", cooldown="60s",
                                  min_requests=5, **{"for": "3s"})], [])
    stats = {"windows": {"1m": {"error_rate": 0.0, "requests": 10}}}
    sink = _Sink()
    ev = AlertEvaluator(lambda: alerts, lambda: stats, lambda: None, sink)  # type: ignore[arg-type]

    async def at(t: float, rate: float, requests: int = 10) -> list[str]:
        stats["windows"]["1m"].update(error_rate=rate, requests=requests)
        await ev.evaluate(alerts, now=t)
        return [n.status for n in sink.sent]

    assert await at(0, 0.0) == []
    assert await at(1, 0.5) == []  # pending
    assert await at(2, 0.5) == []
    assert await at(3, 0.5, requests=2) == []  # too few requests: no data, pending resets
    assert await at(4, 0.5) == []
    assert await at(7, 0.5) == ["firing"]
    assert await at(8, 0.5) == ["firing"]  # still firing: no repeat
    assert await at(9, 0.01) == ["firing", "resolved"]
    assert sink.sent[1].since == 4
    assert await at(20, 0.5) == ["firing", "resolved"]
    assert await at(30, 0.5) == ["firing", "resolved"]  # held for `for`, but within the cooldown
    assert await at(67, 0.5) == ["firing", "resolved", "firing"]
    assert ev.snapshot()["rules"]["r"] == {"firing": True, "pending": True, "value": 0.5, "no_data": False}


async def test_a_firing_rule_that_loses_its_data_says_no_data_once_and_stays_firing():
    alerts = Alerts.compile([rule(metric="windows.1m.latency_ms.p95", threshold=1000, every="1s", cooldown=0)], [])
    stats: dict = {"windows": {"1m": {"latency_ms": {"p95": 2500.0}}}}
    sink = _Sink()
    ev = AlertEvaluator(lambda: alerts, lambda: stats, lambda: None, sink)  # type: ignore[arg-type]

    async def at(t: float, p95: float | None) -> list[tuple[str, float | None]]:
        stats["windows"]["1m"]["latency_ms"]["p95"] = p95
        await ev.evaluate(alerts, now=t)
        return [(n.status, n.value) for n in sink.sent]

    assert await at(0, 2500.0) == [("firing", 2500.0)]
    assert await at(1, None) == [("firing", 2500.0), ("no_data", None)]  # before: a silent "resolved"
    assert ev.snapshot()["rules"]["r"] == {"firing": True, "pending": False, "value": None, "no_data": True}
    assert await at(2, None) == [("firing", 2500.0), ("no_data", None)]  # said once
    assert sink.sent[1].text().startswith("[NO DATA] warning: r - windows.1m.latency_ms.p95 has no data")
    assert await at(3, 3000.0) == [("firing", 2500.0), ("no_data", None)]  # still firing: no repeat
    assert await at(4, 10.0) == [("firing", 2500.0), ("no_data", None), ("resolved", 10.0)]
    assert slack_payload(sink.sent[1])["attachments"][0]["color"] == "#a0a0a0"


def test_values_are_printed_rounded():
    from gateway.alerts.webhooks import fmt

    r = compile_one(metric="windows.5m.error_rate", threshold=0.05)
    n = Notification(r, "firing", 0.123456789, at=1_700_000_100, since=1_700_000_000, instance="h:1")
    assert n.text().endswith("windows.5m.error_rate = 0.123 (> 0.05)")
    assert (fmt(99.99999), fmt(100.0), fmt(1234.5678), fmt(0.000123456), fmt(None)) == \
        ("100", "100", "1234.57", "0.000123", "no data")
    assert json_payload(Notification(r, "firing", 1 / 3, 0, 0, "h:1"))["value"] == 0.333333
    fields = {f["title"]: f["value"] for f in slack_payload(n)["attachments"][0]["fields"]}
    assert fields["value"] == "0.123" and fields["threshold"] == "> 0.05"


async def test_a_100_percent_budget_alert_fires_on_refused_demand():
    """Spend stalls below the limit while every further request is refused: the alert's value is
    spend plus refused demand, so a 100% rule fires (it never could on spend alone)."""
    from gateway.context import Principal, RequestContext
    from gateway.errors import RateLimited
    from gateway.limits import Limits
    from gateway.pricing import Pricing
    from gateway.store.memory import MemoryStore

    budgets = [SourcedRule("b.toml", "budgets[0]", {"id": "all", "scope": "global", "tokens": 100})]
    alerts = Alerts.compile([rule(type="budget", budget="all", percent=100, every="1s")], budgets)
    limits = Limits.compile([], budgets, Pricing.compile(None, file="t.toml"))
    store = MemoryStore()
    await limits.start(store)
    sink = _Sink()
    ev = AlertEvaluator(lambda: alerts, lambda: {}, lambda: store, sink)  # type: ignore[arg-type]

    def ctx(i: int) -> RequestContext:
        return RequestContext(request_id=f"r{i}", api="chat", shape="openai", runtime=None, received_at=0.0,  # type: ignore[arg-type]
                              trace_id="t" * 32, span_id="s" * 16, principal=Principal("k"), alias="m",
                              body={"model": "m", "messages": []})

    first = ctx(0)
    await limits.admit(first, 30, 30)  # 60 of 100 tokens reserved
    first.usage.input_tokens, first.usage.output_tokens = 30, 55
    await limits.settle(first)  # 85 spent: every request of 60 is refused from now on
    await ev.evaluate(alerts, now=ev._clock())
    assert sink.sent == [] and ev.states["r"].value == pytest.approx(85.0)
    with pytest.raises(RateLimited):
        await limits.admit(ctx(1), 30, 30)
    await ev.evaluate(alerts, now=ev._clock() + 2)
    assert [n.status for n in sink.sent] == ["firing"]
    assert sink.sent[0].value == pytest.approx(145.0)  # 85 spent + 60 refused



def test_payloads_carry_the_fields():
    r = compile_one(metric="windows.5m.error_rate", threshold=0.05, severity="critical", summary="errors",
                    runbook="https://runbooks/errors")
    n = Notification(r, "firing", 0.2, at=1_700_000_100, since=1_700_000_000, instance="h:1")
    j = json_payload(n)
    assert j["alert"] == "r" and j["status"] == "firing" and j["severity"] == "critical"
    assert j["metric"] == "windows.5m.error_rate" and j["value"] == 0.2 and j["threshold"] == 0.05
    assert j["started_at"] == "2023-11-14T22:13:20Z" and j["runbook"] == "https://runbooks/errors"
    s = slack_payload(n)
    assert s["text"].startswith("[FIRING] critical: r - errors - windows.5m.error_rate = 0.2 (> 0.05)")
    assert s["attachments"][0]["color"] == "#d00000"
    assert {"title": "runbook", "value": "https://runbooks/errors", "short": False} in s["attachments"][0]["fields"]


def test_a_drift_alert_needs_drift_enabled():
    """Drift bins cost background CPU per request, so they are computed only with `[drift] enabled = true`;
    a drift alert without it would never have data: a config error naming the key."""
    from gateway.alerts.rules import Alerts
    from gateway.config.validate import ConfigError

    rule = SourcedRule("alerts.toml", "alerts[0]", {"id": "d", "type": "drift", "webhooks": HOOK})
    with pytest.raises(ConfigError) as err:
        Alerts.compile([rule], [], drift_enabled=False)
    assert "alerts[0].type" in str(err.value) and "[drift] enabled" in str(err.value)
    assert Alerts.compile([rule], [], drift_enabled=True) is not None
