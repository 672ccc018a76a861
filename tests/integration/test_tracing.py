"""OpenTelemetry traces, received by a real OTLP/HTTP receiver (protobuf decoded with
opentelemetry-proto), for requests made with the official SDKs over real sockets to a fake upstream."""

from __future__ import annotations

import time
import urllib.request

import anthropic
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.fake_upstream import Reply
from tests.support.gateway import TEST_KEY
from tests.support.otlp_receiver import OtlpReceiver

MSGS = [{"role": "user", "content": "Say hello"}]
TRACE = "0af7651916cd43dd8448eb211c80319c"
PARENT = "b7ad6b7169203331"
CLAUDE = """
[providers.claude]
type = "anthropic"
base_url = "{url}/v1"
api_key_env = "TEST_UPSTREAM_KEY"

[models.claude]
targets = [{{ provider = "claude", model = "claude-sonnet-4-5" }}]
"""
PII = {"guardrails.toml": """
[[guardrails]]
id = "contact-pii"
type = "pii"
entities = ["EMAIL_ADDRESS"]
action = "redact"
direction = "input"
""", "limits.toml": """
[[rate_limits]]
scope = "key"
keys = ["test"]
rpm = 1000
"""}


def tracing(endpoint: str, **extra: object) -> str:
    keys = {"enabled": True, "endpoint": f'"{endpoint}"', "schedule_delay_ms": 20, "timeout_s": 1, **extra}
    lines = "\n".join(f"{k} = {str(v).lower() if isinstance(v, bool) else v}" for k, v in keys.items())
    return f"\n[tracing]\n{lines}\n"


@pytest.fixture
def receiver(servers):
    rec = OtlpReceiver()
    rec.url = servers.serve(rec.app())
    yield rec
    servers.stop_app(rec.url)


def client(gw, **headers: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.v1, api_key=TEST_KEY, max_retries=0, default_headers=headers)


def by_name(spans, name):
    found = [s for s in spans if s.name == name]
    assert found, f"no span {name!r} in {[s.name for s in spans]}"
    return found[0]


def metrics(gw) -> dict[tuple[str, tuple], float]:
    text = urllib.request.urlopen(gw.url + "/metrics", timeout=5).read().decode()
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_chat_spans_carry_genai_attributes_under_the_callers_parent(make_gateway, receiver, upstream):
    gw = make_gateway(extra=tracing(receiver.url + "/v1/traces"), policies=PII)
    r = client(gw, traceparent=f"00-{TRACE}-{PARENT}-01").chat.completions.create(model="gpt", messages=MSGS)
    assert r.choices[0].message.content
    spans = receiver.trace(TRACE, 4)
    server = by_name(spans, "chat gpt")
    assert server.kind == "server" and server.parent_span_id == PARENT and not server.error
    # The server span is the gateway's span: the one the upstream got as its parent.
    sent = upstream.requests[-1].headers["traceparent"]
    assert sent == f"00-{TRACE}-{server.span_id}-01"
    a = server.attributes
    assert a["gen_ai.operation.name"] == "chat" and a["gen_ai.request.model"] == "gpt"
    assert a["gen_ai.response.model"] == "gpt-4o-mini" and a["gen_ai.provider.name"] == "openai"
    assert a["gen_ai.usage.input_tokens"] == r.usage.prompt_tokens
    assert a["gen_ai.usage.output_tokens"] == r.usage.completion_tokens
    assert "gen_ai.usage.cache_read.input_tokens" in a
    assert a["gen_ai.response.finish_reasons"] == [r.choices[0].finish_reason]
    assert a["http.response.status_code"] == 200 and "error.type" not in a
    assert a["gateway.key_id"] == "test" and a["gateway.guardrail.action"] == "allow"
    attempt = by_name(spans, "chat gpt-4o-mini")
    assert attempt.kind == "client" and attempt.parent_span_id == server.span_id
    assert attempt.attributes["server.address"] == "127.0.0.1"
    assert attempt.attributes["http.response.status_code"] == 200
    for stage in ("gateway.limits", "gateway.guardrails.input"):
        child = by_name(spans, stage)
        assert child.parent_span_id == server.span_id and child.trace_id == TRACE
        assert server.start_ns <= child.start_ns <= child.end_ns <= server.end_ns
    assert by_name(spans, "gateway.limits").attributes["gateway.limits.action"] == "allow"
    assert server.resource["service.name"] == "llm-gateway"
    assert set(receiver.content_types) == {"application/x-protobuf"}


def test_streamed_chat_and_a_retry_are_separate_attempt_spans(make_gateway, receiver, upstream):
    gw = make_gateway(extra=tracing(receiver.url + "/v1/traces"))
    upstream.push(Reply(status=503, body=b'{"error": {"message": "busy", "type": "server_error"}}'))
    stream = client(gw, traceparent=f"00-{TRACE}-{PARENT}-01").chat.completions.create(
        model="gpt", messages=MSGS, stream=True, stream_options={"include_usage": True})
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    spans = receiver.trace(TRACE, 3)
    server = by_name(spans, "chat gpt")
    attempts = sorted((s for s in spans if s.kind == "client"), key=lambda s: s.start_ns)
    assert len(attempts) == 2 and all(s.parent_span_id == server.span_id for s in attempts)
    assert attempts[0].error and attempts[0].attributes["http.response.status_code"] == 503
    assert attempts[0].attributes["error.type"] and attempts[0].end_ns <= attempts[1].start_ns
    assert not attempts[1].error and attempts[1].attributes["gateway.attempt"] == 2
    assert server.attributes["gateway.attempts"] == 2 and server.attributes["gateway.stream"] is True
    usage = chunks[-1].usage
    assert server.attributes["gen_ai.usage.output_tokens"] == usage.completion_tokens
    assert server.attributes["gen_ai.response.finish_reasons"] == ["stop"]


@pytest.mark.parametrize("stream", [False, True])
def test_messages_spans_from_the_anthropic_sdk(make_gateway, receiver, upstream, stream):
    gw = make_gateway(extra=CLAUDE.format(url=upstream.url) + tracing(receiver.url + "/v1/traces"))
    c = anthropic.Anthropic(base_url=gw.url, api_key=TEST_KEY, max_retries=0,
                            default_headers={"traceparent": f"00-{TRACE}-{PARENT}-01"})
    if stream:
        with c.messages.stream(model="claude", max_tokens=64, messages=MSGS) as s:
            msg = s.get_final_message()
    else:
        msg = c.messages.create(model="claude", max_tokens=64, messages=MSGS)
    spans = receiver.trace(TRACE, 2)
    server = by_name(spans, "chat claude")
    a = server.attributes
    assert server.parent_span_id == PARENT and a["gateway.route"] == "messages"
    assert a["gen_ai.provider.name"] == "anthropic" and a["gen_ai.response.model"] == "claude-sonnet-4-5"
    # The semantic conventions count every input token, cached ones included (Anthropic reports them apart).
    u = msg.usage
    assert a["gen_ai.usage.input_tokens"] == u.input_tokens + (u.cache_read_input_tokens or 0) + \
        (u.cache_creation_input_tokens or 0)
    assert a["gen_ai.usage.cache_read.input_tokens"] == (u.cache_read_input_tokens or 0)
    assert a["gen_ai.usage.output_tokens"] == msg.usage.output_tokens
    assert a["gen_ai.response.finish_reasons"] == ["stop"]
    assert by_name(spans, "chat claude-sonnet-4-5").parent_span_id == server.span_id


def test_a_refusal_is_traced_with_its_error_type(make_gateway, receiver, upstream):
    gw = make_gateway(extra=tracing(receiver.url + "/v1/traces"))
    with pytest.raises(openai.NotFoundError):
        client(gw, traceparent=f"00-{TRACE}-{PARENT}-01").chat.completions.create(model="nope", messages=MSGS)
    server = receiver.trace(TRACE, 1)[0]
    assert server.attributes["error.type"] and server.attributes["http.response.status_code"] == 404


def test_sampling_follows_the_callers_flag_and_the_ratio(make_gateway, receiver, upstream):
    gw = make_gateway(extra=tracing(receiver.url + "/v1/traces", sample_ratio=0.0))
    c = client(gw, traceparent=f"00-{TRACE}-{PARENT}-00")  # the caller did not sample: neither do we
    c.chat.completions.create(model="gpt", messages=MSGS)
    other = "1" * 32
    client(gw, traceparent=f"00-{other}-{PARENT}-01").chat.completions.create(model="gpt", messages=MSGS)
    for _ in range(3):  # no traceparent, ratio 0: never sampled
        client(gw).chat.completions.create(model="gpt", messages=MSGS)
    receiver.trace(other, 2)
    time.sleep(0.3)
    assert {s.trace_id for s in receiver.spans} == {other}
    # The upstream is told the decision: sampled only for the one traced request.
    flags = [seen.headers["traceparent"][-2:] for seen in upstream.requests[-5:]]
    assert flags == ["00", "01", "00", "00", "00"]


def test_no_payload_is_exported_by_default(make_gateway, receiver, upstream):
    gw = make_gateway(extra=tracing(receiver.url + "/v1/traces"), policies=PII)
    prompt = "Please mail jane.doe@example.com the secret plan zebra-42"
    client(gw, traceparent=f"00-{TRACE}-{PARENT}-01").chat.completions.create(
        model="gpt", messages=[{"role": "user", "content": prompt}])
    spans = receiver.trace(TRACE, 4)
    assert not any(k.startswith("gateway.payload") for s in spans for k in s.attributes)
    raw = b"".join(receiver.raw)
    assert b"zebra-42" not in raw and b"jane.doe" not in raw and b"Hello" not in raw


def test_opted_in_payloads_are_the_redacted_text(make_gateway, receiver, upstream):
    gw = make_gateway(extra=tracing(receiver.url + "/v1/traces", export_payloads=True), policies=PII)
    prompt = "Please mail jane.doe@example.com the secret plan zebra-42"
    r = client(gw, traceparent=f"00-{TRACE}-{PARENT}-01").chat.completions.create(
        model="gpt", messages=[{"role": "user", "content": prompt}])
    server = by_name(receiver.trace(TRACE, 4), "chat gpt")
    sent = server.attributes["gateway.payload.request"]
    assert "zebra-42" in sent and "<EMAIL_ADDRESS>" in sent and "jane.doe" not in sent
    assert r.choices[0].message.content in server.attributes["gateway.payload.response"]
    assert b"jane.doe" not in b"".join(receiver.raw)


def test_collector_refusing_connections_costs_nothing_and_drops_are_counted(make_gateway, upstream, caplog):
    from tests.support.processes import free_port

    port = free_port()  # a port nobody listens on (nor will: no other worker is handed it)
    gw = make_gateway(extra=tracing(f"http://127.0.0.1:{port}/v1/traces", timeout_s=0.2, batch_size=2))
    c = client(gw)
    for _ in range(6):
        assert c.chat.completions.create(model="gpt", messages=MSGS).choices[0].message.content
    deadline = time.time() + 10
    while time.time() < deadline:
        m = metrics(gw)
        if m.get(("gateway_trace_spans_dropped_total", (("reason", "export_failed"),)), 0) >= 2:
            break
        time.sleep(0.1)
    else:
        raise AssertionError(f"no export_failed drops counted: {m}")
    # One line for the outage, not one per failed batch or retry.
    events = [getattr(r, "event", None) for r in caplog.records]
    assert events.count("trace_export_failed") == 1, [r.getMessage() for r in caplog.records]
    assert not [r for r in caplog.records if r.name.startswith("opentelemetry")]


def test_hanging_collector_keeps_the_queue_bounded(make_gateway, receiver, upstream, servers):
    receiver.hang = True
    gw = make_gateway(extra=tracing(receiver.url + "/v1/traces", timeout_s=5, queue_size=4, batch_size=2))
    c = client(gw)
    t0 = time.perf_counter()
    for _ in range(20):  # two spans each: the worker is stuck on its first batch, the rest overflow
        assert c.chat.completions.create(model="gpt", messages=MSGS).choices[0].message.content
    assert time.perf_counter() - t0 < 4  # not one request waited for the collector
    time.sleep(0.2)
    m = metrics(gw)
    assert m[("gateway_trace_queue_spans", ())] <= 4
    dropped = m[("gateway_trace_spans_dropped_total", (("reason", "queue_full"),))]
    assert dropped >= 40 - 4 - 2 - 2  # 40 spans made, at most a queue and two batches in the exporter's hands
    t0 = time.perf_counter()
    servers.stop_app(gw.url)  # the shutdown gives the stuck export timeout_s (+1 s), then goes on
    assert time.perf_counter() - t0 < 5 + 1 + 2


def test_a_limit_refusal_has_its_limits_span_and_no_attempt(make_gateway, receiver, upstream):
    limits = {"limits.toml": '[[rate_limits]]\nid = "one-a-minute"\nscope = "key"\nkeys = ["test"]\nrpm = 1\n'}
    gw = make_gateway(extra=tracing(receiver.url + "/v1/traces"), policies=limits)
    c = client(gw)
    c.chat.completions.create(model="gpt", messages=MSGS)
    with pytest.raises(openai.RateLimitError):
        client(gw, traceparent=f"00-{TRACE}-{PARENT}-01").chat.completions.create(model="gpt", messages=MSGS)
    spans = receiver.trace(TRACE, 2)
    server = by_name(spans, "chat gpt")
    assert server.attributes["http.response.status_code"] == 429
    assert server.attributes["error.type"] == "rate_limit_exceeded" and not server.error  # the caller's 4xx
    limit = by_name(spans, "gateway.limits")
    assert limit.parent_span_id == server.span_id and limit.attributes["gateway.limits.action"] == "refuse"
    assert limit.attributes["gateway.limits.reason"] == "rate_limit.requests"
    assert not [s for s in spans if s.kind == "client"]  # nothing went upstream


def test_embeddings_are_traced_as_their_operation(make_gateway, receiver, upstream):
    gw = make_gateway(extra=tracing(receiver.url + "/v1/traces"))
    client(gw, traceparent=f"00-{TRACE}-{PARENT}-01").embeddings.create(model="gpt", input="hello")
    spans = receiver.trace(TRACE, 2)
    server = by_name(spans, "embeddings gpt")
    assert server.attributes["gen_ai.operation.name"] == "embeddings"
    assert server.attributes["gen_ai.usage.input_tokens"] == 5
    assert by_name(spans, "embeddings gpt-4o-mini").parent_span_id == server.span_id
