"""Answer capture: the first choice's text as the client gets it (after output guardrails) and its
finish reason, into the context's `AnswerSink`. Composed only for requests that need the text (a shadow
pair's primary and its shadow copy), so it never costs the pass-through path anything."""

from __future__ import annotations

from gateway.events import Event, Finish, PartEnd, TextDelta
from gateway.filters import Filter
from gateway.shadow.pair import AnswerSink


class AnswerText(Filter):
    __slots__ = ("sink",)

    def __init__(self, sink: AnswerSink) -> None:
        self.sink = sink

    def on_text(self, ev: TextDelta) -> None:
        if ev.choice == 0:
            self.sink.add(ev.text)

    def on_part_end(self, ev: PartEnd | Finish) -> list[Event]:
        if isinstance(ev, Finish) and ev.choice == 0:
            self.sink.finish = ev.reason
        return []
