"""Prompt token estimates shared by the API specs: a text-or-items field, and tool definitions.

The per-message format overhead and content parts are counted by `Tokenizer.count_messages`;
what is API-specific (which fields hold the prompt) is each spec's `count_prompt`.
"""

from __future__ import annotations

import orjson

from gateway.apis.json_types import JsonObject
from gateway.tokens import Tokenizer


def count_field(value: object, model: str | None, tokens: Tokenizer) -> int:
    """A string, a list of messages (objects with a `role`), or a list of strings, token-id arrays
    and text parts (Anthropic `system` blocks, Responses `input` items, embeddings `input`)."""
    if isinstance(value, str):
        return tokens.count_text(value, model)
    if not isinstance(value, list):
        return 0
    if value and all(isinstance(v, dict) and "role" in v for v in value):
        return tokens.count_messages(value, model)
    n = 0
    for v in value:
        if isinstance(v, str):
            n += tokens.count_text(v, model)
        elif isinstance(v, list):  # pre-tokenized input
            n += len(v)
        elif isinstance(v, dict) and isinstance(v.get("text"), str):
            n += tokens.count_text(v["text"], model)
    return n


def count_tools(body: JsonObject, model: str | None, tokens: Tokenizer) -> int:
    tools = body.get("tools")
    return tokens.count_text(orjson.dumps(tools).decode(), model) if tools else 0
