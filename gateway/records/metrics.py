"""Prometheus metrics, one CollectorRegistry per Recorder (no global registry).

Labels are bounded: route, alias/provider/model and key/team come from config, status is an HTTP
code, reasons and error codes come from gateway.reasons (anything else is "other"). Never request ids
or free text: an alias the config does not route is recorded as "-".

Under `--workers N` every worker writes its series to the instance's directory
(`gateway.records.multiproc`) and `text()` reads all workers' files, so one scrape is the instance.
How each kind adds up across workers: counters are summed (over live and dead workers, so they never
go back), histograms are merged bucket by bucket, gauges are summed over live workers (`livesum`:
requests in flight, queue depths, memory, open files, workers in each breaker state), except budget
remaining, which every worker reads from the same store (`livemostrecent`: the newest reading).
Build info and GPU readings describe the host and come from the worker answering.

Values that live elsewhere (in flight, breakers, reloads, webhook deliveries, budgets, process CPU and
memory) are sampled by `gateway.records.sampled` each second and before each scrape, not on the
request path.
"""

from __future__ import annotations

import platform
import re
from collections.abc import Container
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily

from gateway import __version__, reasons
from gateway.records import multiproc

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_LAT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
_OVERHEAD_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1)
_LIMIT_KINDS = frozenset(("rate_limit", "budget", "store", "capacity"))
BREAKER_STATES = ("closed", "half_open", "open")
_CODE = re.compile(r"[a-z_]{1,40}")


def _reason(code: str | None) -> str:
    return code if code in reasons.ALL else "other"


class _Host:
    """Series that describe the host and the build, the same in every worker: from the worker answering."""

    def __init__(self) -> None:
        self.gpu = None  # gateway.records.gpu.Gpu or None

    def collect(self):
        info = GaugeMetricFamily("gateway_build_info", "The gateway's version and Python (always 1)",
                                 labels=["version", "python"])
        info.add_metric([__version__, platform.python_version()], 1.0)
        yield info
        if self.gpu is not None:
            yield from self.gpu.collect()


class Metrics:
    def __init__(self, shared_dir: str | None = None) -> None:
        # Multiprocess mode is chosen by prometheus_client at import from the same variable.
        self.shared_dir = shared_dir if shared_dir is not None else multiproc.directory()
        r = self.registry = CollectorRegistry(auto_describe=True)
        target = ["route", "alias", "provider", "model"]
        self.requests = Counter("gateway_requests", "Requests by the alias the caller asked for (\"-\": not a "
                                "configured alias) and the provider of the last attempt",
                                ["route", "alias", "provider", "status"], registry=r)
        self.errors = Counter("gateway_request_errors", "Requests answered with an error (4xx, 5xx, or none sent), "
                              "by target and the reason code (gateway.reasons) or error code", [*target, "code"],
                              registry=r)
        self.latency = Histogram("gateway_request_duration_seconds", "Total request latency", target,
                                 buckets=_LAT_BUCKETS, registry=r)
        self.ttft = Histogram("gateway_time_to_first_token_seconds", "Time to first token", target,
                              buckets=_LAT_BUCKETS, registry=r)
        self.overhead = Histogram("gateway_overhead_seconds", "Gateway overhead (total minus upstream wait)",
                                  ["route"], buckets=_OVERHEAD_BUCKETS, registry=r)
        self.retries = Counter("gateway_retries", "Upstream attempts after the first, by the alias asked for",
                               ["alias"], registry=r)
        self.fallbacks = Counter("gateway_fallbacks", "Requests answered by a fallback alias", ["alias", "fallback"],
                                 registry=r)
        self.tokens = Counter("gateway_tokens", "Tokens", ["key", "team", "model", "type"], registry=r)
        self.cost = Counter("gateway_cost_usd", "Cost in USD", ["key", "team", "model"], registry=r)
        self.guardrail = Counter("gateway_guardrail_decisions", "Guardrail decisions",
                                 ["kind", "action", "reason", "direction"], registry=r)
        self.limits = Counter("gateway_limit_rejections", "Requests refused by rate limits and budgets",
                              ["kind", "reason"], registry=r)
        self.in_flight = Gauge("gateway_requests_in_flight", "Requests in flight", registry=r,
                               multiprocess_mode="livesum")
        self.queue_depth = Gauge("gateway_audit_queue_depth", "Audit records waiting in memory for the spool "
                                 "(its write failed; retried every flush)", registry=r, multiprocess_mode="livesum")
        self.recorded = Counter("gateway_audit_records", "Audit records submitted", registry=r)
        self.dropped = Counter("gateway_audit_dropped", "Records lost (a record could not be built, or queue_size "
                               "records already waited for a failing spool)", registry=r)
        self.backlog = Gauge("gateway_audit_spool_backlog_bytes", "Spooled bytes not yet shipped", ["sink"], registry=r,
                             multiprocess_mode="livesum")
        self.sink_errors = Counter("gateway_audit_sink_errors", "Failed shipments", ["sink"], registry=r)
        self.unscanned = Counter("gateway_guardrail_unscanned_chars", "Characters of text that reached an upstream "
                                 "or a caller without any guardrail scanning them (images, audio, token ids, "
                                 "on_error = open failures)", registry=r)
        # Sampled (gateway.records.sampled): read from their owners each second, off the request path.
        self.fail_open = Counter("gateway_store_fail_open", "Requests served unchecked while the store was down "
                                 "(on_store_error = open), by the check that could not run", ["check"], registry=r)
        self.breaker_state = Gauge("gateway_circuit_breaker_state", "Workers whose circuit breaker of the target is "
                                   "in this state (one worker: 1 for the current state)", ["target", "state"],
                                   registry=r, multiprocess_mode="livesum")
        self.breaker_transitions = Counter("gateway_circuit_breaker_transitions", "Circuit breaker state changes, "
                                           "by the state entered", ["target", "state"], registry=r)
        self.reloads = Counter("gateway_config_reloads", "Config reloads (SIGHUP, file watch), by result", ["result"],
                               registry=r)
        self.alert_notifications = Counter("gateway_alert_notifications", "Alert webhook notifications, by "
                                           "webhook (its env var or host) and result", ["webhook", "result"],
                                           registry=r)
        self.budget_remaining = Gauge("gateway_budget_remaining", "What is left of a budget in its current window "
                                      "(unit: usd or tokens), per subject the config names (\"*\": shared)",
                                      ["rule", "subject", "unit"], registry=r, multiprocess_mode="livemostrecent")
        self.budget_limit = Gauge("gateway_budget_limit", "A budget's limit per window", ["rule", "subject", "unit"],
                                  registry=r, multiprocess_mode="livemostrecent")
        self.cache = Counter("gateway_cache_requests", "Requests under a [[cache]] rule by outcome (hit, miss, "
                             "bypass), per alias", ["alias", "outcome"], registry=r)
        self.cache_saved = Counter("gateway_cache_saved_usd", "USD not spent: what cache hits' answers cost when "
                                   "they were fetched, per alias", ["alias"], registry=r)
        self.trace_queue = Gauge("gateway_trace_queue_spans", "Trace spans waiting for export (at most "
                                 "[tracing] queue_size), summed over live workers", registry=r,
                                 multiprocess_mode="livesum")
        self.trace_dropped = Counter("gateway_trace_spans_dropped", "Trace spans never exported, by reason: "
                                     "queue_full (the export queue was full), export_failed (the collector refused "
                                     "or did not answer), build_failed", ["reason"], registry=r)
        self.canary_rolled_back = Gauge("gateway_canary_rolled_back", "1 when the alias's canary target was rolled "
                                        "back (by any instance sharing the store)", ["alias", "target"],
                                        registry=r, multiprocess_mode="livemax")
        self.feedback = Counter("gateway_feedback", "Feedback received, by the judged request's alias and target "
                                "and the score sent", ["alias", "target", "score"], registry=r)
        self.feedback_score = Counter("gateway_feedback_score_sum", "Sum of normalised feedback scores (0..1); "
                                      "divide by gateway_feedback_total for the mean", ["alias", "target"], registry=r)
        self.shadow_pairs = Counter("gateway_shadow_pairs", "Shadow pairs recorded, by outcome (compared, "
                                    "primary_failed, shadow_error, timeout, refused)", ["alias", "candidate", "outcome"],
                                    registry=r)
        self.shadow_dropped = Counter("gateway_shadow_dropped", "Sampled shadow copies dropped: the shadow queue was full",
                                      ["alias"], registry=r)
        self.shadow_cost = Counter("gateway_shadow_cost_usd", "Cost of shadow copies in USD", ["alias", "candidate"],
                                   registry=r)
        self.shadow_similarity = Histogram("gateway_shadow_similarity", "Word-set Jaccard similarity of the caller's "
                                           "and the shadow's answers", ["alias", "candidate"],
                                           buckets=(0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0), registry=r)
        self.shadow_latency = Histogram("gateway_shadow_latency_seconds", "Latency of both sides of shadow pairs",
                                        ["alias", "candidate", "side"], buckets=_LAT_BUCKETS, registry=r)
        self.cpu = Counter("gateway_process_cpu_seconds", "CPU time of the workers (user and system), summed",
                           registry=r)
        self.rss = Gauge("gateway_process_resident_memory_bytes", "Resident memory of the live workers, summed",
                         registry=r, multiprocess_mode="livesum")
        self.fds = Gauge("gateway_process_open_fds", "Open file descriptors of the live workers, summed", registry=r,
                         multiprocess_mode="livesum")
        self.workers = Gauge("gateway_workers", "Live worker processes of this instance (set once serving)",
                             registry=r, multiprocess_mode="livesum")
        self.host = _Host()
        r.register(self.host)
        self.extra_collectors: list[Any] = []  # custom collectors (add_collector), also in multiprocess mode
        self._children: dict[tuple, tuple] = {}
        self._decision_children: dict[tuple, object] = {}  # bounded: kinds x actions x reason codes
        self._error_children: dict[tuple, object] = {}

    def enable_gpu(self):
        """Probe NVML once; returns the GPU reader or None where there is no driver."""
        from gateway.records.gpu import Gpu

        self.host.gpu = Gpu.probe()
        return self.host.gpu

    def observe(self, rec: dict, aliases: Container[str] = (), fallback: str | None = None,
                reason: str | None = None) -> None:
        """Count one finished request. Label children are cached: `.labels()` is the costly part.
        `aliases`: the configured aliases (a refused request is labelled with the alias it asked for
        when the config routes it); `fallback`: the alias that answered when it is not the one asked
        for; `reason`: the refusal's reason code."""
        route, model = rec["route"], rec["model"] or "-"
        asked = rec["alias"]
        alias = asked if rec["model"] is not None or (asked is not None and asked in aliases) else "-"
        key, team = rec["key_id"] or "-", rec["team"] or "-"
        provider = rec["provider"] or "-"
        status = rec["status"]
        ck = (route, alias, provider, status, key, team, model)
        ch = self._children.get(ck)
        if ch is None:
            ch = self._children[ck] = (
                self.requests.labels(route, alias, provider, str(status)),
                self.latency.labels(route, alias, provider, model), self.ttft.labels(route, alias, provider, model),
                self.overhead.labels(route),
                self.tokens.labels(key, team, model, "input"), self.tokens.labels(key, team, model, "output"),
                self.tokens.labels(key, team, model, "cached"), self.cost.labels(key, team, model),
            )
        req, lat, ttft, over, tin, tout, tcached, cost = ch
        req.inc()
        lat.observe(rec["latency_ms"] / 1000.0)
        if rec["ttft_ms"] is not None:
            ttft.observe(rec["ttft_ms"] / 1000.0)
        over.observe(rec["overhead_ms"] / 1000.0)
        if rec["input_tokens"]:
            tin.inc(rec["input_tokens"])
        if rec["output_tokens"]:
            tout.inc(rec["output_tokens"])
        if rec["cached_tokens"]:
            tcached.inc(rec["cached_tokens"])
        if rec["cost_usd"]:
            cost.inc(rec["cost_usd"])
        if rec["unscanned_chars"]:
            self.unscanned.inc(rec["unscanned_chars"])
        outcome = rec.get("cache")
        if outcome is not None:
            cache_alias = rec["alias"] or "-"  # aliases a [[cache]] rule matched: routed ones, from config
            self.cache.labels(cache_alias, outcome).inc()
            if rec["cache_saved_usd"]:
                self.cache_saved.labels(cache_alias).inc(rec["cache_saved_usd"])
        if status >= 400 or status == 0:
            self._error(route, alias, provider, model, reason, rec["error_code"], rec["upstream_status"])
        if rec["attempts"] > 1:
            self.retries.labels(alias).inc(rec["attempts"] - 1)
        if fallback is not None:
            self.fallbacks.labels(alias, fallback).inc()
        for d in rec["decisions"]:
            kind = d["kind"]
            if kind == "auth" or (kind in _LIMIT_KINDS and d["action"] not in ("block", "refuse")):
                continue
            dk = (kind, d["action"], d["reason"], d["direction"])
            child = self._decision_children.get(dk)
            if child is None:
                if kind in _LIMIT_KINDS:
                    child = self.limits.labels(kind, _reason(d["reason"]))
                else:
                    child = self.guardrail.labels(kind, d["action"], _reason(d["reason"]), d["direction"])
                if len(self._decision_children) < 4096:
                    self._decision_children[dk] = child
            child.inc()

    def _error(self, route: str, alias: str, provider: str, model: str, reason: str | None, code: str | None,
               upstream_status: int | None) -> None:
        # The reason code when the refusal has one; else, for an upstream's failure, "upstream_<status>"
        # (an upstream's own error code is its text, not a bounded label); else our API error code.
        if reason in reasons.ALL:
            label = reason
        elif upstream_status is not None:
            label = f"upstream_{upstream_status}"
        else:
            label = code if code is not None and _CODE.fullmatch(code) else "other"
        ek = (route, alias, provider, model, label)
        child = self._error_children.get(ek)
        if child is None:
            child = self.errors.labels(*ek)
            if len(self._error_children) < 4096:
                self._error_children[ek] = child
        child.inc()  # type: ignore[attr-defined]

    def add_collector(self, collector: Any) -> None:
        self.registry.register(collector)
        self.extra_collectors.append(collector)

    def text(self) -> bytes:
        if self.shared_dir is None:
            return generate_latest(self.registry)
        from prometheus_client.multiprocess import MultiProcessCollector

        reg = CollectorRegistry()
        MultiProcessCollector(reg, path=self.shared_dir)
        reg.register(self.host)
        for c in self.extra_collectors:  # per-process views (input drift): this worker's
            reg.register(c)
        return generate_latest(reg)

    def observe_feedback(self, rec: dict, known_alias: bool) -> None:
        """One feedback record; the alias label is "-" unless it is a configured alias (labels stay bounded)."""
        alias = rec["alias"] if known_alias and rec["alias"] else "-"
        target = f"{rec['provider']}/{rec['model']}" if known_alias and rec["model"] else "-"
        self.feedback.labels(alias, target, str(rec["score"])).inc()
        self.feedback_score.labels(alias, target).inc(rec["score_normalised"])

    def observe_shadow(self, rec: dict) -> None:
        alias, cand = rec["alias"], rec["candidate"]  # both from config
        self.shadow_pairs.labels(alias, cand, rec["outcome"]).inc()
        if rec["shadow"]["cost_usd"]:
            self.shadow_cost.labels(alias, cand).inc(rec["shadow"]["cost_usd"])
        if rec["outcome"] == "compared":
            self.shadow_similarity.labels(alias, cand).observe(rec["jaccard"])
            self.shadow_latency.labels(alias, cand, "primary").observe(rec["primary"]["latency_ms"] / 1000.0)
            self.shadow_latency.labels(alias, cand, "shadow").observe(rec["shadow"]["latency_ms"] / 1000.0)
