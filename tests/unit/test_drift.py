"""Input drift's pure pieces with literal inputs: the script heuristic, the bins, PSI, the windows, and the
`drift` alert rule's config."""

from __future__ import annotations

import math

import pytest

from gateway.alerts.evaluator import drift_psi
from gateway.alerts.rules import Alerts
from gateway.config.schema import DriftConfig
from gateway.config.validate import ConfigError, SourcedRule
from gateway.records.drift import FEATURES, Drift, bins_of, psi, script_of

LANG = FEATURES["language"]


@pytest.mark.parametrize("text,script", [
    ("Hello, how are you?", "latin"), ("Grüße aus München", "latin"), ("Привет, как дела?", "cyrillic"),
    ("Γειά σου κόσμε", "greek"), ("مرحبا بالعالم", "arabic"), ("שלום עולם", "hebrew"), ("नमस्ते दुनिया", "devanagari"),
    ("สวัสดีชาวโลก", "thai"), ("안녕하세요 세계", "hangul"), ("こんにちは世界", "kana"), ("你好世界", "han"),
    ("12345 !!!", "none"), ("", "none"), ("ሰላም ልዑል", "other"),
])
def test_script_of(text, script):
    assert LANG[script_of(text)] == script


def test_bins_of_a_chat_body():
    rec = {"input_tokens": 300, "injection_score": 0.95, "guardrail_action": "redact"}
    body = {"messages": [{"role": "system", "content": "sys"}, {"role": "user", "content": [{"type": "text", "text": "Привет"}]}],
            "tools": [{"type": "function"}]}
    names = []
    flat = [(f, b) for f, bins in FEATURES.items() for b in bins]
    for i in bins_of(rec, body):
        names.append(flat[i])
    assert names == [("prompt_tokens", "257-1k"), ("messages", "2"), ("language", "cyrillic"), ("tools", "yes"),
                     ("injection", ">=0.9"), ("guardrail", "edit")]
    assert [flat[i][1] for i in bins_of({"input_tokens": 3}, {"input": "hi"})] == ["0-16", "1", "latin", "no", "none", "allow"]


def test_psi_values():
    assert psi([50, 50], [50, 50]) == 0.0
    # shares 0.9/0.1 against 0.5/0.5: (0.4 ln 1.8) + (-0.4 ln 0.2)
    assert psi([90, 10], [50, 50]) == pytest.approx(0.4 * math.log(1.8) + 0.4 * math.log(5))
    assert psi([100, 0], [0, 100]) > 5  # disjoint: large, finite


def test_windows_and_min_requests():
    now = [1000.0]
    d = Drift(lambda: DriftConfig(window_s=10, reference_s=100, bucket_s=1, min_requests=5), clock=lambda: now[0])
    for t in range(950, 980):  # reference period: English
        d.observe("a", {"time": float(t), "input_tokens": 5}, {"messages": [{"role": "user", "content": "hello"}]})
    for t in range(992, 1000):  # current window: Russian
        d.observe("a", {"time": float(t), "input_tokens": 5}, {"messages": [{"role": "user", "content": "привет"}]})
    row = d.snapshot()["by_alias"]["a"]
    assert (row["current"], row["reference"]) == (8, 30)
    assert row["psi"]["language"] > 0.2 and row["psi"]["prompt_tokens"] == 0.0 and row["max_psi"] == row["psi"]["language"]
    d2 = Drift(lambda: DriftConfig(window_s=10, reference_s=100, bucket_s=1, min_requests=9), clock=lambda: now[0])
    d2.pending, d2.buckets = [], d.buckets
    assert d2.snapshot()["by_alias"]["a"]["psi"]["language"] is None  # 8 current requests < 9
    pinned = Drift(lambda: DriftConfig(window_s=10, bucket_s=1, min_requests=5, reference_since=990, reference_until=1000),
                   clock=lambda: now[0])
    pinned.buckets = d.buckets
    assert pinned.snapshot()["by_alias"]["a"]["psi"]["language"] == 0.0  # the reference is the same Russian minutes


def test_pinned_reference_needs_both_ends():
    with pytest.raises(ValueError):
        DriftConfig(reference_since=1.0)
    with pytest.raises(ValueError):
        DriftConfig(reference_since=2.0, reference_until=1.0)


def _rule(**kv) -> SourcedRule:
    return SourcedRule("a.toml", "alerts[0]", {"id": "d", "type": "drift", "webhooks": [{"url": "http://h/x"}], **kv})


def test_drift_alert_rule_defaults_and_reads_the_largest_psi():
    [rule] = Alerts.compile([_rule()], []).rules
    assert (rule.kind, rule.op, rule.threshold, rule.alias, rule.feature) == ("drift", ">", 0.2, None, None)
    stats = {"drift": {"by_alias": {"a": {"psi": {"language": 0.5, "tools": 0.1}}, "b": {"psi": {"language": None}}}}}
    assert drift_psi(stats, rule) == 0.5
    [one] = Alerts.compile([_rule(alias="a", feature="tools", threshold=0.05)], []).rules
    assert drift_psi(stats, one) == 0.1 and one.threshold == 0.05
    [other] = Alerts.compile([_rule(alias="b")], []).rules
    assert drift_psi(stats, other) is None  # not enough traffic: no data, never fires
    with pytest.raises(ConfigError):
        Alerts.compile([_rule(metric="windows.1m.rps")], [])
    with pytest.raises(ConfigError):
        Alerts.compile([SourcedRule("a.toml", "alerts[0]", {"id": "m", "metric": "windows.1m.rps", "threshold": 1,
                                                            "alias": "a", "webhooks": [{"url": "http://h/x"}]})], [])
