"""The request's filter chain, composed once per request from its policy."""

from __future__ import annotations

from collections.abc import Callable

from gateway.context import RequestContext
from gateway.events import Event
from gateway.filters import Filter
from gateway.filters.guardrails import OutputGuard
from gateway.filters.timing import FirstToken
from gateway.filters.usage import UsageFallback
from gateway.guardrails.engine import OutputScanner


class Chain:
    __slots__ = ("filters", "usage", "_on_events")

    def __init__(self, filters: list[Filter], usage: UsageFallback) -> None:
        self.filters = filters
        self.usage = usage  # the usage filter: the fast lane keeps raw events in it
        self._on_events = [f.on_events for f in filters]  # bound once: run() is called per upstream event

    @classmethod
    def compose(cls, ctx: RequestContext, scanner: OutputScanner | None, text_of: Callable[[bytes], str], *,
                whole: bool = False) -> Chain:
        """The request's filters, in order (see gateway.filters)."""
        usage = UsageFallback(ctx, text_of)
        filters: list[Filter] = [usage]
        if scanner is not None:
            filters.append(OutputGuard(scanner, whole=whole))
        if not whole:
            filters.append(FirstToken(ctx))
        return cls(filters, usage)

    def run(self, events: list[Event]) -> list[Event]:
        for on_events in self._on_events:
            events = on_events(events)
        return events

    def end(self, events: list[Event]) -> list[Event]:
        """The upstream finished: its last events, then what each filter still holds, through the rest.
        A filter is not called with no events, nor for `on_end` when it does not hold anything back."""
        for f in self.filters:
            if events:
                events = f.on_events(events)
            if type(f).on_end is not _HOLDS_NOTHING:
                events += f.on_end()
        return events

    def close(self) -> None:
        for f in self.filters:
            if type(f).close is not _NOTHING_TO_CLOSE:
                f.close()


_HOLDS_NOTHING = Filter.on_end
_NOTHING_TO_CLOSE = Filter.close
