"""OpenAI's legacy Completions (`POST /v1/completions`): checks, input text slots, prompt count.

`prompt` is a string, an array of strings, an array of token ids or an array of token-id arrays;
`suffix` is text too. Token ids cannot be read by guardrails: each is counted as unscanned. The
answer's `choices[].text` is scanned by output guardrails like a chat answer's content.
"""

from __future__ import annotations

from collections.abc import Callable

from gateway.apis import fields as f
from gateway.apis.base import ApiSpec
from gateway.apis.embeddings import check_text_or_tokens
from gateway.apis.json_types import JsonObject
from gateway.apis.prompt import count_field
from gateway.apis.slots import InputTexts
from gateway.tokens import Tokenizer

# Without max_tokens a completion stops after 16 tokens (OpenAI's documented default).
DEFAULT_MAX_TOKENS = 16

_OPTIONAL: dict[str, Callable[[JsonObject], None]] = {
    "n": lambda body: f.positive_int(body, "n", f.MAX_N),
    "best_of": lambda body: f.positive_int(body, "best_of", f.MAX_N),
    "max_tokens": lambda body: f.positive_int(body, "max_tokens", f.MAX_OUTPUT_TOKENS),
    "stop": lambda body: f.string_list(body, "stop", or_string=True),
    "suffix": lambda body: f.optional_strings(body, "", "suffix"),
    "user": lambda body: f.optional_strings(body, "", "user"),
    "echo": lambda body: f.optional_bools(body, "", "echo"),
    "temperature": lambda body: f.optional_numbers(body, "temperature"),
    "top_p": lambda body: f.optional_numbers(body, "top_p"),
}


class CompletionsSpec(ApiSpec):
    name = "completions"

    def validate(self, body: JsonObject) -> None:
        f.model_and_stream(body)
        check_text_or_tokens(body, "prompt")
        opts = body.get("stream_options")
        if opts is not None:
            f.field(body, "stream_options", "", dict)
            f.optional_bools(opts, "stream_options", "include_usage")
        for key in body:
            check = _OPTIONAL.get(key)
            if check is not None:
                check(body)

    def walk_input(self, body: JsonObject, out: InputTexts) -> None:
        value = body.get("prompt")
        if isinstance(value, str):
            out.add(body, "prompt", "user")
        elif isinstance(value, list):
            for i, item in enumerate(value):
                if isinstance(item, str):
                    out.add(value, i, "user")
                else:
                    out.skip(item)
        if isinstance(body.get("suffix"), str):
            out.add(body, "suffix", "user")

    def count_prompt(self, body: JsonObject, model: str | None, tokens: Tokenizer) -> int:
        return count_field(body.get("prompt"), model, tokens) + count_field(body.get("suffix"), model, tokens)

    def max_output_tokens(self, body: JsonObject) -> int | None:
        v = body.get("max_tokens")
        return v if isinstance(v, int) and not isinstance(v, bool) else DEFAULT_MAX_TOKENS

    def output_choices(self, body: JsonObject) -> int:
        """Each prompt of an array gets `n` answers, and `best_of` are generated (and billed) per prompt."""
        prompt = body.get("prompt")
        prompts = len(prompt) if isinstance(prompt, list) and prompt and not isinstance(prompt[0], int) else 1
        per = max(v for v in (body.get("n"), body.get("best_of"), 1)
                  if isinstance(v, int) and not isinstance(v, bool))
        return prompts * per
