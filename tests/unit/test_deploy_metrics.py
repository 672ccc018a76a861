"""deploy/prometheus-rules.yml and deploy/grafana-dashboard.json only name metrics the gateway exports:
both files parse, and every `gateway_*` name in their queries appears in /metrics after some traffic
(histograms as _bucket/_sum/_count; counters are declared with their _total name)."""

from __future__ import annotations

import json
import re
import time
import urllib.request
from pathlib import Path

import openai
import pytest
import yaml

from tests.support.gateway import TEST_KEY

ROOT = Path(__file__).resolve().parents[2]
NAME = re.compile(r"\bgateway_[a-z0-9_]+")


def rule_exprs() -> list[str]:
    doc = yaml.safe_load((ROOT / "deploy" / "prometheus-rules.yml").read_text())
    rules = [r for g in doc["groups"] for r in g["rules"]]
    for r in rules:
        assert r["alert"] and r["expr"] and r["for"], r
        assert r["annotations"]["runbook"] and r["annotations"]["summary"], r
    return [r["expr"] for r in rules]


def dashboard_exprs() -> list[str]:
    doc = json.loads((ROOT / "deploy" / "grafana-dashboard.json").read_text())
    exprs = [t["expr"] for p in doc["panels"] for t in p["targets"]]
    exprs += [v["definition"] for v in doc["templating"]["list"]]
    return exprs


def test_rules_cover_latency_errors_guardrails_and_cost():
    text = "\n".join(rule_exprs())
    for needle in ("histogram_quantile(0.95", "gateway_request_duration_seconds_bucket[5m]", "> 0.05",
                   "gateway_guardrail_decisions_total", "gateway_cost_usd_total[1h]"):
        assert needle in text


@pytest.fixture
def exported(make_gateway) -> set[str]:
    gw = make_gateway(extra="""
        [pricing."*"]
        input = 1.0
        output = 2.0

        [providers.dead]
        type = "openai"
        base_url = "http://127.0.0.1:9/v1"
        api_key_env = "TEST_UPSTREAM_KEY"

        [models.flaky]
        targets = [{ provider = "dead", model = "gpt-4o" }]
        fallbacks = ["demo"]
        max_attempts = 2
        retry_base_s = 0
        breaker_failures = 1

        [[audit.sinks]]
        type = "file"
        path = "audit.jsonl"
        """, policies={"policies.toml": """
        [[guardrails]]
        id = "words"
        type = "deny_list"
        phrases = ["forbidden"]

        [[rate_limits]]
        id = "tiny"
        scope = "key"
        rpm = 5

        [[budgets]]
        id = "monthly"
        scope = "global"
        usd = 1000
        window = "month"

        [[alerts]]
        id = "any-traffic"
        metric = "windows.1m.requests"
        op = ">="
        threshold = 1
        every = "0.1s"
        webhooks = [{ url = "http://127.0.0.1:9/hook", max_attempts = 1 }]
        """})
    c = openai.OpenAI(base_url=gw.v1, api_key=TEST_KEY, max_retries=0)
    msgs = [{"role": "user", "content": "hello"}]
    c.chat.completions.create(model="gpt", messages=msgs)
    for _ in c.chat.completions.create(model="gpt", messages=msgs, stream=True):
        pass
    with pytest.raises(openai.BadRequestError):
        c.chat.completions.create(model="demo", messages=[{"role": "user", "content": "say forbidden"}])
    c.chat.completions.create(model="flaky", messages=msgs)  # retried, then answered by the fallback
    c.chat.completions.create(model="demo", messages=msgs)
    with pytest.raises(openai.RateLimitError):
        c.chat.completions.create(model="demo", messages=msgs)
    deadline = time.time() + 10  # the alert fired at the first request; its webhook (a dead port) failed
    while time.time() < deadline and not any(w["failed"] for w in gw.state.runtime.services.recorder.stats()
                                             ["alerts"]["webhooks"]):
        time.sleep(0.1)
    with urllib.request.urlopen(gw.url + "/metrics", timeout=5) as r:
        text = r.read().decode()
    samples = {line.split("{")[0].split(" ")[0] for line in text.splitlines() if line and not line.startswith("#")}
    declared = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            suffixes = {"histogram": ("_bucket", "_sum", "_count")}.get(kind, ("",))
            declared.update(name + s for s in suffixes)
    return samples, declared


# Counted only when something fails: declared in /metrics (HELP/TYPE) but without a series until then.
ERRORS_ONLY = {"gateway_audit_sink_errors_total"}


# Series added for #16, each made by the traffic above (the deploy files use them all).
NEW_SERIES = {
    "gateway_request_errors_total", "gateway_retries_total", "gateway_fallbacks_total",
    "gateway_circuit_breaker_transitions_total", "gateway_config_reloads_total",
    "gateway_alert_notifications_total", "gateway_build_info", "gateway_process_cpu_seconds_total",
    "gateway_process_resident_memory_bytes", "gateway_process_open_fds", "gateway_workers",
    "gateway_budget_remaining", "gateway_budget_limit",
}


def test_every_new_metric_has_a_series_after_matching_traffic(exported):
    samples, _ = exported
    assert not sorted(NEW_SERIES - samples), f"no series: {sorted(NEW_SERIES - samples)}"


def test_every_metric_named_in_deploy_files_is_exported(exported):
    samples, declared = exported
    referenced = {m for e in rule_exprs() + dashboard_exprs() for m in NAME.findall(e)}
    assert len(referenced) >= 12
    assert not sorted(referenced - declared), f"not in /metrics: {sorted(referenced - declared)}"
    without_series = referenced - samples
    assert without_series <= ERRORS_ONLY, f"no series after traffic: {sorted(without_series)}"
