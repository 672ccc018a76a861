"""The `ApiSpec` contract: what the gateway knows about one caller API, in one place.

The flow looks the spec up once by the route's API name (`registry.APIS[api]`, one dict access) and
asks it, in order: `error_shape` (how every refusal of this request is rendered), `validate(body)`
(before any policy, translator or provider reads the body), `max_output_tokens` and `output_choices`
(the limits reservation), `count_prompt` (the reservation's prompt estimate), `input_texts` (the text
slots input guardrails scan and rewrite, only when `scans_input`) and `scans_output` (whether output
guardrails read its answers at all).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar, Literal

from gateway.apis.json_types import JsonObject
from gateway.apis.slots import InputTexts
from gateway.tokens import Tokenizer

if TYPE_CHECKING:
    from gateway.context import RequestContext

ErrorShape = Literal["openai", "anthropic"]

# Builds the per-request encoder of neutral output events into this API's wire format. The event model
# (gateway/adapters, gateway/translate) owns the encoder type; until it lands every spec has `None` and
# the adapters encode as before.
EncoderFactory = Callable[["RequestContext"], object]


class ApiSpec(ABC):
    """One caller API. Subclasses set the class attributes and implement the three abstract methods;
    instances are stateless and shared by every request (one per API, in `registry.APIS`)."""

    name: ClassVar[str]  # the route's API name: ctx.api, the adapters' registry key
    error_shape: ClassVar[ErrorShape] = "openai"  # rendering of errors: OpenAI's {"error"} or Anthropic's
    scans_input: ClassVar[bool] = True  # input guardrails read `input_texts`
    scans_output: ClassVar[bool] = True  # answers carry text that output guardrails scan
    generates: ClassVar[bool] = True  # answers are generated tokens (limits reserve output); False: none
    billed: ClassVar[bool] = True  # False: the call costs nothing, so budgets neither reserve nor refuse it
    # Hook for the event model: the encoder factory for this API's wire format, attached by the event
    # encoders' module (one per API). None means "the adapters encode"; nothing reads it yet.
    encoder: ClassVar[EncoderFactory | None] = None

    @abstractmethod
    def validate(self, body: JsonObject) -> None:
        """Refuse a body the gateway cannot serve: raise `BadRequest` whose `param` is the path to the
        first wrong field. Checks every field any later stage reads (policies, translators, providers,
        the mock), so that an exception from those stages is a gateway bug, never the caller's."""

    @abstractmethod
    def walk_input(self, body: JsonObject, out: InputTexts) -> None:
        """Add each scannable input string of a validated body to `out` as a slot, and the size of
        everything it cannot scan (images, audio, token ids, signed blocks) as unscanned."""

    @abstractmethod
    def count_prompt(self, body: JsonObject, model: str | None, tokens: Tokenizer) -> int:
        """tiktoken estimate of the body's prompt tokens with `model`'s encoding (limits and budgets
        reserve it before the call; usage falls back on it when the upstream reports none)."""

    def input_texts(self, body: JsonObject) -> InputTexts:
        out = InputTexts()
        self.walk_input(body, out)
        return out

    def max_output_tokens(self, body: JsonObject) -> int | None:
        """The caller's cap on output tokens per answer, None when it sets none."""
        return None

    def output_choices(self, body: JsonObject) -> int:
        """How many answers the request asks for; each may use `max_output_tokens`."""
        return 1
