"""OpenTelemetry traces: the SDK's tracer provider, a bounded BatchSpanProcessor and the OTLP/HTTP
(protobuf) exporter, fed from finished requests.

Off the request path: the flow only decides at the start whether a request is sampled
(`begin`, ParentBased + trace-id ratio, as the provider's own sampler decides) and hands the finished
context over (`submit`); the spans are built from it (gateway.tracing.spans) in a loop callback once
the handler is done, and the processor's worker thread batches and exports them. Its queue holds at
most `queue_size` spans: a span that finds it full is dropped and counted, as is every span of a
batch the collector refused or never answered (`gateway_trace_spans_dropped_total{reason}`), so a
collector that is down or hangs costs memory bounded by the queue and never delays a request.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import logging
import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.id_generator import IdGenerator, RandomIdGenerator
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, Status, StatusCode, TraceFlags

from gateway import __version__
from gateway.context import TraceMarks
from gateway.tracing.spans import build_spans

if TYPE_CHECKING:
    from gateway.config.schema import TracingConfig
    from gateway.context import RequestContext

log = logging.getLogger("gateway.tracing")

_KINDS = {"server": SpanKind.SERVER, "client": SpanKind.CLIENT, "internal": SpanKind.INTERNAL}
_TRACE_ID_MASK = (1 << 64) - 1
_SDK_LOGGERS = ("opentelemetry.exporter.otlp.proto.http", "opentelemetry.exporter.http", "opentelemetry.sdk._shared_internal")


class _Ids(IdGenerator):
    """The gateway mints its trace and span ids before the upstream call (they travel in traceparent
    and the record): the server span takes them, every other span a random id."""

    def __init__(self) -> None:
        self._random = RandomIdGenerator()
        self.trace_id = 0  # consumed by the next generate_* call; 0: random
        self.span_id = 0

    def generate_trace_id(self) -> int:
        tid, self.trace_id = self.trace_id, 0
        return tid or self._random.generate_trace_id()

    def generate_span_id(self) -> int:
        sid, self.span_id = self.span_id, 0
        return sid or self._random.generate_span_id()


class _CountingExporter(SpanExporter):
    """The OTLP exporter, counting the spans of every batch that did not reach the collector, and
    logging once when exports start failing and once when they succeed again (the SDK's own lines,
    one per retry and per dropped span, are silenced in `Tracer.start`)."""

    def __init__(self, inner: SpanExporter, counts: collections.Counter[str], endpoint: str) -> None:
        self.inner = inner
        self.counts = counts
        self.endpoint = endpoint
        self.failing = False

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        try:
            result = self.inner.export(spans)
        except Exception:
            log.exception("trace export failed")
            result = SpanExportResult.FAILURE
        if result is not SpanExportResult.SUCCESS:
            self.counts["export_failed"] += len(spans)
            if not self.failing:
                self.failing = True
                log.warning("trace export to %s failed; spans are dropped and counted until it recovers",
                            self.endpoint, extra={"event": "trace_export_failed", "endpoint": self.endpoint})
        elif self.failing:
            self.failing = False
            log.info("trace export to %s works again", self.endpoint,
                     extra={"event": "trace_export_recovered", "endpoint": self.endpoint})
        return result

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.inner.force_flush(timeout_millis)


class _BoundedProcessor(BatchSpanProcessor):
    """BatchSpanProcessor that counts the spans it drops on a full queue. The SDK drops them (its
    deque has a maxlen) and only logs; the count is read off the same deque (opentelemetry-sdk is
    pinned in the locks, and tests/integration/test_tracing.py checks the count)."""

    def __init__(self, exporter: SpanExporter, counts: collections.Counter[str], *, max_queue_size: int,
                 max_export_batch_size: int, schedule_delay_millis: int) -> None:
        super().__init__(exporter, max_queue_size=max_queue_size, max_export_batch_size=max_export_batch_size,
                         schedule_delay_millis=schedule_delay_millis)
        self.counts = counts
        self.queue: collections.deque[ReadableSpan] = self._batch_processor._queue
        self.capacity = max_queue_size

    def on_end(self, span: ReadableSpan) -> None:
        if len(self.queue) >= self.capacity:
            self.counts["queue_full"] += 1
        super().on_end(span)


class Tracer:
    """One per process (a Service): built from `[tracing]` at start-up, closed at shutdown."""

    def __init__(self, cfg: TracingConfig) -> None:
        self.cfg = cfg
        self.ratio = cfg.sample_ratio
        self._bound = round(cfg.sample_ratio * (_TRACE_ID_MASK + 1))
        self.payloads = cfg.payload_max_bytes if cfg.export_payloads else None
        self.counts: collections.Counter[str] = collections.Counter()
        self._pending: collections.deque[RequestContext] = collections.deque()
        self._scheduled = False
        self._ids = _Ids()
        self._provider: TracerProvider | None = None
        self._processor: _BoundedProcessor | None = None
        self._tracer: trace.Tracer | None = None

    def start(self) -> None:
        cfg = self.cfg
        # The SDK logs every retry and every span dropped on a full queue; both are counted in
        # /metrics and logged once per outage here instead.
        for name in _SDK_LOGGERS:
            logging.getLogger(name).setLevel(logging.CRITICAL)
        exporter = OTLPSpanExporter(endpoint=cfg.endpoint, headers=dict(cfg.headers) or None, timeout=cfg.timeout_s)
        self._processor = _BoundedProcessor(
            _CountingExporter(exporter, self.counts, cfg.endpoint), self.counts, max_queue_size=cfg.queue_size,
            max_export_batch_size=min(cfg.batch_size, cfg.queue_size), schedule_delay_millis=cfg.schedule_delay_ms)
        # Not the global provider: the gateway's spans only, and nothing else in the process exports.
        self._provider = TracerProvider(
            sampler=ParentBased(TraceIdRatioBased(cfg.sample_ratio)), id_generator=self._ids,
            resource=Resource.create({"service.name": cfg.service_name, "service.version": __version__}))
        self._provider.add_span_processor(self._processor)
        self._tracer = self._provider.get_tracer("gateway", __version__)
        log.info("tracing on: OTLP/HTTP to %s, sample ratio %g", cfg.endpoint, cfg.sample_ratio,
                 extra={"endpoint": cfg.endpoint, "sample_ratio": cfg.sample_ratio})

    # -- on the request path: one decision, one append --
    def begin(self, ctx: RequestContext, traceparent: str | None) -> None:
        """Mark the request as traced when sampled: a caller's sampled flag decides when it sent a
        valid traceparent, else the trace id's low 64 bits against the ratio (the SDK's rule)."""
        if ctx.parent_span_id is not None and traceparent:
            sampled = bool(int(traceparent.strip()[-2:], 16) & 1)  # ids.new_ids checked it is hex
        else:
            sampled = (int(ctx.trace_id, 16) & _TRACE_ID_MASK) < self._bound
        if sampled:
            ctx.trace = TraceMarks(payload=[] if self.payloads is not None else None)

    def submit(self, ctx: RequestContext) -> None:
        """The request is over: its spans are built in a loop callback after this handler returns."""
        self._pending.append(ctx)
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._drain)

    # -- off the request path --
    def _drain(self) -> None:
        self._scheduled = False
        pending = self._pending
        while pending:
            ctx = pending.popleft()
            try:
                self._emit(ctx)
            except Exception:
                log.exception("building the spans of request %s failed", ctx.request_id)
                self.counts["build_failed"] += 1

    def _emit(self, ctx: RequestContext) -> None:
        tracer = self._tracer
        if tracer is None:
            return
        specs = build_spans(ctx, self.payloads)
        # perf_counter stamps to unix nanoseconds: the request's start is `received_at`.
        base = ctx.received_at - ctx.timings.start

        def ns(t: float) -> int:
            return int((base + t) * 1e9)

        parent = None
        if ctx.parent_span_id is not None:
            parent = trace.set_span_in_context(NonRecordingSpan(SpanContext(
                int(ctx.trace_id, 16), int(ctx.parent_span_id, 16), is_remote=True,
                trace_flags=TraceFlags(TraceFlags.SAMPLED))))
        self._ids.trace_id, self._ids.span_id = int(ctx.trace_id, 16), int(ctx.span_id, 16)
        root_spec = specs[0]
        root = tracer.start_span(root_spec.name, context=parent, kind=SpanKind.SERVER,
                                 attributes=root_spec.attributes, start_time=ns(root_spec.start))
        self._ids.trace_id = self._ids.span_id = 0
        if not root.get_span_context().trace_flags.sampled:
            return
        inside = trace.set_span_in_context(root)
        for spec in specs[1:]:
            child = tracer.start_span(spec.name, context=inside, kind=_KINDS[spec.kind],
                                      attributes=spec.attributes, start_time=ns(spec.start))
            if spec.error:
                child.set_status(Status(StatusCode.ERROR))
            child.end(end_time=ns(max(spec.end, spec.start)))
        if root_spec.error:
            root.set_status(Status(StatusCode.ERROR))
        root.end(end_time=ns(max(root_spec.end, root_spec.start)))

    # -- read side --
    def dropped(self) -> Mapping[str, int]:
        return dict(self.counts)

    def queued(self) -> int:
        return len(self._processor.queue) if self._processor is not None else 0

    async def close(self) -> None:
        """Export what is queued within the exporter's timeout; a collector that hangs does not hold
        the shutdown longer (the worker is a daemon thread)."""
        self._drain()
        provider = self._provider
        if provider is None:
            return
        self._provider = self._tracer = None
        done: concurrent.futures.Future[None] = concurrent.futures.Future()

        def shut() -> None:
            try:
                provider.shutdown()
            except Exception:
                log.exception("trace exporter shutdown failed")
            # Past the wait below, `done` was cancelled with it: nobody is waiting any more.
            with contextlib.suppress(concurrent.futures.InvalidStateError):
                done.set_result(None)

        threading.Thread(target=shut, name="trace-shutdown", daemon=True).start()
        try:
            await asyncio.wait_for(asyncio.wrap_future(done), self.cfg.timeout_s + 1.0)
        except TimeoutError:
            log.warning("trace exporter did not finish within %gs; %d spans not exported",
                        self.cfg.timeout_s + 1.0, self.queued())
