"""First-token timing: when the client gets its first text or tool call (after guardrails held back
what they hold). Once it fired it leaves the chain, so it costs nothing for the rest of the stream."""

from __future__ import annotations

from collections.abc import Callable

from gateway.context import RequestContext
from gateway.events import TextDelta, ToolCallDelta
from gateway.filters import Filter


class FirstToken(Filter):
    __slots__ = ("ctx", "done")

    def __init__(self, ctx: RequestContext, done: Callable[[Filter], None]) -> None:
        self.ctx = ctx
        self.done = done  # takes this filter out of the chain

    def on_text(self, ev: TextDelta) -> None:
        if ev.text:
            self.ctx.mark_first_token()
            self.done(self)

    def on_tool(self, ev: ToolCallDelta) -> None:
        self.ctx.mark_first_token()
        self.done(self)
