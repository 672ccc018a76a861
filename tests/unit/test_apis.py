"""The API specs as pure pieces: the registry covers every route and adapter, and each spec's checks,
prompt count and output reservation on literal bodies."""

from __future__ import annotations

import orjson
import pytest

from gateway.adapters.registry import ADAPTERS
from gateway.apis.base import ApiSpec
from gateway.apis.registry import APIS
from gateway.errors import BadRequest
from gateway.tokens import Tokenizer

tokens = Tokenizer()  # the gateway's own counter, as the runtime builds it

MSGS = [{"role": "user", "content": "What is the capital of France?"}]
TOOLS = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]


def test_every_route_and_adapter_api_has_a_spec_under_its_own_name():
    assert {api for api, _ in ADAPTERS} | {"models"} == set(APIS)
    for name, spec in APIS.items():
        assert isinstance(spec, ApiSpec) and spec.name == name and spec.encoder is None
    assert {n: s.error_shape for n, s in APIS.items()} == {
        "chat": "openai", "messages": "anthropic", "responses": "openai", "embeddings": "openai", "models": "openai",
        "completions": "openai", "moderations": "openai", "count_tokens": "anthropic"}
    assert [n for n, s in APIS.items() if not s.scans_output] == ["embeddings", "models", "moderations", "count_tokens"]
    assert [n for n, s in APIS.items() if not s.scans_input] == ["models"]


@pytest.mark.parametrize("api,body,param", [
    ("chat", {"messages": MSGS, "stop": 3}, "stop"),
    ("chat", {"messages": MSGS, "stop": ["a", 1]}, "stop[1]"),
    ("chat", {"messages": MSGS, "user": 5}, "user"),
    ("chat", {"messages": MSGS, "temperature": True}, "temperature"),
    ("chat", {"messages": MSGS, "parallel_tool_calls": "no"}, "parallel_tool_calls"),
    ("chat", {"messages": MSGS, "stream_options": {"include_usage": "yes"}}, "stream_options.include_usage"),
    ("chat", {"messages": [{"role": "user", "content": [{"type": "text", "text": "a", "cache_control": 1}]}]},
     "messages[0].content[0].cache_control"),
    ("chat", {"messages": MSGS, "n": 0}, "n"),
    ("messages", {"messages": MSGS, "max_tokens": 5, "metadata": True}, "metadata"),
    ("messages", {"messages": MSGS, "max_tokens": 5, "metadata": {"user_id": 7}}, "metadata.user_id"),
    ("messages", {"messages": MSGS, "max_tokens": 5, "stop_sequences": "END"}, "stop_sequences"),
    ("messages", {"messages": MSGS, "max_tokens": 5, "top_p": "1"}, "top_p"),
    ("messages", {"messages": MSGS, "max_tokens": 5, "tool_choice": {"type": "auto", "disable_parallel_tool_use": 1}},
     "tool_choice.disable_parallel_tool_use"),
    ("messages", {"messages": MSGS}, "max_tokens"),
    ("responses", {"input": "hi", "instructions": 5}, "instructions"),
    ("embeddings", {"input": ["a", 5]}, "input[1]"),
    ("embeddings", {"input": "a", "stream": True}, "stream"),
])
def test_a_wrong_field_is_a_bad_request_naming_it(api, body, param):
    with pytest.raises(BadRequest) as exc:
        APIS[api].validate({"model": "m", **body})
    assert exc.value.param == param


def test_prompt_counts_read_the_apis_own_fields():
    m = "gpt-4o"
    chat = {"messages": MSGS, "tools": TOOLS}
    assert APIS["chat"].count_prompt(chat, m, tokens) == tokens.count_messages(MSGS, m) + tokens.count_text(
        orjson.dumps(TOOLS).decode(), m)
    messages = {"system": [{"type": "text", "text": "Be brief."}], "messages": MSGS}
    assert APIS["messages"].count_prompt(messages, m, tokens) == tokens.count_messages(MSGS, m) + tokens.count_text("Be brief.", m)
    responses = {"instructions": "Be brief.", "input": MSGS}
    assert APIS["responses"].count_prompt(responses, m, tokens) == tokens.count_text("Be brief.", m) + tokens.count_messages(MSGS, m)
    assert APIS["embeddings"].count_prompt({"input": ["one two", [1, 2, 3]]}, m, tokens) == tokens.count_text("one two", m) + 3


def test_output_reservation():
    chat = APIS["chat"]
    assert chat.max_output_tokens({"max_tokens": 10, "max_completion_tokens": 20}) == 20
    assert chat.output_choices({"n": 3}) == 3 and chat.output_choices({}) == 1
    assert APIS["messages"].max_output_tokens({"max_tokens": 7}) == 7
    assert APIS["responses"].max_output_tokens({"max_output_tokens": 9, "max_tokens": 1}) == 9
    assert APIS["embeddings"].max_output_tokens({"max_tokens": 5}) is None
