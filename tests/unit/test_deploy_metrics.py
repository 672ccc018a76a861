"""deploy/prometheus-rules.yml and deploy/grafana-dashboard.json only name metrics the gateway exports:
both files parse, and every `gateway_*` name in their queries appears in /metrics after some traffic
(histograms as _bucket/_sum/_count; counters are declared with their _total name)."""

from __future__ import annotations

import json
import re
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
        rpm = 4
        """})
    c = openai.OpenAI(base_url=gw.v1, api_key=TEST_KEY, max_retries=0)
    msgs = [{"role": "user", "content": "hello"}]
    c.chat.completions.create(model="gpt", messages=msgs)
    for _ in c.chat.completions.create(model="gpt", messages=msgs, stream=True):
        pass
    with pytest.raises(openai.BadRequestError):
        c.chat.completions.create(model="demo", messages=[{"role": "user", "content": "say forbidden"}])
    c.chat.completions.create(model="demo", messages=msgs)
    with pytest.raises(openai.RateLimitError):
        c.chat.completions.create(model="demo", messages=msgs)
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


def test_every_metric_named_in_deploy_files_is_exported(exported):
    samples, declared = exported
    referenced = {m for e in rule_exprs() + dashboard_exprs() for m in NAME.findall(e)}
    assert len(referenced) >= 12
    assert not sorted(referenced - declared), f"not in /metrics: {sorted(referenced - declared)}"
    without_series = referenced - samples
    assert without_series <= ERRORS_ONLY, f"no series after traffic: {sorted(without_series)}"
