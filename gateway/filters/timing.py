"""First-token timing: when the client gets its first text or tool call (after guardrails held back
what they hold). The chain's last step rather than a hooked filter: it runs once per batch of events
until it fired, then the chain lets go of it, so it costs one attribute check per upstream event."""

from __future__ import annotations

from gateway.context import RequestContext
from gateway.events import Event, TextDelta, ToolCallDelta


class FirstToken:
    __slots__ = ("ctx",)

    def __init__(self, ctx: RequestContext) -> None:
        self.ctx = ctx

    def seen(self, events: list[Event]) -> bool:
        """Marks the first token if `events` carry one; True once it is marked (nothing more to do)."""
        if self.ctx.timings.first_token:
            return True
        for ev in events:
            if isinstance(ev, TextDelta) and ev.text or isinstance(ev, ToolCallDelta):
                self.ctx.mark_first_token()
                return True
        return False
