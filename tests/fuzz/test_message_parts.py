"""Message parts of every shape, on every caller API, through every provider type (the built-in mock
included), streamed and not.

Two properties. A well-formed body with exactly one field made wrong (a wrong type, null, missing, or
the part itself not an object) is a 400 in the caller's error shape that names the path to that field
(`messages[1].content[1].image_url.url`), before any provider sees it. Any JSON value at all in a part
is never a 5xx.
"""

from __future__ import annotations

import copy

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.faults.wire import error_shape
from tests.fuzz.test_bad_input import check, json_values, send

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

# One model per provider type; every one of them reaches the fake upstream but the mock.
MODELS = ["demo", "gpt", "claude", "az"]
EXTRA = """
[providers.claude]
type = "anthropic"
base_url = "{url}/v1"
api_key_env = "TEST_UPSTREAM_KEY"

[providers.azure]
type = "azure"
base_url = "{url}"
api_key_env = "TEST_UPSTREAM_KEY"

[models.claude]
targets = [{{ provider = "claude", model = "claude-sonnet-4-5" }}]

[models.az]
targets = [{{ provider = "azure", model = "gpt-4o-deployment" }}]
"""

PATHS = {"chat": "/v1/chat/completions", "messages": "/v1/messages", "responses": "/v1/responses",
         "embeddings": "/v1/embeddings"}


def _chat(*msgs: dict) -> dict:
    return {"messages": [{"role": "system", "content": "be brief"}, *msgs]}


def _user_part(part: dict) -> dict:
    return _chat({"role": "user", "content": [{"type": "text", "text": "look"}, part]})


_CALL = {"role": "assistant", "content": None,
         "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}
_TOOL_USE = {"role": "assistant", "content": [{"type": "tool_use", "id": "tu_1", "name": "f", "input": {"a": 1}}]}


def _blocks(*blocks: dict) -> dict:
    return {"max_tokens": 16, "messages": [{"role": "user", "content": [{"type": "text", "text": "look"}, *blocks]}]}


# (api, a valid body without its model, [(path to a field, its JSON type, required?)])
CASES: list[tuple[str, dict, list[tuple[tuple, type, bool]]]] = [
    ("chat", _user_part({"type": "text", "text": "hi"}),
     [((1, "content", 1, "text"), str, True), ((1, "content", 1, "type"), str, True)]),
    ("chat", _user_part({"type": "image_url", "image_url": {"url": "https://example.com/a.png", "detail": "low"}}),
     [((1, "content", 1, "image_url"), dict, True), ((1, "content", 1, "image_url", "url"), str, True),
      ((1, "content", 1, "image_url", "detail"), str, False)]),
    ("chat", _user_part({"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}}),
     [((1, "content", 1, "input_audio"), dict, True), ((1, "content", 1, "input_audio", "data"), str, True),
      ((1, "content", 1, "input_audio", "format"), str, True)]),
    ("chat", _user_part({"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBE", "filename": "a.pdf"}}),
     [((1, "content", 1, "file"), dict, True), ((1, "content", 1, "file", "file_data"), str, False),
      ((1, "content", 1, "file", "filename"), str, False)]),
    ("chat", _chat({"role": "user", "content": "hi"}, {"role": "assistant", "content": [{"type": "refusal", "refusal": "no"}]}),
     [((2, "content", 0, "refusal"), str, True)]),
    ("chat", _chat({"role": "user", "content": "hi"}, _CALL, {"role": "tool", "tool_call_id": "call_1", "content": "ok"}),
     [((2, "tool_calls", 0, "id"), str, True), ((2, "tool_calls", 0, "function"), dict, True),
      ((2, "tool_calls", 0, "function", "name"), str, True), ((2, "tool_calls", 0, "function", "arguments"), str, True),
      ((3, "tool_call_id"), str, False), ((2, "tool_calls"), list, False)]),
    ("messages", _blocks({"type": "text", "text": "hi"}), [((0, "content", 1, "text"), str, True)]),
    ("messages", _blocks({"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBO"}}),
     [((0, "content", 1, "source"), dict, True), ((0, "content", 1, "source", "type"), str, True),
      ((0, "content", 1, "source", "media_type"), str, True), ((0, "content", 1, "source", "data"), str, True)]),
    ("messages", _blocks({"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}}),
     [((0, "content", 1, "source", "url"), str, True)]),
    ("messages", _blocks({"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "doc"}}),
     [((0, "content", 1, "source", "data"), str, True), ((0, "content", 1, "title"), str, False)]),
    ("messages", {"max_tokens": 16, "messages": [
        {"role": "user", "content": "hi"}, _TOOL_USE,
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "tu_1",
                                      "content": [{"type": "text", "text": "sunny"}]}]}]},
     [((1, "content", 0, "id"), str, True), ((1, "content", 0, "name"), str, True),
      ((1, "content", 0, "input"), dict, True), ((2, "content", 0, "tool_use_id"), str, True),
      ((2, "content", 0, "content", 0, "text"), str, True), ((2, "content", 0, "content", 0), dict, True),
      ((2, "content", 0, "is_error"), bool, False), ((1, "content"), (str, list), True)]),
    ("responses", {"input": [{"role": "user", "content": [{"type": "input_text", "text": "hi"},
                                                          {"type": "input_image", "image_url": "https://example.com/a.png"}]}]},
     [((0, "role"), str, True), ((0, "content", 0, "text"), str, True), ((0, "content", 1, "image_url"), str, False),
      ((0, "content", 0, "type"), str, True)]),
    ("responses", {"input": [{"role": "user", "content": "hi"},
                             {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
                             {"type": "function_call_output", "call_id": "c1", "output": "ok"}]},
     [((1, "call_id"), str, True), ((1, "name"), str, True), ((1, "arguments"), str, True),
      ((2, "call_id"), str, True), ((2, "output"), (str, list), True), ((0, "content"), (str, list), True)]),
    ("embeddings", {"input": ["first", "second"]}, [((1,), str, True)]),
]
_ROOT = {"chat": "messages", "messages": "messages", "responses": "input", "embeddings": "input"}


def param_of(api: str, path: tuple) -> str:
    out = _ROOT[api]
    for key in path:
        out += f"[{key}]" if isinstance(key, int) else f".{key}"
    return out


def _wrong(kind: type | tuple):
    kinds = kind if isinstance(kind, tuple) else (kind,)

    def fits(v) -> bool:
        return v is None or (isinstance(v, kinds) and not (isinstance(v, bool) and bool not in kinds))
    return json_values.filter(lambda v: not fits(v))


@st.composite
def broken_bodies(draw):
    """(api, body, the param the gateway must name): one field of a valid body made wrong."""
    api, valid, fields = draw(st.sampled_from(CASES))
    path, kind, required = draw(st.sampled_from(fields))
    hows = ["wrong type"]
    if required:
        hows += ["null", "part not an object"] + ([] if isinstance(path[-1], int) else ["missing"])
    how = draw(st.sampled_from(hows))
    if how == "part not an object":
        last_index = max((i for i, key in enumerate(path) if isinstance(key, int)), default=0)
        path, how, kind = path[:last_index + 1], "wrong type", (str, dict) if api == "embeddings" else dict
    body = copy.deepcopy(valid)
    node = body[_ROOT[api]]
    for key in path[:-1]:
        node = node[key]
    if how == "wrong type":
        node[path[-1]] = draw(_wrong(kind))
    elif how == "null":
        node[path[-1]] = None
    else:
        del node[path[-1]]
    return api, body, param_of(api, path)


@pytest.fixture
def gw(make_gateway, upstream):
    return make_gateway(extra=EXTRA.format(url=upstream.url))


def test_every_case_is_valid_as_written(gw):
    """The templates themselves pass (else the property below proves nothing)."""
    for api, valid, _ in CASES:
        model = "claude" if api == "messages" else "gpt"
        status, _, body = send(gw, "POST", PATHS[api], orjson.dumps({"model": model, **valid}))
        assert status == 200, (api, valid, body)


@FUZZ
@given(case=broken_bodies(), model=st.sampled_from(MODELS), stream=st.booleans())
def test_one_wrong_field_is_a_400_naming_its_path(gw, upstream, case, model, stream):
    api, body, param = case
    path = PATHS[api]
    body = {"model": model, **body}
    if stream and api != "embeddings":
        body["stream"] = True
    seen = len(upstream.requests)
    status, _, raw = send(gw, "POST", path, orjson.dumps(body))
    assert status == 400, (status, param, body, raw[:300])
    err = error_shape(path, raw)
    if api == "messages":
        assert err["message"].startswith(param + ": "), (param, err)
    else:
        assert err["param"] == param, (param, err)
    assert len(upstream.requests) == seen, "no provider saw the request"


@FUZZ
@given(case=st.sampled_from(CASES), model=st.sampled_from(MODELS), stream=st.booleans(), value=json_values,
       data=st.data())
def test_any_value_in_a_part_is_never_a_5xx(gw, case, model, stream, value, data):
    api, valid, fields = case
    path = data.draw(st.sampled_from(fields))[0]
    body = copy.deepcopy(valid)
    node = body[_ROOT[api]]
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    body["model"] = model
    if stream and api != "embeddings":
        body["stream"] = True
    status, headers, raw = send(gw, "POST", PATHS[api], orjson.dumps(body))
    check(PATHS[api], status, headers, raw)
    if status == 400 and api != "messages":
        err = error_shape(PATHS[api], raw)
        if err["code"] == "invalid_request" and "upstream_status" not in err:
            assert err["param"], raw  # every refusal of the body's shape names what it refuses


@pytest.mark.parametrize("content", [None, 5, "x", [], {}, {"type": "text"}, {"type": "text", "text": None},
                                     {"type": "text", "text": 5}, {"type": "text", "text": ["a"]}])
@pytest.mark.parametrize("stream", [False, True])
def test_the_demo_mock_never_answers_a_bad_part_with_a_500(gw, content, stream):
    """The reported case: the built-in mock provider with the demo config."""
    body = {"model": "demo", "stream": stream, "messages": [{"role": "user", "content": [content]}]}
    status, headers, raw = send(gw, "POST", PATHS["chat"], orjson.dumps(body))
    assert status == 400, raw
    assert error_shape(PATHS["chat"], raw)["param"].startswith("messages[0].content[0]")


@pytest.mark.parametrize("choice", ["required", {"type": "allowed_tools", "allowed_tools": {"mode": "required", "tools": []}},
                                    {"type": "custom", "custom": {"name": "grammar"}}])
@pytest.mark.parametrize("tools", [[{"type": "custom", "custom": {"name": "grammar"}}],
                                   [{"type": "function", "function": {"name": "f"}}]])
def test_the_mock_answers_any_valid_tool_choice(gw, choice, tools):
    body = {"model": "demo", "messages": [{"role": "user", "content": "hi"}], "tools": tools, "tool_choice": choice}
    status, _, raw = send(gw, "POST", PATHS["chat"], orjson.dumps(body))
    assert status == 200, raw
