"""Input text slots: where a request body's scannable strings are, so guardrails can read and rewrite
them in place, plus the size of what could not be scanned (images, audio, files, token ids, signed
thinking blocks, unknown part types), so the unscanned share is measured instead of silently passing.

Each API's spec walks its own body (`ApiSpec.walk_input`) with the helpers here. Walks are iterative:
JSON nested as deep as the parser accepts (a caller's tool input) is data, not a recursion limit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gateway.apis.json_types import JsonArray, JsonObject
from gateway.guardrails.json_escapes import unescape

# Roles whose text may carry instructions from someone other than the caller's own application:
# end-user turns and tool or document results. System and developer prompts are the caller's own.
UNTRUSTED_ROLES = frozenset({"user", "tool"})
_ROLES = ("system", "developer", "user", "assistant", "tool")  # a tuple: `in` takes unhashable values too


@dataclass(slots=True)
class TextSlot:
    container: JsonObject | JsonArray
    key: str | int
    role: str  # "system", "developer", "user", "assistant" or "tool"
    json: bool = False  # JSON text (tool-call arguments): read with its escapes decoded, as its readers do

    @property
    def text(self) -> str:
        # The walk made this slot only where the container holds a string at `key` (a list index or an
        # object key): the union of the two container types is what the checker cannot follow.
        value: str = self.container[self.key]  # type: ignore[index]
        return unescape(value) if self.json else value

    def set(self, value: str) -> None:
        self.container[self.key] = value  # type: ignore[index]

    @property
    def untrusted(self) -> bool:
        return self.role in UNTRUSTED_ROLES


@dataclass(slots=True)
class InputTexts:
    slots: list[TextSlot] = field(default_factory=list)
    unscanned_chars: int = 0

    def add(self, container: JsonObject | JsonArray, key: str | int, role: str) -> None:
        value = container[key]  # type: ignore[index]
        if isinstance(value, str):
            if value:
                self.slots.append(TextSlot(container, key, role))
        elif value is not None:
            self.skip(value)

    def add_json(self, container: JsonObject | JsonArray, key: str | int, role: str) -> None:
        """A string holding JSON text (tool-call arguments): scanned as its readers decode it, so an
        escape such as `\\u0040` cannot hide a value from a rule (gateway/guardrails/json_escapes.py)."""
        before = len(self.slots)
        self.add(container, key, role)
        if len(self.slots) > before:
            self.slots[-1].json = True

    def skip(self, value: Any) -> None:
        self.unscanned_chars += unscanned_size(value)


def leaves(value: JsonObject | JsonArray, role: str, out: InputTexts) -> None:
    """Every string in `value`, depth first in document order. An explicit stack, not recursion: a
    caller's tool input nested a thousand deep (as deep as the JSON parser accepts) is just data."""
    stack: list[tuple[JsonObject | JsonArray, Any]] = [(value, iter(value.items() if isinstance(value, dict) else enumerate(value)))]
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


def dicts(value: Any) -> list[JsonObject]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def role_of(value: Any) -> str:
    if value == "function":
        return "tool"
    return value if value in _ROLES else "user"


def unscanned_size(value: Any) -> int:
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
