"""Anthropic Messages (`POST /v1/messages`): checks, input text slots, prompt count; errors in
Anthropic's shape.

`validate` checks every field a translator or provider reads: the OpenAI translator
(gateway/translate/anthropic_to_openai.py) reads `system`, content blocks and their sources, tools,
tool_choice (and its `disable_parallel_tool_use`), `stop_sequences`, `metadata.user_id`,
`temperature` and `top_p`.
"""

from __future__ import annotations

from typing import ClassVar

from collections.abc import Callable

from gateway.apis import fields as f
from gateway.apis.base import ApiSpec
from gateway.apis.json_types import JsonArray, JsonObject
from gateway.apis.prompt import count_field, count_tools
from gateway.apis.slots import InputTexts, dicts, leaves, role_of
from gateway.tokens import Tokenizer


def _source(block: JsonObject, where: str) -> None:
    source = f.field(block, "source", where, dict)
    at = f"{where}.source"
    kind = f.typed(source, at)
    if kind == "base64":
        f.strings(source, at, "media_type", "data")
    elif kind == "text":
        f.strings(source, at, "data")
        f.optional_strings(source, at, "media_type")
    elif kind == "url":
        f.strings(source, at, "url")
    elif kind == "file":
        f.strings(source, at, "file_id")
    elif kind == "content":
        _block_content(source, "content", at, required=True)


def _tool_use(block: JsonObject, where: str) -> None:
    f.strings(block, where, "id", "name")
    f.field(block, "input", where, dict)


def _tool_result(block: JsonObject, where: str) -> None:
    f.strings(block, where, "tool_use_id")
    f.field(block, "is_error", where, bool, required=False)
    _block_content(block, "content", where, required=False)


def _block_content(obj: JsonObject, key: str, where: str, *, required: bool) -> None:
    """A string or an array of content blocks (tool results and content documents nest them)."""
    content = obj.get(key)
    if isinstance(content, list):
        f.parts(content, f"{where}.{key}", _BLOCKS)
    elif not isinstance(content, str) and (content is not None or required):
        f.fail(f"{where}.{key}", f"'{key}' must be a string or an array of content blocks")


def _document(block: JsonObject, where: str) -> None:
    _source(block, where)
    f.optional_strings(block, where, "title", "context")


_BLOCKS: dict[str, f.Check] = {
    "text": f.text("text"),
    "image": _source,
    "document": _document,
    "tool_use": _tool_use,
    "server_tool_use": _tool_use,
    "tool_result": _tool_result,
    "thinking": lambda block, where: f.strings(block, where, "thinking", "signature"),
    "redacted_thinking": f.text("data"),
}


def _tools(body: JsonObject) -> None:
    tools = body["tools"]
    if tools is None:
        return
    if not isinstance(tools, list):
        f.fail("tools", "'tools' must be an array")
    for k, tool in enumerate(tools):
        if not isinstance(tool, dict):
            f.fail(f"tools[{k}]", "each tool must be an object")
        f.strings(tool, f"tools[{k}]", "name")
        f.optional_strings(tool, f"tools[{k}]", "type", "description")
        if tool.get("type") in (None, "custom"):
            f.field(tool, "input_schema", f"tools[{k}]", dict)


def _tool_choice(body: JsonObject) -> None:
    choice = body["tool_choice"]
    if choice is None:
        return
    if f.typed(choice, "tool_choice") == "tool":
        f.strings(choice, "tool_choice", "name")
    f.optional_bools(choice, "tool_choice", "disable_parallel_tool_use")


def _system(body: JsonObject) -> None:
    system = body["system"]
    if isinstance(system, list):
        f.parts(system, "system", _BLOCKS)
    elif system is not None and not isinstance(system, str):
        f.fail("system", "'system' must be a string or an array of text blocks")


def _metadata(body: JsonObject) -> None:
    if body["metadata"] is not None:
        f.field(body, "metadata", "", dict)
        f.optional_strings(body["metadata"], "metadata", "user_id")


# Optional top-level fields, checked only when present: a body's own keys are walked, not this table,
# so a request pays for the fields it sends.
_OPTIONAL: dict[str, Callable[[JsonObject], None]] = {
    "system": _system,
    "stop_sequences": lambda body: f.string_list(body, "stop_sequences"),
    "temperature": lambda body: f.optional_numbers(body, "temperature"),
    "top_p": lambda body: f.optional_numbers(body, "top_p"),
    "metadata": _metadata,
    "tools": _tools,
    "tool_choice": _tool_choice,
}


def _walk_blocks(blocks: JsonArray, role: str, out: InputTexts) -> None:
    for block in blocks:
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text" and "text" in block:
            out.add(block, "text", role)
        elif kind == "tool_result":
            content = block.get("content")
            if isinstance(content, str):
                out.add(block, "content", "tool")
            elif isinstance(content, list):
                _walk_blocks(content, "tool", out)
        elif kind == "tool_use" and isinstance(block.get("input"), (dict, list)):
            leaves(block["input"], "assistant", out)
        elif kind == "document" and isinstance(block.get("source"), dict) and block["source"].get("type") == "text":
            out.add(block["source"], "data", "tool")
        else:  # image, base64/url documents, signed thinking blocks (rewriting breaks the signature), ...
            out.skip(block)


class MessagesSpec(ApiSpec):
    name = "messages"
    error_shape = "anthropic"
    requires_max_tokens: ClassVar[bool] = True

    def validate(self, body: JsonObject) -> None:
        f.model_and_stream(body)
        msgs = body.get("messages")
        if not isinstance(msgs, list) or not msgs:
            f.fail("messages", "'messages' is required (a non-empty array)")
        if self.requires_max_tokens:
            f.require("max_tokens" in body, "'max_tokens' is required", "max_tokens")
            f.positive_int(body, "max_tokens", f.MAX_OUTPUT_TOKENS)
        for i, msg in enumerate(msgs):
            if not isinstance(msg, dict):
                f.fail(f"messages[{i}]", "each message must be an object with a 'role'")
            if not isinstance(msg.get("role"), str):
                f.fail(f"messages[{i}].role", "'role' is required (a string)")
            if not isinstance(msg.get("content"), str):
                _block_content(msg, "content", f"messages[{i}]", required=True)
        for key in body:
            check = _OPTIONAL.get(key)
            if check is not None:
                check(body)

    def walk_input(self, body: JsonObject, out: InputTexts) -> None:
        system = body.get("system")
        if isinstance(system, str):
            out.add(body, "system", "system")
        elif isinstance(system, list):
            _walk_blocks(system, "system", out)
        for msg in dicts(body.get("messages")):
            role = role_of(msg.get("role"))
            if isinstance(msg.get("content"), str):
                out.add(msg, "content", role)
            elif isinstance(msg.get("content"), list):
                _walk_blocks(msg["content"], role, out)

    def count_prompt(self, body: JsonObject, model: str | None, tokens: Tokenizer) -> int:
        messages = body.get("messages")
        n = tokens.count_messages(messages, model) if isinstance(messages, list) else 0
        return n + count_field(body.get("system"), model, tokens) + count_tools(body, model, tokens)

    def max_output_tokens(self, body: JsonObject) -> int | None:
        v = body.get("max_tokens")
        return v if isinstance(v, int) else None
