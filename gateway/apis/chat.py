"""OpenAI Chat Completions (`POST /v1/chat/completions`): checks, input text slots, prompt count.

`validate` checks every field a translator or provider reads: the Anthropic translator
(gateway/translate/openai_to_anthropic.py) reads message content parts, tool calls, tools, tool_choice,
`stop`, `user`, `temperature`, `top_p`, `parallel_tool_calls` and part `cache_control`; the OpenAI
adapter and the flow read `stream_options`; the mock provider reads `n` and the token caps.
"""

from __future__ import annotations

from collections.abc import Callable

from gateway.apis import fields as f
from gateway.apis.base import ApiSpec
from gateway.apis.json_types import JsonObject
from gateway.apis.prompt import count_tools
from gateway.apis.slots import InputTexts, dicts, role_of
from gateway.tokens import Tokenizer


def _with_cache_control(check: f.Check) -> f.Check:
    """The translator copies a part's `cache_control` into the Anthropic block it makes."""
    def checked(part: JsonObject, where: str) -> None:
        check(part, where)
        f.field(part, "cache_control", where, dict, required=False)
    return checked


_PARTS: dict[str, f.Check] = {
    "text": _with_cache_control(f.text("text")),
    "refusal": f.text("refusal"),
    "image_url": _with_cache_control(f.sub("image_url", "url", optional=("detail",))),
    "input_audio": f.sub("input_audio", "data", "format"),
    "file": _with_cache_control(f.sub("file", optional=("file_data", "file_id", "filename"))),
}


def _tool_call(call: object, where: str) -> None:
    if not isinstance(call, dict):
        f.fail(where, "each tool call must be an object")
    kind = f.typed(call, where) if "type" in call else "function"
    f.field(call, "id", where, str)
    if kind == "function":
        f.sub("function", "name", "arguments")(call, where)
    elif kind == "custom":
        f.sub("custom", "name", "input")(call, where)


def _message(msg: JsonObject, i: int) -> None:
    if not isinstance(msg, dict):
        f.fail(f"messages[{i}]", "each message must be an object with a 'role'")
    get = msg.get
    if not isinstance(get("role"), str):
        f.fail(f"messages[{i}].role", "'role' is required (a string)")
    content = get("content")
    if not isinstance(content, str):
        if isinstance(content, list):
            f.parts(content, f"messages[{i}].content", _PARTS)
        elif content is not None:
            f.fail(f"messages[{i}].content", "'content' must be a string, an array of parts or null")
    # Most messages are a role and a content: the rest is looked at only when present.
    if get("name") is not None or get("tool_call_id") is not None:
        f.optional_strings(msg, f"messages[{i}]", "name", "tool_call_id")
    calls = get("tool_calls")
    if calls is not None:
        if not isinstance(calls, list):
            f.fail(f"messages[{i}].tool_calls", "'tool_calls' must be an array")
        for k, call in enumerate(calls):
            _tool_call(call, f"messages[{i}].tool_calls[{k}]")
    if get("function_call") is not None:
        f.sub("function_call", "name", "arguments")(msg, f"messages[{i}]")


def _tools(body: JsonObject) -> None:
    tools = body["tools"]
    if tools is None:
        return
    if not isinstance(tools, list):
        f.fail("tools", "'tools' must be an array")
    for k, tool in enumerate(tools):
        kind = f.typed(tool, f"tools[{k}]")
        if kind == "function":
            f.sub("function", "name", optional=("description",))(tool, f"tools[{k}]")
            f.field(tool["function"], "parameters", f"tools[{k}].function", dict, required=False)
        elif kind == "custom":
            f.sub("custom", "name", optional=("description",))(tool, f"tools[{k}]")


def _tool_choice(body: JsonObject) -> None:
    choice = body["tool_choice"]
    if choice is not None and not isinstance(choice, str):
        if f.typed(choice, "tool_choice") == "function":
            f.sub("function", "name")(choice, "tool_choice")


def _stream_options(body: JsonObject) -> None:
    if body["stream_options"] is not None:
        f.field(body, "stream_options", "", dict)
        f.optional_bools(body["stream_options"], "stream_options", "include_usage")


# Optional top-level fields, checked only when present: a body's own keys are walked, not this table,
# so a request pays for the fields it sends.
_OPTIONAL: dict[str, Callable[[JsonObject], None]] = {
    "n": lambda body: f.positive_int(body, "n", f.MAX_N),
    "max_tokens": lambda body: f.positive_int(body, "max_tokens", f.MAX_OUTPUT_TOKENS),
    "max_completion_tokens": lambda body: f.positive_int(body, "max_completion_tokens", f.MAX_OUTPUT_TOKENS),
    "stream_options": _stream_options,
    "stop": lambda body: f.string_list(body, "stop", or_string=True),
    "user": lambda body: f.optional_strings(body, "", "user"),
    "temperature": lambda body: f.optional_numbers(body, "temperature"),
    "top_p": lambda body: f.optional_numbers(body, "top_p"),
    "parallel_tool_calls": lambda body: f.optional_bools(body, "", "parallel_tool_calls"),
    "tools": _tools,
    "tool_choice": _tool_choice,
}


def _walk_content(msg: JsonObject, key: str, role: str, out: InputTexts) -> None:
    content = msg[key]
    if isinstance(content, str) or content is None:
        out.add(msg, key, role)
        return
    if not isinstance(content, list):
        out.skip(content)
        return
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text" and "text" in part:
            out.add(part, "text", role)
        elif kind == "refusal" and "refusal" in part:
            out.add(part, "refusal", role)
        else:  # image_url, input_audio, file, and anything newer
            out.skip(part)


class ChatSpec(ApiSpec):
    name = "chat"

    def validate(self, body: JsonObject) -> None:
        f.model_and_stream(body)
        msgs = body.get("messages")
        if not isinstance(msgs, list) or not msgs:
            f.fail("messages", "'messages' is required (a non-empty array)")
        for i, msg in enumerate(msgs):
            _message(msg, i)
        for key in body:
            check = _OPTIONAL.get(key)
            if check is not None:
                check(body)

    def walk_input(self, body: JsonObject, out: InputTexts) -> None:
        for msg in dicts(body.get("messages")):
            role = role_of(msg.get("role"))
            if "content" in msg:
                _walk_content(msg, "content", role, out)
            calls = msg.get("tool_calls")
            for call in dicts(calls) if calls else ():  # most messages have none: skip building a list
                fn = call.get("function")
                if isinstance(fn, dict) and "arguments" in fn:
                    out.add_json(fn, "arguments", "assistant")
            fn = msg.get("function_call")
            if isinstance(fn, dict) and "arguments" in fn:
                out.add_json(fn, "arguments", "assistant")

    def count_prompt(self, body: JsonObject, model: str | None, tokens: Tokenizer) -> int:
        messages = body.get("messages")
        n = tokens.count_messages(messages, model) if isinstance(messages, list) else 0
        return n + count_tools(body, model, tokens)

    def max_output_tokens(self, body: JsonObject) -> int | None:
        for name in ("max_completion_tokens", "max_tokens"):
            v = body.get(name)
            if isinstance(v, int):
                return v
        return None

    def output_choices(self, body: JsonObject) -> int:
        n = body.get("n")
        return n if isinstance(n, int) and not isinstance(n, bool) and n > 0 else 1
