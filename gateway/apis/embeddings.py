"""OpenAI Embeddings (`POST /v1/embeddings`): checks, input text slots, prompt count. Never streamed;
answers are vectors, so output guardrails have nothing to read."""

from __future__ import annotations

from collections.abc import Callable

from gateway.apis import fields as f
from gateway.apis.base import ApiSpec
from gateway.apis.json_types import JsonObject
from gateway.apis.prompt import count_field
from gateway.apis.slots import InputTexts
from gateway.tokens import Tokenizer


def _token_ids(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _token_id_array(value: object) -> bool:
    return isinstance(value, list) and len(value) > 0 and all(_token_ids(t) for t in value)


def _is_str(value: object) -> bool:
    return isinstance(value, str)


def check_text_or_tokens(body: JsonObject, key: str) -> None:
    """`key`: a string, an array of strings, an array of token ids, or an array of token-id arrays
    (embeddings' `input`, completions' `prompt`)."""
    inp = body.get(key)
    if not isinstance(inp, (str, list)) or not inp:
        f.fail(key, f"'{key}' is required (a string or an array)")
    if isinstance(inp, str):
        return
    first = inp[0]
    ok: Callable[[object], bool] = _is_str if isinstance(first, str) else \
        _token_ids if _token_ids(first) else _token_id_array
    for i, value in enumerate(inp):
        if not ok(value):
            f.fail(f"{key}[{i}]", f"'{key}' must be a string, an array of strings, an array of token ids "
                                  "or an array of token-id arrays")


class EmbeddingsSpec(ApiSpec):
    name = "embeddings"
    scans_output = False
    generates = False

    def validate(self, body: JsonObject) -> None:
        f.model_and_stream(body)
        check_text_or_tokens(body, "input")
        f.require(not body.get("stream", False), "embeddings cannot be streamed", "stream")

    def walk_input(self, body: JsonObject, out: InputTexts) -> None:
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

    def count_prompt(self, body: JsonObject, model: str | None, tokens: Tokenizer) -> int:
        return count_field(body.get("input"), model, tokens)
