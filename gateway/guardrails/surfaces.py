"""Where the input text lives in each API's request body, as slots the engine can read and rewrite.

Chat completions, Anthropic messages, the Responses API and embeddings each nest text differently.
`input_texts` walks a body once and returns a `TextSlot` per scannable string (rewriting a slot edits
the body in place) plus the size of what could not be scanned (images, audio, files, token ids, signed
thinking blocks, unknown part types), so the unscanned share is measured instead of silently passing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Roles whose text may carry instructions from someone other than the caller's own application:
# end-user turns and tool or document results. System and developer prompts are the caller's own.
UNTRUSTED_ROLES = frozenset({"user", "tool"})


@dataclass(slots=True)
class TextSlot:
    container: dict | list
    key: str | int
    role: str  # "system", "developer", "user", "assistant" or "tool"

    @property
    def text(self) -> str:
        return self.container[self.key]

    def set(self, value: str) -> None:
        self.container[self.key] = value

    @property
    def untrusted(self) -> bool:
        return self.role in UNTRUSTED_ROLES


@dataclass(slots=True)
class InputTexts:
    slots: list[TextSlot] = field(default_factory=list)
    unscanned_chars: int = 0

    def add(self, container: dict | list, key: str | int, role: str) -> None:
        value = container[key]
        if isinstance(value, str):
            if value:
                self.slots.append(TextSlot(container, key, role))
        elif value is not None:
            self.skip(value)

    def skip(self, value: Any) -> None:
        self.unscanned_chars += _size(value)


def input_texts(api: str, body: dict | None) -> InputTexts:
    out = InputTexts()
    if not isinstance(body, dict):
        return out
    walk = _WALKERS.get(api)
    if walk is not None:
        walk(body, out)
    return out


def _chat(body: dict, out: InputTexts) -> None:
    for msg in _dicts(body.get("messages")):
        role = _role(msg.get("role"))
        if "content" in msg:
            _chat_content(msg, "content", role, out)
        calls = msg.get("tool_calls")
        for call in _dicts(calls) if calls else ():  # most messages have none: skip building a list
            fn = call.get("function")
            if isinstance(fn, dict) and "arguments" in fn:
                out.add(fn, "arguments", "assistant")
        fn = msg.get("function_call")
        if isinstance(fn, dict) and "arguments" in fn:
            out.add(fn, "arguments", "assistant")


def _chat_content(msg: dict, key: str, role: str, out: InputTexts) -> None:
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


def _messages(body: dict, out: InputTexts) -> None:
    system = body.get("system")
    if isinstance(system, str):
        out.add(body, "system", "system")
    elif isinstance(system, list):
        _blocks(system, "system", out)
    for msg in _dicts(body.get("messages")):
        role = _role(msg.get("role"))
        if isinstance(msg.get("content"), str):
            out.add(msg, "content", role)
        elif isinstance(msg.get("content"), list):
            _blocks(msg["content"], role, out)


def _blocks(blocks: list, role: str, out: InputTexts) -> None:
    for block in blocks:
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text" and "text" in block:
            out.add(block, "text", role)
        elif kind == "tool_result":
            content = block.get("content")
            if isinstance(content, str):
                out.add(block, "content", "tool")
            elif isinstance(content, list):
                _blocks(content, "tool", out)
        elif kind == "tool_use" and isinstance(block.get("input"), (dict, list)):
            _leaves(block["input"], "assistant", out)
        elif kind == "document" and isinstance(block.get("source"), dict) and block["source"].get("type") == "text":
            out.add(block["source"], "data", "tool")
        else:  # image, base64/url documents, signed thinking blocks (rewriting breaks the signature), ...
            out.skip(block)


def _leaves(value: dict | list, role: str, out: InputTexts) -> None:
    """Every string in `value`, depth first in document order. An explicit stack, not recursion: a
    caller's tool input nested a thousand deep (as deep as the JSON parser accepts) is just data."""
    stack = [(value, iter(value.items() if isinstance(value, dict) else enumerate(value)))]
    while stack:
        container, items = stack[-1]
        for key, item in items:
            if isinstance(item, str):
                out.add(container, key, role)
            elif isinstance(item, (dict, list)):
                stack.append((item, iter(item.items() if isinstance(item, dict) else enumerate(item))))
                break  # the rest of `items` after the nested value is done
        else:
            stack.pop()


def _responses(body: dict, out: InputTexts) -> None:
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
            _response_content(item, "content", _role(item.get("role")), out)
        elif kind == "function_call_output" or kind == "custom_tool_call_output":
            _response_content(item, "output", "tool", out)
        elif kind == "function_call" and "arguments" in item:
            out.add(item, "arguments", "assistant")
        else:  # reasoning (encrypted), item references, computer calls, ...
            out.skip(item)


def _response_content(item: dict, key: str, role: str, out: InputTexts) -> None:
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


def _embeddings(body: dict, out: InputTexts) -> None:
    value = body.get("input")
    if isinstance(value, str):
        out.add(body, "input", "user")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            if isinstance(item, str):
                out.add(value, i, "user")
            else:  # token ids: one unscanned unit per token
                out.skip(item)
    elif value is not None:
        out.skip(value)


_WALKERS = {"chat": _chat, "messages": _messages, "responses": _responses, "embeddings": _embeddings}


def _dicts(value: Any) -> list[dict]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _role(value: Any) -> str:
    if value == "function":
        return "tool"
    return value if value in ("system", "developer", "user", "assistant", "tool") else "user"


def _size(value: Any) -> int:
    """Characters of text (and one per number) in a part that was not scanned; an explicit stack, not
    recursion, so that nesting as deep as the JSON parser accepts is counted like any other part."""
    total = 0
    stack = [value]
    while stack:
        value = stack.pop()
        if isinstance(value, str):
            total += len(value)
        elif isinstance(value, dict):
            stack.extend(v for k, v in value.items() if k != "type")
        elif isinstance(value, list):
            stack.extend(value)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            total += 1
    return total
