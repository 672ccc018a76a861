"""Cache fill: collects a miss's answer for the response cache (gateway.cache), before output
guardrails and so before pseudonyms are restored. It copies events (guardrails after it rewrite text in
place) and stops collecting once the answer outgrows the rule's `max_entry_bytes`; the flow stores what
it collected only when the answer completed (gateway.cache.request). An answer with signed text (an
Anthropic thinking block) is not kept: a replay could not carry its signature."""

from __future__ import annotations

from gateway.events import Event, Finish, PartEnd, TextDelta, ToolCallDelta
from gateway.filters import Filter


class CacheFill(Filter):
    __slots__ = ("events", "limit", "size", "over")

    def __init__(self, limit: int) -> None:
        self.events: list[Event] = []
        self.limit = limit
        self.size = 0
        self.over = False  # too big to keep: nothing more is collected

    def reset(self) -> None:
        """Forget what was collected: the answer failed before its content and another target answers
        instead (gateway.http.commit)."""
        self.events.clear()
        self.size = 0
        self.over = False

    def _add(self, ev: Event, size: int) -> None:
        self.size += size
        if self.size > self.limit:
            self.over = True
            self.events.clear()
        else:
            self.events.append(ev)

    def on_text(self, ev: TextDelta) -> None:
        if ev.signed:  # signed thinking: a hit could not reproduce its signature, so the answer is not kept
            self.over = True
            self.events.clear()
        elif not self.over and ev.text:
            self._add(TextDelta(ev.choice, ev.text), len(ev.text))

    def on_tool(self, ev: ToolCallDelta) -> None:
        if not self.over:
            self._add(ToolCallDelta(ev.choice, ev.index, ev.id, ev.name, ev.arguments),
                      len(ev.arguments) + len(ev.name or "") + 16)

    def on_part_end(self, ev: PartEnd | Finish) -> list[Event]:
        if not self.over:
            self.events.append(ev)
        return []
