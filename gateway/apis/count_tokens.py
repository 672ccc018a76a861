"""Anthropic's token counting (`POST /v1/messages/count_tokens`): a Messages body without `max_tokens`,
never streamed. Auth, the model allow-list, rate limits (rpm, and tpm by the prompt estimate) and input
guardrails apply as for Messages (so redacted text is what gets counted, and nothing is sent to the
provider that a Messages request could not send); it generates nothing and costs nothing, so budgets
neither reserve for it nor refuse it, and its record carries no usage."""

from __future__ import annotations

from gateway.apis import fields as f
from gateway.apis.json_types import JsonObject
from gateway.apis.messages import MessagesSpec


class CountTokensSpec(MessagesSpec):
    name = "count_tokens"
    requires_max_tokens = False
    scans_output = False
    generates = False
    billed = False

    def validate(self, body: JsonObject) -> None:
        f.require(not body.get("stream", False), "token counting cannot be streamed", "stream")
        super().validate(body)

    def max_output_tokens(self, body: JsonObject) -> int | None:
        return 0
