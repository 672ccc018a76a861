"""OpenAI Moderations (`POST /v1/moderations`): checks, input text slots, prompt count. Never streamed;
the answer is categories and scores, so output guardrails have nothing to read.

`input` is a string, an array of strings, or an array of multimodal parts (`{"type": "text", "text"}`,
`{"type": "image_url", "image_url": {"url"}}`); images are unscanned. Input guardrails apply as on
every API: text is redacted before it reaches the moderation model, and a blocked input is refused.
"""

from __future__ import annotations

from gateway.apis import fields as f
from gateway.apis.base import ApiSpec
from gateway.apis.json_types import JsonObject
from gateway.apis.prompt import count_field
from gateway.apis.slots import InputTexts
from gateway.tokens import Tokenizer

_PARTS: dict[str, f.Check] = {
    "text": f.text("text"),
    "image_url": f.sub("image_url", "url"),
}


class ModerationsSpec(ApiSpec):
    name = "moderations"
    scans_output = False
    generates = False

    def validate(self, body: JsonObject) -> None:
        f.model_and_stream(body)  # the model is the alias that routes it: required here, unlike OpenAI's
        f.require(not body.get("stream", False), "moderations cannot be streamed", "stream")
        inp = body.get("input")
        if isinstance(inp, str):
            return
        if not isinstance(inp, list) or not inp:
            f.fail("input", "'input' is required (a string, an array of strings or an array of parts)")
        if all(isinstance(v, str) for v in inp):
            return
        f.parts(inp, "input", _PARTS)

    def walk_input(self, body: JsonObject, out: InputTexts) -> None:
        value = body.get("input")
        if isinstance(value, str):
            out.add(body, "input", "user")
            return
        for i, item in enumerate(value if isinstance(value, list) else ()):
            if isinstance(item, str):
                out.add(value, i, "user")  # type: ignore[arg-type]
            elif isinstance(item, dict) and item.get("type") == "text":
                out.add(item, "text", "user")
            else:
                out.skip(item)

    def count_prompt(self, body: JsonObject, model: str | None, tokens: Tokenizer) -> int:
        value = body.get("input")
        if isinstance(value, list):
            value = [v.get("text", "") if isinstance(v, dict) else v for v in value]
        return count_field(value, model, tokens)
