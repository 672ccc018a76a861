"""The request's filter chain, composed once per request from its policy.

Per upstream event the chain dispatches each event by kind to flat tuples of the bound hooks that
handle it (built once); an event that ends a part or a choice (rare) goes through the filters one
after another, so what one filter releases before it passes through the filters after it."""

from __future__ import annotations

from collections.abc import Callable

from gateway.context import RequestContext
from gateway.events import Event, Finish, PartEnd, Raw, TextDelta, ToolCallDelta, UsageReport
from gateway.filters import Filter, handles
from gateway.filters.guardrails import OutputGuard, WholeOutputGuard
from gateway.filters.timing import FirstToken
from gateway.filters.usage import UsageFallback
from gateway.guardrails.engine import OutputScanner


class Chain:
    __slots__ = ("filters", "usage", "_text", "_tool", "_usage", "_part_end")

    def __init__(self, filters: list[Filter], usage: UsageFallback) -> None:
        self.filters = filters
        self.usage = usage  # the usage filter: the fast lane keeps raw events in it
        self._bind()

    def _bind(self) -> None:
        fs = self.filters
        self._text = tuple(f.on_text for f in fs if handles(f, "on_text"))
        self._tool = tuple(f.on_tool for f in fs if handles(f, "on_tool"))
        self._usage = tuple(f.on_usage for f in fs if handles(f, "on_usage"))
        self._part_end = any(handles(f, "on_part_end") for f in fs)

    def drop(self, f: Filter) -> None:
        """`f` has nothing more to do for this request (first-token timing once it fired)."""
        if f in self.filters:
            self.filters = [g for g in self.filters if g is not f]
            self._bind()

    @classmethod
    def compose(cls, ctx: RequestContext, scanner: OutputScanner | None, text_of: Callable[[bytes], str], *,
                whole: bool = False) -> Chain:
        """The request's filters, in order (see gateway.filters)."""
        usage = UsageFallback(ctx, text_of)
        filters: list[Filter] = [usage]
        if scanner is not None:
            filters.append(WholeOutputGuard(scanner) if whole else OutputGuard(scanner))
        chain = cls(filters, usage)
        if not whole and not ctx.timings.first_token:
            chain.filters.append(FirstToken(ctx, chain.drop))
            chain._bind()
        return chain

    def run(self, events: list[Event]) -> list[Event]:
        for i, ev in enumerate(events):
            if isinstance(ev, Raw):  # the upstream event itself: for the encoder only
                continue
            if isinstance(ev, TextDelta):
                for on_text in self._text:
                    on_text(ev)
            elif isinstance(ev, ToolCallDelta):
                for on_tool in self._tool:
                    on_tool(ev)
            elif isinstance(ev, UsageReport):
                for on_usage in self._usage:
                    on_usage(ev)
            elif self._part_end and (isinstance(ev, PartEnd) or isinstance(ev, Finish)):
                # Events before i went through every filter already; the rest go filter by filter.
                rest = events[i:]
                for f in self.filters:
                    rest = _through(f, rest)
                return events[:i] + rest
        return events

    def end(self, events: list[Event]) -> list[Event]:
        """The upstream finished: its last events, then what each filter still holds, through the rest.
        A filter is not called with no events, nor for `on_end` when it does not hold anything back."""
        for f in list(self.filters):
            if events:
                events = _through(f, events)
            if handles(f, "on_end"):
                events += f.on_end()
        return events

    def close(self) -> None:
        for f in self.filters:
            if handles(f, "close"):
                f.close()


def _through(f: Filter, events: list[Event]) -> list[Event]:
    """`events` through one filter's hooks, with what it releases before each part's or choice's end."""
    text, tool, usage, part_end = (handles(f, "on_text"), handles(f, "on_tool"), handles(f, "on_usage"),
                                   handles(f, "on_part_end"))
    out: list[Event] = []
    for ev in events:
        if isinstance(ev, TextDelta):
            if text:
                f.on_text(ev)
        elif isinstance(ev, ToolCallDelta):
            if tool:
                f.on_tool(ev)
        elif isinstance(ev, UsageReport):
            if usage:
                f.on_usage(ev)
        elif part_end and (isinstance(ev, PartEnd) or isinstance(ev, Finish)):
            out += f.on_part_end(ev)
        out.append(ev)
    return out
