"""Usage read from provider payloads, or counted by the gateway when the provider gives none."""

from __future__ import annotations

from gateway.apis.registry import APIS
from gateway.context import RequestContext, Usage


def openai_usage(u: dict) -> Usage:
    details = u.get("prompt_tokens_details") or {}
    return Usage(
        input_tokens=int(u.get("prompt_tokens") or u.get("input_tokens") or 0),
        output_tokens=int(u.get("completion_tokens") or u.get("output_tokens") or 0),
        cached_tokens=int(details.get("cached_tokens") or 0),
    )


def count_output(ctx: RequestContext, text: str) -> Usage:
    """Usage counted with tiktoken: the reservation's prompt estimate plus the text actually streamed.
    Used when a stream ends without a usage chunk (client gone, upstream failed, no support)."""
    counter = ctx.runtime.tokens
    model = ctx.target.model if ctx.target else ""
    # The estimate exists when limits needed it; otherwise count the prompt now (a rare path).
    prompt = ctx.prompt_tokens_estimate or (APIS[ctx.api].count_prompt(ctx.body, model) if ctx.body else 0)
    return Usage(input_tokens=prompt, output_tokens=counter.count_text(text, model) if text else 0,
                 cached_tokens=0, estimated=True)
