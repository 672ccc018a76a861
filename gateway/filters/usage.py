"""Usage: what the upstream reported, or, when it reported no final usage (a client gone, an upstream
failed or cut, a server without usage support), the prompt estimate plus the streamed text counted
with tiktoken (marked estimated). A partial report (Anthropic's message_start) still gives the real
input count."""

from __future__ import annotations

from collections.abc import Callable

from gateway.apis.registry import APIS
from gateway.context import RequestContext, Usage
from gateway.events import TextDelta, ToolCallDelta, UsageReport
from gateway.filters import Filter


def count_output(ctx: RequestContext, text: str) -> Usage:
    """Usage counted with tiktoken: the reservation's prompt estimate plus the text actually streamed."""
    counter = ctx.runtime.tokens
    model = ctx.target.model if ctx.target else ""
    # The estimate exists when limits needed it; otherwise count the prompt now (a rare path).
    prompt = ctx.prompt_tokens_estimate or (APIS[ctx.api].count_prompt(ctx.body, model, counter) if ctx.body else 0)
    return Usage(input_tokens=prompt, output_tokens=counter.count_text(text, model) if text else 0,
                 cached_tokens=0, estimated=True)


class UsageFallback(Filter):
    __slots__ = ("ctx", "text_of", "parts", "report", "complete", "settled")

    def __init__(self, ctx: RequestContext, text_of: Callable[[bytes], str]) -> None:
        self.ctx = ctx
        self.text_of = text_of  # the wire's text in a raw event the fast lane relayed unread
        self.parts: list[str | bytes] = []  # streamed text (or raw events), counted only if no usage comes
        self.report: Usage | None = None
        self.complete = False
        self.settled = False  # close() ran: the relay closes a stream's pipe before the record and again at the end

    def on_text(self, ev: TextDelta) -> None:
        if not self.complete:
            self.parts.append(ev.text)

    def on_tool(self, ev: ToolCallDelta) -> None:
        if not self.complete:
            self.parts.append(ev.arguments)

    def on_usage(self, ev: UsageReport) -> None:
        if not self.complete:
            self.report = ev.usage
            if ev.complete:
                self.complete = True
                self.parts.clear()

    def close(self) -> None:
        if self.settled:
            return
        self.settled = True
        if self.complete and self.report is not None:
            self.ctx.usage = self.report
            return
        text = "".join(p if isinstance(p, str) else self.text_of(p) for p in self.parts)
        usage = count_output(self.ctx, text)
        if self.report is not None and self.report.input_tokens:
            r = self.report
            usage.input_tokens, usage.cached_tokens, usage.cache_write_tokens = (
                r.input_tokens, r.cached_tokens, r.cache_write_tokens)
        self.ctx.usage = usage
