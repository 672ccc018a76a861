"""First-token timing: when the client gets its first text or tool call (after guardrails held back
what they hold)."""

from __future__ import annotations

from gateway.context import RequestContext
from gateway.events import Event, TextDelta, ToolCallDelta
from gateway.filters import Filter


class FirstToken(Filter):
    __slots__ = ("ctx",)

    def __init__(self, ctx: RequestContext) -> None:
        self.ctx = ctx

    def on_events(self, events: list[Event]) -> list[Event]:
        if self.ctx.timings.first_token:
            return events
        for ev in events:
            if isinstance(ev, TextDelta) and ev.text or isinstance(ev, ToolCallDelta):
                self.ctx.mark_first_token()
                break
        return events
