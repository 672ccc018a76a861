"""Every request field a translator or provider reads, given a value of the wrong type, on every caller
API x every provider type (the mock, `openai`-compatible, `anthropic`, `azure`), streamed and not.

The fields are the ones `gateway/translate/*.py`, `gateway/adapters/*.py` and `gateway/providers/mock.py`
read from the caller's body (listed in each `gateway/apis/<api>.py` module doc). The property: the API's
spec refuses the body with a 400 naming the field, before any provider sees it. So a translator never
meets a type it does not expect, and an exception inside translation is a gateway bug: it must show as
a 5xx, never hide behind the router's catch-all 400 ("a field of the request cannot be sent to the ...
API"), which this suite treats as a failure too.
"""

from __future__ import annotations

import copy

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.faults.wire import error_shape
from tests.fuzz.test_bad_input import check, json_values, send
from tests.fuzz.test_message_parts import EXTRA, MODELS, PATHS

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
CATCH_ALL = b"cannot be sent to the"  # the router's 400 for an exception in translation
NUMBER = (int, float)

_FN_TOOL = {"type": "function", "function": {"name": "f", "description": "d", "parameters": {"type": "object"}}}
_CHAT = {"messages": [{"role": "system", "content": "be brief"},
                      {"role": "user", "name": "ann", "content": [{"type": "text", "text": "hi",
                                                                   "cache_control": {"type": "ephemeral"}}]}],
         "stop": ["END"], "user": "u1", "temperature": 0.5, "top_p": 1, "n": 1, "max_tokens": 16,
         "max_completion_tokens": 16, "stream_options": {"include_usage": True}}
_CHAT_TOOLS = {**_CHAT, "tools": [_FN_TOOL], "tool_choice": {"type": "function", "function": {"name": "f"}},
               "parallel_tool_calls": False}
_MESSAGES = {"max_tokens": 16, "system": [{"type": "text", "text": "be brief"}],
             "messages": [{"role": "user", "content": "hi"}], "stop_sequences": ["END"],
             "metadata": {"user_id": "u1"}, "temperature": 0.5, "top_p": 1}
_MESSAGES_TOOLS = {**_MESSAGES, "tools": [{"name": "f", "description": "d", "input_schema": {"type": "object"}}],
                   "tool_choice": {"type": "tool", "name": "f", "disable_parallel_tool_use": True}}

# (api, a valid body without its model, [(path to a field, the JSON type(s) it must have)])
CASES: list[tuple[str, dict, list[tuple[tuple, type | tuple]]]] = [
    ("chat", _CHAT, [
        (("model",), str), (("stream",), bool), (("stop",), (str, list)), (("stop", 0), str), (("user",), str),
        (("temperature",), NUMBER), (("top_p",), NUMBER), (("n",), int), (("max_tokens",), int),
        (("max_completion_tokens",), int), (("stream_options",), dict), (("stream_options", "include_usage"), bool),
        (("messages",), list), (("messages", 1), dict), (("messages", 1, "role"), str), (("messages", 1, "name"), str),
        (("messages", 1, "content"), (str, list)), (("messages", 1, "content", 0, "cache_control"), dict)]),
    ("chat", _CHAT_TOOLS, [
        (("tools",), list), (("tools", 0), dict), (("tools", 0, "function"), dict), (("tools", 0, "function", "name"), str),
        (("tools", 0, "function", "description"), str), (("tools", 0, "function", "parameters"), dict),
        (("tool_choice",), (str, dict)), (("tool_choice", "function", "name"), str),
        (("parallel_tool_calls",), bool)]),
    ("messages", _MESSAGES, [
        (("model",), str), (("stream",), bool), (("max_tokens",), int), (("system",), (str, list)),
        (("system", 0, "text"), str), (("stop_sequences",), list), (("stop_sequences", 0), str),
        (("metadata",), dict), (("metadata", "user_id"), str), (("temperature",), NUMBER), (("top_p",), NUMBER),
        (("messages",), list), (("messages", 0), dict), (("messages", 0, "role"), str),
        (("messages", 0, "content"), (str, list))]),
    ("messages", _MESSAGES_TOOLS, [
        (("tools",), list), (("tools", 0), dict), (("tools", 0, "name"), str), (("tools", 0, "description"), str),
        (("tools", 0, "input_schema"), dict), (("tool_choice",), dict), (("tool_choice", "type"), str),
        (("tool_choice", "name"), str), (("tool_choice", "disable_parallel_tool_use"), bool)]),
    ("responses", {"instructions": "be brief", "input": "hi", "max_output_tokens": 16}, [
        (("model",), str), (("stream",), bool), (("instructions",), str), (("input",), (str, list)),
        (("max_output_tokens",), int)]),
    ("embeddings", {"input": "hi"}, [(("model",), str), (("input",), (str, list))]),
]
FIELDS = [(api, valid, path, kind) for api, valid, fields in CASES for path, kind in fields]


def param_of(path: tuple) -> str:
    out = ""
    for key in path:
        out += f"[{key}]" if isinstance(key, int) else (f".{key}" if out else key)
    return out


def _fits(value: object, kind: type | tuple) -> bool:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return isinstance(value, kinds) and not (isinstance(value, bool) and bool not in kinds)


def _set(body: dict, path: tuple, value: object) -> dict:
    body = copy.deepcopy(body)
    node = body
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return body


def _body(api: str, valid: dict, model: str, stream: bool) -> dict:
    body = {"model": model, **copy.deepcopy(valid)}
    if stream and api != "embeddings":
        body["stream"] = True
    return body


@pytest.fixture
def gw(make_gateway, upstream):
    return make_gateway(extra=EXTRA.format(url=upstream.url))


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("stream", [False, True])
def test_every_template_is_served_or_refused_for_its_api_alone(gw, model, stream):
    """With every read field set to a valid value, the body passes the spec on every provider type.
    Chat and messages are served everywhere; responses and embeddings only where the provider has them
    (the mock and the anthropic type refuse them, with a 400 that is not about a field)."""
    for api, valid, _ in CASES:
        status, headers, raw = send(gw, "POST", PATHS[api], orjson.dumps(_body(api, valid, model, stream)))
        check(PATHS[api], status, headers, raw)
        assert CATCH_ALL not in raw, (api, model, raw[:300])
        if api in ("chat", "messages"):
            assert status == 200, (api, model, stream, raw[:300])
        elif status != 200:
            err = error_shape(PATHS[api], raw)
            assert err.get("param") in (None, "model"), (api, model, err)


@st.composite
def wrong_fields(draw):
    api, valid, path, kind = draw(st.sampled_from(FIELDS))
    value = draw(json_values.filter(lambda v: v is not None and not _fits(v, kind)))
    return api, _set(valid, path, value), param_of(path)


@FUZZ
@given(case=wrong_fields(), model=st.sampled_from(MODELS), stream=st.booleans())
def test_a_wrongly_typed_field_is_a_400_naming_it_on_every_provider(gw, upstream, case, model, stream):
    api, body, param = case
    path = PATHS[api]
    body = {"model": model, **body}  # a wrong model in `body` wins
    if stream and api != "embeddings" and param != "stream":
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
@given(field=st.sampled_from(FIELDS), model=st.sampled_from(MODELS), stream=st.booleans(), value=json_values)
def test_any_value_in_a_read_field_is_never_a_5xx_nor_the_translation_catch_all(gw, field, model, stream, value):
    api, valid, path, _ = field
    body = _set(_body(api, valid, model, stream), path, value)
    status, headers, raw = send(gw, "POST", PATHS[api], orjson.dumps(body))
    check(PATHS[api], status, headers, raw)
    assert CATCH_ALL not in raw, (api, path, value, model, raw[:300])
