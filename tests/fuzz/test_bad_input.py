"""Bad input sent to a running gateway: hypothesis over bodies, headers and paths, plus the edge cases
by name (oversized bodies and headers, invalid UTF-8, deep nesting, huge numbers, unknown fields).

The properties: never a 5xx, never a dead server, and every refusal in the caller's error shape
(Anthropic's on /v1/messages, OpenAI's everywhere else). The one exception is what aiohttp's HTTP
parser refuses before any gateway code runs (headers over 8190 bytes, more than 128 headers): a 400 in
plain text, documented in docs/reliability.md.
"""

from __future__ import annotations

import http.client
from urllib.parse import urlsplit

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.faults.wire import error_shape, openai_stream, sse_events
from tests.support.gateway import TEST_KEY

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
MSGS = [{"role": "user", "content": "hi"}]
VALID = {
    "/v1/chat/completions": {"model": "demo", "messages": MSGS},
    "/v1/messages": {"model": "demo", "max_tokens": 16, "messages": MSGS},
    "/v1/embeddings": {"model": "gpt", "input": "hi"},
    "/v1/responses": {"model": "gpt", "input": "hi"},
}
FIELDS = ["model", "messages", "stream", "n", "max_tokens", "max_completion_tokens", "max_output_tokens",
          "stream_options", "input", "temperature", "tools", "user", "role", "content", "metadata"]


def send(gw, method: str, path: str, body: bytes = b"", headers: dict | None = None) -> tuple[int, dict, bytes]:
    u = urlsplit(gw.url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=15)
    h = {"Authorization": f"Bearer {TEST_KEY}", "Content-Type": "application/json", "Content-Length": str(len(body))}
    h.update(headers or {})
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        for k, v in h.items():
            conn.putheader(k, v)
        conn.endheaders(body)
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


def check(path: str, status: int, headers: dict, body: bytes) -> None:
    assert status < 500, (status, body[:300])
    if status >= 400:
        error_shape(path, body)
        return
    if headers.get("content-type", "").startswith("text/event-stream"):
        if path.startswith("/v1/chat"):
            openai_stream(body)
        else:
            assert sse_events(body)
    else:
        assert isinstance(orjson.loads(body), dict)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)


@FUZZ
@given(path=st.sampled_from(sorted(VALID)),
       changes=st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=12), json_values, max_size=4),
       drop=st.lists(st.sampled_from(FIELDS), max_size=2))
def test_mutated_bodies_get_a_success_or_an_error_in_shape(gateway, path, changes, drop):
    body = {**VALID[path], **changes}
    for name in drop:
        body.pop(name, None)
    if body.get("stream"):
        body["stream"] = path != "/v1/embeddings"  # streamed answers are checked as SSE
    check(path, *send(gateway, "POST", path, orjson.dumps(body)))


@FUZZ
@given(path=st.sampled_from(sorted(VALID)), raw=st.binary(max_size=300))
def test_arbitrary_bytes_are_a_400_in_shape(gateway, path, raw):
    status, headers, body = send(gateway, "POST", path, raw)
    check(path, status, headers, body)


_header_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"), max_size=60)


@FUZZ
@given(path=st.sampled_from(sorted(VALID)),
       extra=st.dictionaries(st.sampled_from(["Authorization", "Content-Type", "x-request-id", "traceparent",
                                              "x-gateway-tags", "x-api-key", "Accept-Encoding", "Content-Encoding",
                                              "X-Forwarded-For", "x-custom"]),
                             _header_text, max_size=4))
def test_fuzzed_headers_get_a_success_or_an_error_in_shape(gateway, path, extra):
    headers = {k: v.strip() for k, v in extra.items()}
    status, h, body = send(gateway, "POST", path, orjson.dumps(VALID[path]),
                           {k: v.encode("latin-1").decode("latin-1") for k, v in headers.items()})
    check(path, status, h, body)


@FUZZ
@given(method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH"]),
       path=st.sampled_from(["/v1/chat/completions", "/v1/messages", "/v1/models", "/v1/", "/v2/x", "/health/x"])
       | st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters="#?%"), max_size=40)
       .map(lambda s: "/" + s))
def test_any_method_and_path_is_answered_in_shape(gateway, method, path):
    status, headers, body = send(gateway, method, path, b"{}")
    assert status < 500, (method, path, status, body[:200])
    if status >= 400 and (path.startswith("/v1/") or status in (404, 405)):
        error_shape(path, body)


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/messages"])
def test_body_over_max_body_bytes_is_a_413_in_shape(gateway, path):
    status, _, body = send(gateway, "POST", path, b'{"model": "' + b"x" * 70000 + b'"}')
    assert status == 413 and error_shape(path, body)


def test_oversized_and_too_many_headers_are_refused_by_aiohttp_with_a_plain_400(gateway):
    status, headers, body = send(gateway, "POST", "/v1/chat/completions", orjson.dumps(VALID["/v1/chat/completions"]),
                                 {"x-big": "a" * 9000})
    assert status == 400 and headers["content-type"].startswith("text/plain")
    status, headers, _ = send(gateway, "POST", "/v1/chat/completions", orjson.dumps(VALID["/v1/chat/completions"]),
                              {f"x-h{i}": "a" for i in range(200)})
    assert status == 400 and headers["content-type"].startswith("text/plain")
    assert send(gateway, "GET", "/health")[0] == 200, "the server lives on"


@pytest.mark.parametrize("raw,code", [
    (b'{"model": "demo", "messages": [{"role": "user", "content": "\xff\xfe"}]}', "invalid_json"),
    (b"[" * 5000 + b"]" * 5000, "invalid_json"),
    (b'{"a":' * 2000 + b"1" + b"}" * 2000, "invalid_json"),
    (b'{"model": "demo", "messages": [{"role": "user", "content": "x"}], "max_tokens": 1' + b"0" * 40 + b"}", None),
    (b'{"model": "demo", "messages": [{"role": "user", "content": "x"}], "n": 1000000}', "invalid_request"),
    (b'{"model": "demo", "messages": [{"role": "user", "content": "x"}], "max_tokens": 1e308}', "invalid_request"),
    (b'{"model": "demo", "messages": [{"role": "user", "content": "x"}], "max_tokens": 1000001}', "invalid_request"),
])
def test_edge_case_bodies_are_400s(gateway, raw, code):
    status, _, body = send(gateway, "POST", "/v1/chat/completions", raw)
    assert status == 400
    err = error_shape("/v1/chat/completions", body)
    assert code is None or err["code"] == code


def test_a_non_utf8_api_key_is_a_401_not_a_500(gateway):
    status, _, body = send(gateway, "POST", "/v1/chat/completions", orjson.dumps(VALID["/v1/chat/completions"]),
                           {"Authorization": "Bearer sk-\xe9\xff"})
    assert status == 401 and error_shape("/v1/chat/completions", body)["code"] == "invalid_api_key"


def test_unknown_body_fields_pass_through_to_a_same_wire_upstream_unchanged(gateway, upstream):
    extra = {"x_vendor_flag": {"nested": [1, "two", None]}, "seed": 7, "logit_bias": {"50256": -100}}
    status, _, body = send(gateway, "POST", "/v1/chat/completions", orjson.dumps({"model": "gpt", "messages": MSGS, **extra}))
    assert status == 200
    seen = upstream.requests[-1].body
    assert {k: seen[k] for k in extra} == extra and seen["model"] == "gpt-4o-mini"


def test_records_are_never_dropped_by_bad_input(gateway):
    for tags in ["a\x1bb,ok", "\xe9\xff", "x" * 500, ",,,"]:
        send(gateway, "POST", "/v1/chat/completions", orjson.dumps(VALID["/v1/chat/completions"]),
             {"x-gateway-tags": tags, "x-request-id": "id\x1b[31m"})
    _, _, metrics = send(gateway, "GET", "/metrics")
    dropped = [line for line in metrics.decode().splitlines() if line.startswith("gateway_audit_dropped_total")]
    assert dropped == ["gateway_audit_dropped_total 0.0"]


@pytest.mark.parametrize("field", [{"metadata": True}, {"system": 5}, {"stop_sequences": 3}, {"tools": [1]}])
def test_wrongly_typed_optional_fields_on_a_translated_pair_are_a_400(gateway, field):
    """/v1/messages to an OpenAI-wire model goes through the translator (found by the property above)."""
    status, _, body = send(gateway, "POST", "/v1/messages", orjson.dumps({**VALID["/v1/messages"], **field}))
    assert status == 400, body
    error_shape("/v1/messages", body)
