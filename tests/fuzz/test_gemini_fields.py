"""The translated-field and message-part properties (tests/fuzz/test_translated_fields.py,
tests/fuzz/test_message_parts.py) on a Gemini-backed alias: a wrongly typed field the translators read is
a 400 naming it before the upstream sees anything, and no value in a read field or a part is ever a
5xx or the router's translation catch-all. The upstream is the fake Gemini server, which validates
every body that does reach it with google-genai's types. Also the fields only the Gemini translator
reads (`seed`, `response_format`, `reasoning_effort`, penalties, `top_k`, `thinking`)."""

from __future__ import annotations

import copy

import orjson
from hypothesis import assume, given
from hypothesis import strategies as st

import pytest

from tests.faults.wire import error_shape
from tests.fuzz.test_bad_input import check, json_values, send
from tests.fuzz.test_message_parts import CASES as PART_CASES
from tests.fuzz.test_message_parts import PATHS, _ROOT, broken_bodies
from tests.fuzz.test_translated_fields import CATCH_ALL, FIELDS, FUZZ, _body, _set, param_of, wrong_fields
from tests.support.fake_gemini import FakeGemini
from tests.support.gateway import UPSTREAM_SECRET

_ONLY_GEMINI = [
    ("chat", {"messages": [{"role": "user", "content": "hi"}], "seed": 1, "presence_penalty": 0.1,
              "frequency_penalty": 0.1, "reasoning_effort": "low", "logprobs": False,
              "response_format": {"type": "json_schema", "json_schema": {"name": "s", "schema": {"type": "object"}}}},
     [("seed",), ("presence_penalty",), ("frequency_penalty",), ("reasoning_effort",), ("logprobs",),
      ("response_format",), ("response_format", "type"), ("response_format", "json_schema"),
      ("response_format", "json_schema", "schema")]),
    ("messages", {"max_tokens": 16, "messages": [{"role": "user", "content": "hi"}], "top_k": 3,
                  "thinking": {"type": "enabled", "budget_tokens": 1024}},
     [("top_k",), ("thinking",), ("thinking", "type"), ("thinking", "budget_tokens")]),
]


@pytest.fixture
def gem(servers):
    fake = FakeGemini(api_key=UPSTREAM_SECRET)
    fake.url = servers.serve(fake.app())
    yield fake
    assert fake.invalid == [], fake.invalid[:3]
    servers.stop_app(fake.url)


@pytest.fixture
def gw(make_gateway, gem):
    return make_gateway(extra=f"""
[providers.google]
type = "gemini"
base_url = "{gem.url}/v1beta"
api_key_env = "TEST_UPSTREAM_KEY"

[models.gem]
targets = [{{ provider = "google", model = "gemini-2.5-flash" }}]
""")


@FUZZ
@given(case=wrong_fields(), stream=st.booleans())
def test_a_wrongly_typed_field_is_a_400_naming_it(gw, gem, case, stream):
    api, body, param = case
    if api not in ("chat", "messages"):
        return
    body = {"model": "gem", **body}
    assume(orjson.loads(orjson.dumps(body)) == body)  # JSON has no infinity: orjson writes null
    if stream and param != "stream":
        body["stream"] = True
    seen = len(gem.requests)
    status, _, raw = send(gw, "POST", PATHS[api], orjson.dumps(body))
    assert status == 400, (status, param, body, raw[:300])
    err = error_shape(PATHS[api], raw)
    if api == "messages":
        assert err["message"].startswith(param + ": "), (param, err)
    else:
        assert err["param"] == param, (param, err)
    assert len(gem.requests) == seen, "the upstream saw nothing"


@FUZZ
@given(field=st.sampled_from([f for f in FIELDS if f[0] in ("chat", "messages")]
                             + [(api, valid, path, None) for api, valid, paths in _ONLY_GEMINI for path in paths]),
       stream=st.booleans(), value=json_values)
def test_any_value_in_a_read_field_is_never_a_5xx(gw, field, stream, value):
    api, valid, path, _ = field
    body = _set(_body(api, valid, "gem", stream), path, value)
    status, headers, raw = send(gw, "POST", PATHS[api], orjson.dumps(body))
    check(PATHS[api], status, headers, raw)
    assert CATCH_ALL not in raw, (api, path, value, raw[:300])


@FUZZ
@given(case=broken_bodies())
def test_a_broken_part_is_a_400_naming_its_path(gw, gem, case):
    api, body, param = case
    if api not in ("chat", "messages"):
        return
    # JSON has no infinity: orjson writes it as null, which is a valid (absent) optional field.
    assume(orjson.loads(orjson.dumps(body)) == body)
    seen = len(gem.requests)
    status, _, raw = send(gw, "POST", PATHS[api], orjson.dumps({"model": "gem", **body}))
    assert status == 400, (status, param, raw[:300])
    err = error_shape(PATHS[api], raw)
    assert (err["message"].startswith(param + ": ") if api == "messages" else err["param"] == param), (param, err, body)
    assert len(gem.requests) == seen


@FUZZ
@given(case=st.sampled_from([c for c in PART_CASES if c[0] in ("chat", "messages")]), stream=st.booleans(),
       value=json_values, data=st.data())
def test_any_value_in_a_part_is_never_a_5xx(gw, case, stream, value, data):
    api, valid, fields = case
    path = data.draw(st.sampled_from(fields))[0]
    body = copy.deepcopy(valid)
    node = body[_ROOT[api]]
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    body.update(model="gem", stream=stream)
    status, headers, raw = send(gw, "POST", PATHS[api], orjson.dumps(body))
    check(PATHS[api], status, headers, raw)
    if status == 400 and api == "chat":
        err = error_shape(PATHS[api], raw)
        if err["code"] == "invalid_request" and "upstream_status" not in err:
            assert err["param"], raw


def test_every_valid_template_is_served_or_refused_naming_what_gemini_cannot_take(gw):
    """The other suites' valid templates, on Gemini: served, or (an image or document by URL, which
    Gemini cannot fetch) a 400 that names the part."""
    for api, valid, _ in [c for c in PART_CASES if c[0] in ("chat", "messages")]:
        status, headers, raw = send(gw, "POST", PATHS[api], orjson.dumps({"model": "gem", **valid}))
        check(PATHS[api], status, headers, raw)
        if status != 200:
            err = error_shape(PATHS[api], raw)
            assert "base64" in err["message"] and "https://" in orjson.dumps(valid).decode(), (api, err)
    _ = param_of


@pytest.mark.parametrize("data", ["not base64!", "aGVsbG8=\u00f3", "a"])
def test_an_image_whose_data_is_not_base64_is_a_400_before_the_upstream(gw, gem, data):
    """Found by the part fuzz above: the data went to Gemini as it was, and Gemini refused it (its 400
    reached the caller as the upstream's). Now it is the caller's 400, naming the part."""
    body = {"model": "gem", "messages": [{"role": "user", "content": [
        {"type": "text", "text": "what is this?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64," + data}}]}]}
    seen = len(gem.requests)
    status, _, raw = send(gw, "POST", PATHS["chat"], orjson.dumps(body))
    assert status == 400, raw[:300]
    assert error_shape(PATHS["chat"], raw)["param"] == "messages[0].content[1]", raw[:300]
    assert len(gem.requests) == seen
