"""The model list (`GET /v1/models`): no body, so nothing to check, scan or count; the spec gives the
request its error shape like any other API's."""

from __future__ import annotations

from gateway.apis.base import ApiSpec
from gateway.apis.json_types import JsonObject
from gateway.apis.slots import InputTexts
from gateway.tokens import Tokenizer


class ModelsSpec(ApiSpec):
    name = "models"
    scans_input = False
    scans_output = False

    def validate(self, body: JsonObject) -> None:
        pass  # a GET: there is no body

    def walk_input(self, body: JsonObject, out: InputTexts) -> None:
        pass

    def count_prompt(self, body: JsonObject, model: str | None, tokens: Tokenizer) -> int:
        return 0
