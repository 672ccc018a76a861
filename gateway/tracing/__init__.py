"""OpenTelemetry traces of requests (`[tracing]`, off by default): `spans` turns a finished request
into span descriptions, `exporter` owns the SDK and the OTLP/HTTP export."""
