"""Finish reasons for a traced request's span (`gen_ai.response.finish_reasons`): composed only when
the request is traced, so an untraced request's chain has no such filter."""

from __future__ import annotations

from gateway.context import TraceMarks
from gateway.events import Event, Finish, PartEnd
from gateway.filters import Filter


class FinishReasons(Filter):
    __slots__ = ("marks",)

    def __init__(self, marks: TraceMarks) -> None:
        self.marks = marks

    def on_part_end(self, ev: PartEnd | Finish) -> list[Event]:
        if isinstance(ev, Finish):
            self.marks.finish_reason(ev.reason)
        return []
