"""Every error path of the core answers in OpenAI's error shape with the right status."""

from __future__ import annotations

import threading

import openai
import orjson
import pytest
import urllib.request
import urllib.error

from tests.support.fake_upstream import Reply
from tests.support.gateway import TEST_KEY, UPSTREAM_SECRET

MSGS = [{"role": "user", "content": "hi"}]


def post(gw, path: str, body: bytes, headers: dict | None = None) -> tuple[int, dict, dict]:
    h = {"Authorization": f"Bearer {TEST_KEY}", "Content-Type": "application/json", **(headers or {})}
    req = urllib.request.Request(gw.url + path, data=body, headers=h, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, dict(r.headers), orjson.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), orjson.loads(e.read())


def assert_openai_error(body: dict, code: str | None = None) -> dict:
    err = body["error"]
    assert set(err) >= {"message", "type", "param", "code"} and err["message"]
    if code:
        assert err["code"] == code
    return err


def test_malformed_json_is_400(gateway):
    status, headers, body = post(gateway, "/v1/chat/completions", b'{"model": "gpt", "messages": [')
    assert status == 400 and headers["x-request-id"]
    assert_openai_error(body, "invalid_json")


@pytest.mark.parametrize("payload,param", [
    ({"messages": MSGS}, "model"),
    ({"model": "gpt"}, "messages"),
    ({"model": "gpt", "messages": []}, "messages"),
    ({"model": "gpt", "messages": MSGS, "n": 100000}, "n"),
    ({"model": "gpt", "messages": MSGS, "max_tokens": -1}, "max_tokens"),
    ({"model": "gpt", "messages": MSGS, "stream": "yes"}, "stream"),
])
def test_missing_or_bad_fields_are_400_naming_the_param(gateway, payload, param):
    status, _, body = post(gateway, "/v1/chat/completions", orjson.dumps(payload))
    assert status == 400
    assert assert_openai_error(body)["param"] == param


def test_missing_and_unknown_keys_are_401(gateway):
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=gateway.v1, api_key="sk-nope", max_retries=0).chat.completions.create(model="gpt", messages=MSGS)
    status, _, body = post(gateway, "/v1/chat/completions", orjson.dumps({"model": "gpt", "messages": MSGS}),
                           {"Authorization": ""})
    assert status == 401
    assert_openai_error(body)


def test_unknown_model_is_404(gateway):
    with pytest.raises(openai.NotFoundError) as exc:
        openai.OpenAI(base_url=gateway.v1, api_key=TEST_KEY, max_retries=0).chat.completions.create(
            model="no-such-model", messages=MSGS)
    assert exc.value.body["param"] == "model"


def test_body_too_large_is_413(gateway):
    big = orjson.dumps({"model": "gpt", "messages": [{"role": "user", "content": "x" * 70000}]})
    status, _, body = post(gateway, "/v1/chat/completions", big)
    assert status == 413
    assert_openai_error(body, "request_too_large")


def test_wrong_content_type_is_415(gateway):
    status, _, body = post(gateway, "/v1/chat/completions", b"model=gpt", {"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 415
    assert_openai_error(body)


def test_upstream_error_is_502_with_upstream_status_and_no_secret(gateway, upstream):
    for _ in range(3):
        upstream.push(Reply(status=500, body=b'{"error": {"message": "boom", "type": "server_error"}}'))
    status, _, body = post(gateway, "/v1/chat/completions", orjson.dumps({"model": "gpt", "messages": MSGS}))
    assert status == 502
    err = assert_openai_error(body)
    assert err["upstream_status"] == 500
    assert UPSTREAM_SECRET not in orjson.dumps(body).decode()


def test_upstream_auth_failure_does_not_leak_the_provider_key(gateway, upstream):
    upstream.push(Reply(status=401, body=b'{"error": {"message": "Incorrect API key provided: sk-upstream-SECRET-never-shown-4242"}}'))
    status, _, body = post(gateway, "/v1/chat/completions", orjson.dumps({"model": "gpt", "messages": MSGS}))
    assert status == 502 and "SECRET" not in orjson.dumps(body).decode()
    assert assert_openai_error(body)["upstream_status"] == 401


def test_upstream_client_error_passes_through_as_400(gateway, upstream):
    upstream.push(Reply(status=400, body=b'{"error": {"message": "context too long", "type": "invalid_request_error"}}'))
    status, _, body = post(gateway, "/v1/chat/completions", orjson.dumps({"model": "gpt", "messages": MSGS}))
    assert status == 400 and "context too long" in body["error"]["message"]
    assert len(upstream.requests) == 1, "a 400 is the caller's problem: not retried"


def test_upstream_that_never_answers_is_504(make_gateway, upstream):
    gw = make_gateway(server="first_byte_timeout_s = 0.3")
    upstream.push(Reply(hang=True), Reply(hang=True), Reply(hang=True))
    status, _, body = post(gw, "/v1/chat/completions", orjson.dumps({"model": "gpt", "messages": MSGS}))
    assert status == 504
    assert_openai_error(body, "upstream_timeout")


def test_unreachable_upstream_is_502(make_gateway, upstream):
    gw = make_gateway(main=f"""
[providers.up]
type = "openai"
base_url = "http://127.0.0.1:9/v1"
[providers.mock]
type = "mock"
[models.gpt]
targets = [{{ provider = "up", model = "m" }}]
[models.demo]
targets = [{{ provider = "mock", model = "m" }}]
""")
    status, _, body = post(gw, "/v1/chat/completions", orjson.dumps({"model": "gpt", "messages": MSGS}))
    assert status == 502
    assert_openai_error(body, "upstream_unreachable")


def test_past_max_in_flight_the_gateway_sheds_load_with_503(make_gateway, upstream):
    gw = make_gateway(server="max_in_flight = 1\nfirst_byte_timeout_s = 3")
    upstream.push(Reply(header_delay=1.0, body=b'{"choices": [], "usage": {}}'))
    first: list = []
    t = threading.Thread(target=lambda: first.append(post(gw, "/v1/chat/completions",
                                                          orjson.dumps({"model": "gpt", "messages": MSGS}))))
    t.start()
    import time

    for _ in range(100):
        if gw.state.in_flight:
            break
        time.sleep(0.01)
    status, headers, body = post(gw, "/v1/chat/completions", orjson.dumps({"model": "gpt", "messages": MSGS}))
    t.join()
    assert status == 503 and headers.get("retry-after") == "1"
    assert_openai_error(body, "overloaded")
    assert first[0][0] == 200


def test_a_translator_bug_is_a_logged_500_with_the_request_id_not_a_400(gateway, monkeypatch, caplog):
    """Errors by ownership: a TypeError in gateway code is the gateway's fault, never the caller's."""
    from gateway.adapters.registry import ADAPTERS

    def buggy(self, ctx, target):
        raise TypeError("'int' object is not iterable (injected translator bug)")

    monkeypatch.setattr(type(ADAPTERS[("messages", "openai")]), "upstream_body", buggy)
    body = orjson.dumps({"model": "demo", "max_tokens": 16, "messages": MSGS})
    with caplog.at_level("ERROR", logger="gateway.flow"):
        status, headers, answer = post(gateway, "/v1/messages", body, {"x-request-id": "req-translator-bug-1"})
    rid = headers["x-request-id"]
    assert status == 500 and answer["type"] == "error" and answer["error"]["type"] == "api_error"
    assert rid in answer["error"]["message"]
    logged = [r for r in caplog.records if rid in r.getMessage()]
    assert logged and logged[0].exc_info and "injected translator bug" in str(logged[0].exc_info[1])


def test_nesting_too_deep_to_translate_is_the_callers_400(gateway):
    # 150 levels of properties (300 of JSON): decodable (orjson reads 1024), too deep to encode again (254).
    schema = b'{"type":"object","properties":{"x":' * 150 + b'{"type":"object"}' + b"}}" * 150
    body = (b'{"model":"demo","max_tokens":16,"messages":[{"role":"user","content":"hi"}],'
            b'"tools":[{"name":"t","input_schema":' + schema + b"}]}")
    status, _, answer = post(gateway, "/v1/messages", body)
    assert status == 400 and answer["type"] == "error" and "deeper than 250" in answer["error"]["message"]
