"""The flow's early sampling decision (`Tracer.begin`) is the SDK sampler's decision
(ParentBased(TraceIdRatioBased)): a request is marked for tracing exactly when the SDK would record
its server span, so no marks are collected for nothing and no sampled request goes missing."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry import trace
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags

from gateway.config.schema import TracingConfig
from gateway.context import RequestContext
from gateway.tracing.exporter import Tracer


def ctx_for(trace_id: int, parent: int | None) -> RequestContext:
    return RequestContext(request_id="r", api="chat", shape="openai", runtime=None, received_at=0.0,  # type: ignore[arg-type]
                          trace_id=f"{trace_id:032x}", span_id="1" * 16,
                          parent_span_id=f"{parent:016x}" if parent is not None else None)


@settings(max_examples=300, deadline=None)
@given(trace_id=st.integers(1, (1 << 128) - 1), ratio=st.sampled_from([0.0, 0.01, 0.25, 0.5, 0.999, 1.0]),
       parent=st.one_of(st.none(), st.integers(1, (1 << 64) - 1)), flags=st.integers(0, 255))
def test_begin_decides_as_the_sdk_sampler(trace_id, ratio, parent, flags):
    tracer = Tracer(TracingConfig(enabled=True, sample_ratio=ratio))
    ctx = ctx_for(trace_id, parent)
    header = f"00-{trace_id:032x}-{parent:016x}-{flags:02x}" if parent is not None else None
    tracer.begin(ctx, header)
    parent_ctx = None
    if parent is not None:
        parent_ctx = trace.set_span_in_context(NonRecordingSpan(SpanContext(
            trace_id, parent, is_remote=True, trace_flags=TraceFlags(flags & 1))))
    sdk = ParentBased(TraceIdRatioBased(ratio)).should_sample(parent_ctx, trace_id, "chat", SpanKind.SERVER)
    assert (ctx.trace is not None) == sdk.decision.is_sampled()


def test_payload_capture_only_when_opted_in():
    off, on = Tracer(TracingConfig(enabled=True)), Tracer(TracingConfig(enabled=True, export_payloads=True))
    a, b = ctx_for(5, None), ctx_for(5, None)
    off.begin(a, None)
    on.begin(b, None)
    assert a.trace is not None and a.trace.payload is None and a.capture() is None
    assert b.trace is not None and b.trace.payload == [] and b.capture() is b.trace.payload
