"""OpenAI Responses (`POST /v1/responses`): checks, input text slots, prompt count.

Only OpenAI-wire providers serve it, through a pass-through adapter that reads no request field; the
checks cover what the gateway itself reads (`instructions`, `input` items, `max_output_tokens`).
"""

from __future__ import annotations

from gateway.apis import fields as f
from gateway.apis.base import ApiSpec
from gateway.apis.json_types import JsonObject
from gateway.apis.prompt import count_field, count_tools
from gateway.apis.slots import InputTexts, role_of
from gateway.tokens import Tokenizer

_PARTS: dict[str, f.Check] = {
    "input_text": f.text("text"),
    "output_text": f.text("text"),
    "text": f.text("text"),
    "refusal": f.text("refusal"),
    "input_image": lambda part, where: f.optional_strings(part, where, "image_url", "file_id", "detail"),
    "input_file": lambda part, where: f.optional_strings(part, where, "file_id", "file_data", "filename", "file_url"),
    "input_audio": f.sub("input_audio", "data", "format"),
}


def _content(item: JsonObject, key: str, where: str) -> None:
    content = item.get(key)
    if isinstance(content, list):
        f.parts(content, f"{where}.{key}", _PARTS)
    elif not isinstance(content, str):
        f.fail(f"{where}.{key}", f"'{key}' is required (a string or an array of parts)")


def _item(item: object, where: str) -> None:
    if not isinstance(item, dict):
        f.fail(where, "each input item must be an object")
    kind = item.get("type", "message")
    if not isinstance(kind, str):
        f.fail(f"{where}.type", "'type' must be a string")
    if kind == "message":
        f.strings(item, where, "role")
        _content(item, "content", where)
    elif kind == "function_call":
        f.strings(item, where, "call_id", "name", "arguments")
    elif kind in ("function_call_output", "custom_tool_call_output"):
        f.strings(item, where, "call_id")
        _content(item, "output", where)


def _walk_content(item: JsonObject, key: str, role: str, out: InputTexts) -> None:
    content = item.get(key)
    if isinstance(content, str):
        out.add(item, key, role)
        return
    if not isinstance(content, list):
        if content is not None:
            out.skip(content)
        return
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind in ("input_text", "output_text", "text") and "text" in part:
            out.add(part, "text", role)
        elif kind == "refusal" and "refusal" in part:
            out.add(part, "refusal", role)
        else:  # input_image, input_file, input_audio
            out.skip(part)


class ResponsesSpec(ApiSpec):
    name = "responses"

    def validate(self, body: JsonObject) -> None:
        f.model_and_stream(body)
        items = body.get("input")
        f.require(isinstance(items, (str, list)), "'input' is required (a string or an array)", "input")
        f.positive_int(body, "max_output_tokens", f.MAX_OUTPUT_TOKENS)
        f.optional_strings(body, "", "instructions")
        if isinstance(items, list):
            for i, item in enumerate(items):
                _item(item, f"input[{i}]")

    def walk_input(self, body: JsonObject, out: InputTexts) -> None:
        if isinstance(body.get("instructions"), str):
            out.add(body, "instructions", "system")
        items = body.get("input")
        if isinstance(items, str):
            out.add(body, "input", "user")
            return
        if not isinstance(items, list):
            if items is not None:
                out.skip(items)
            return
        for item in items:
            if not isinstance(item, dict):
                out.skip(item)
                continue
            kind = item.get("type", "message")
            if kind == "message" or ("role" in item and "content" in item):
                _walk_content(item, "content", role_of(item.get("role")), out)
            elif kind == "function_call_output" or kind == "custom_tool_call_output":
                _walk_content(item, "output", "tool", out)
            elif kind == "function_call" and "arguments" in item:
                out.add_json(item, "arguments", "assistant")
            else:  # reasoning (encrypted), item references, computer calls, ...
                out.skip(item)

    def count_prompt(self, body: JsonObject, model: str | None, tokens: Tokenizer) -> int:
        return count_field(body.get("instructions"), model, tokens) + count_field(body.get("input"), model, tokens) \
            + count_tools(body, model, tokens)

    def max_output_tokens(self, body: JsonObject) -> int | None:
        v = body.get("max_output_tokens")
        return v if isinstance(v, int) else None
