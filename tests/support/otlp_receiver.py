"""A real OTLP/HTTP trace receiver for tests: decodes each `ExportTraceServiceRequest` (protobuf) a
gateway posts to `/v1/traces` with opentelemetry-proto, and keeps the spans. `hang = True` makes it
accept requests and never answer (a collector that hangs)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from aiohttp import web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest, ExportTraceServiceResponse
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span

KINDS = {Span.SPAN_KIND_SERVER: "server", Span.SPAN_KIND_CLIENT: "client", Span.SPAN_KIND_INTERNAL: "internal"}


def _value(v: AnyValue) -> object:
    which = v.WhichOneof("value")
    if which == "array_value":
        return [_value(x) for x in v.array_value.values]
    return getattr(v, which) if which else None


@dataclass
class ReceivedSpan:
    name: str
    kind: str
    trace_id: str
    span_id: str
    parent_span_id: str
    start_ns: int
    end_ns: int
    attributes: dict[str, object]
    error: bool
    resource: dict[str, object] = field(default_factory=dict)


class OtlpReceiver:
    def __init__(self) -> None:
        self.spans: list[ReceivedSpan] = []
        self.raw: list[bytes] = []  # every request body as received, to search for leaked text
        self.content_types: list[str] = []
        self.hang = False

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/traces", self._handle)
        return app

    async def _handle(self, request: web.Request) -> web.Response:
        if self.hang:
            await asyncio.sleep(3600)
        body = await request.read()
        self.raw.append(body)
        self.content_types.append(request.content_type)
        req = ExportTraceServiceRequest()
        req.ParseFromString(body)
        for rs in req.resource_spans:
            resource = {a.key: _value(a.value) for a in rs.resource.attributes}
            for ss in rs.scope_spans:
                for s in ss.spans:
                    self.spans.append(ReceivedSpan(
                        s.name, KINDS.get(s.kind, str(s.kind)), s.trace_id.hex(), s.span_id.hex(),
                        s.parent_span_id.hex(), s.start_time_unix_nano, s.end_time_unix_nano,
                        {a.key: _value(a.value) for a in s.attributes},
                        s.status.code == s.status.STATUS_CODE_ERROR, resource))
        return web.Response(body=ExportTraceServiceResponse().SerializeToString(),
                            content_type="application/x-protobuf")

    def trace(self, trace_id: str, n: int, timeout: float = 10.0) -> list[ReceivedSpan]:
        """The spans of one trace once at least `n` have arrived."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            got = [s for s in self.spans if s.trace_id == trace_id]
            if len(got) >= n:
                return got
            time.sleep(0.02)
        raise AssertionError(f"expected {n} spans of trace {trace_id}, got {[s.name for s in self.spans if s.trace_id == trace_id]}")
