"""Prometheus metrics, one CollectorRegistry per Recorder (no global registry).

Labels are bounded: route, resolved alias/provider/model and key/team come from config, status is an
HTTP code, reasons come from gateway.reasons (anything else is "other"). Never request ids or free text:
an alias that did not resolve is recorded as "-". GPU gauges come from pynvml where a driver answers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from gateway import reasons

log = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_LAT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
_OVERHEAD_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1)
_LIMIT_KINDS = frozenset(("rate_limit", "budget", "store", "capacity"))
BREAKER_STATES = ("closed", "half_open", "open")


def _reason(code: str | None) -> str:
    return code if code in reasons.ALL else "other"


class _Callbacks:
    """A collector whose values are read at scrape time from callables set by other modules."""

    def __init__(self) -> None:
        self.breakers: Callable[[], dict[str, str]] | None = None
        self.fail_open: Callable[[], dict[str, int]] | None = None
        self.canary: Callable[[], dict[str, dict[str, object]]] | None = None
        self.gpu = None  # _Gpu or None
        self.trace_dropped: Callable[[], Mapping[str, int]] | None = None

    def collect(self):
        if self.fail_open is not None:
            c = CounterMetricFamily("gateway_store_fail_open",
                                    "Requests served unchecked while the store was down (on_store_error = open), "
                                    "by the check that could not run", labels=["check"])
            try:
                counts = self.fail_open()
            except Exception:
                log.exception("fail-open count callable failed")
                counts = {}
            for check, n in counts.items():
                c.add_metric([check], float(n))
            yield c
        if self.breakers is not None:
            g = GaugeMetricFamily("gateway_circuit_breaker_state",
                                  "Circuit breaker state per target (1 for the current state)",
                                  labels=["target", "state"])
            try:
                states = self.breakers()
            except Exception:
                log.exception("circuit breaker state callable failed")
                states = {}
            for target, state in states.items():
                for s in BREAKER_STATES:
                    g.add_metric([str(target), s], 1.0 if state == s else 0.0)
            yield g
        if self.canary is not None:
            g = GaugeMetricFamily("gateway_canary_rolled_back",
                                  "1 when the alias's canary target was rolled back (by any instance sharing the store)",
                                  labels=["alias", "target"])
            try:
                canaries = self.canary()
            except Exception:
                log.exception("canary state callable failed")
                canaries = {}
            for alias, snap in canaries.items():
                g.add_metric([alias, str(snap.get("target"))], float(snap.get("rolled_back") or 0))
            yield g
        if self.gpu is not None:
            yield from self.gpu.collect()
        if self.trace_dropped is not None:
            c = CounterMetricFamily("gateway_trace_spans_dropped",
                                    "Trace spans never exported, by reason: queue_full (the export queue was full), "
                                    "export_failed (the collector refused or did not answer), build_failed",
                                    labels=["reason"])
            counts = self.trace_dropped()
            for reason in ("queue_full", "export_failed", "build_failed"):
                c.add_metric([reason], float(counts.get(reason, 0)))
            yield c


class _Gpu:
    def __init__(self, nvml) -> None:
        self._nvml = nvml
        self._handles = [nvml.nvmlDeviceGetHandleByIndex(i) for i in range(nvml.nvmlDeviceGetCount())]

    @classmethod
    def probe(cls):
        """A GPU collector, or None where there is no NVIDIA driver (no error, no metrics)."""
        try:
            import pynvml
            pynvml.nvmlInit()
            return cls(pynvml)
        except Exception:  # no library, no driver, no device: simply no GPU metrics
            return None

    def snapshot(self) -> list[dict]:
        """The GPUs for /stats (and the dashboard's GPU cards)."""
        nv = self._nvml
        out = []
        for i, h in enumerate(self._handles):
            try:
                name = nv.nvmlDeviceGetName(h)
                u = nv.nvmlDeviceGetUtilizationRates(h)
                m = nv.nvmlDeviceGetMemoryInfo(h)
                t = nv.nvmlDeviceGetTemperature(h, nv.NVML_TEMPERATURE_GPU)
            except Exception:
                log.warning("reading GPU %d through NVML failed", i, exc_info=True)
                continue
            out.append({"index": i, "name": name.decode() if isinstance(name, bytes) else str(name),
                        "utilization": u.gpu / 100.0, "memory_used_bytes": int(m.used),
                        "memory_total_bytes": int(m.total), "temperature_c": float(t)})
        return out

    def collect(self):
        nv = self._nvml
        util = GaugeMetricFamily("gateway_gpu_utilization_ratio", "GPU utilisation (0-1)", labels=["gpu"])
        used = GaugeMetricFamily("gateway_gpu_memory_used_bytes", "GPU memory used", labels=["gpu"])
        total = GaugeMetricFamily("gateway_gpu_memory_total_bytes", "GPU memory total", labels=["gpu"])
        temp = GaugeMetricFamily("gateway_gpu_temperature_celsius", "GPU temperature", labels=["gpu"])
        for i, h in enumerate(self._handles):
            try:
                u = nv.nvmlDeviceGetUtilizationRates(h)
                m = nv.nvmlDeviceGetMemoryInfo(h)
                t = nv.nvmlDeviceGetTemperature(h, nv.NVML_TEMPERATURE_GPU)
            except Exception:
                log.warning("reading GPU %d through NVML failed", i, exc_info=True)
                continue
            util.add_metric([str(i)], u.gpu / 100.0)
            used.add_metric([str(i)], float(m.used))
            total.add_metric([str(i)], float(m.total))
            temp.add_metric([str(i)], float(t))
        yield from (util, used, total, temp)


class Metrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter("gateway_requests", "Requests", ["route", "alias", "provider", "status"], registry=r)
        self.latency = Histogram("gateway_request_duration_seconds", "Total request latency", ["route"],
                                 buckets=_LAT_BUCKETS, registry=r)
        self.ttft = Histogram("gateway_time_to_first_token_seconds", "Time to first token", ["route"],
                              buckets=_LAT_BUCKETS, registry=r)
        self.overhead = Histogram("gateway_overhead_seconds", "Gateway overhead (total minus upstream wait)",
                                  ["route"], buckets=_OVERHEAD_BUCKETS, registry=r)
        self.tokens = Counter("gateway_tokens", "Tokens", ["key", "team", "model", "type"], registry=r)
        self.cost = Counter("gateway_cost_usd", "Cost in USD", ["key", "team", "model"], registry=r)
        self.guardrail = Counter("gateway_guardrail_decisions", "Guardrail decisions",
                                 ["kind", "action", "reason", "direction"], registry=r)
        self.limits = Counter("gateway_limit_rejections", "Requests refused by rate limits and budgets",
                              ["kind", "reason"], registry=r)
        self.in_flight = Gauge("gateway_requests_in_flight", "Requests in flight", registry=r)
        self.queue_depth = Gauge("gateway_audit_queue_depth", "Audit records waiting in memory for the spool "
                                 "(its write failed; retried every flush)", registry=r)
        self.recorded = Counter("gateway_audit_records", "Audit records submitted", registry=r)
        self.dropped = Counter("gateway_audit_dropped", "Records lost (a record could not be built, or queue_size "
                               "records already waited for a failing spool)", registry=r)
        self.backlog = Gauge("gateway_audit_spool_backlog_bytes", "Spooled bytes not yet shipped", ["sink"], registry=r)
        self.sink_errors = Counter("gateway_audit_sink_errors", "Failed shipments", ["sink"], registry=r)
        self.unscanned = Counter("gateway_guardrail_unscanned_chars", "Characters of text that reached an upstream "
                                 "or a caller without any guardrail scanning them (images, audio, token ids, "
                                 "on_error = open failures)", registry=r)
        self.cache = Counter("gateway_cache_requests", "Requests under a [[cache]] rule by outcome (hit, miss, "
                             "bypass), per alias", ["alias", "outcome"], registry=r)
        self.cache_saved = Counter("gateway_cache_saved_usd", "USD not spent: what cache hits' answers cost when "
                                   "they were fetched, per alias", ["alias"], registry=r)
        self.trace_queue = Gauge("gateway_trace_queue_spans", "Trace spans waiting for export (at most "
                                 "[tracing] queue_size)", registry=r)
        self.callbacks = _Callbacks()
        r.register(self.callbacks)
        self._children: dict[tuple, tuple] = {}
        self._decision_children: dict[tuple, object] = {}  # bounded: kinds x actions x reason codes

    def enable_gpu(self):
        """Probe NVML once; returns the GPU reader or None where there is no driver."""
        self.callbacks.gpu = _Gpu.probe()
        return self.callbacks.gpu

    def observe(self, rec: dict) -> None:
        """Count one finished request. Label children are cached: `.labels()` is the costly part."""
        route, model = rec["route"], rec["model"] or "-"
        alias = rec["alias"] if rec["model"] is not None else "-"
        key, team = rec["key_id"] or "-", rec["team"] or "-"
        ck = (route, alias, rec["provider"] or "-", rec["status"], key, team, model)
        ch = self._children.get(ck)
        if ch is None:
            ch = self._children[ck] = (
                self.requests.labels(route, alias, ck[2], str(ck[3])),
                self.latency.labels(route), self.ttft.labels(route), self.overhead.labels(route),
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

    def text(self) -> bytes:
        return generate_latest(self.registry)
