"""The request's filter chain, composed once per request from its policy.

Per upstream event the chain dispatches each event by kind to flat tuples of the bound hooks that
handle it (built once); an event that ends a part or a choice (rare) goes through the filters one
after another, so what one filter releases before it passes through the filters after it."""

from __future__ import annotations

from collections.abc import Callable

from gateway.context import RequestContext
from gateway.events import Event, Finish, PartEnd, TextDelta, ToolCallDelta, UsageReport
from gateway.filters import Filter, hooks
from gateway.filters.answer import AnswerText
from gateway.filters.guardrails import OutputGuard, WholeOutputGuard
from gateway.filters.timing import FirstToken
from gateway.filters.trace import FinishReasons
from gateway.filters.usage import UsageFallback
from gateway.guardrails.output_scan import OutputScanner


class Chain:
    __slots__ = ("filters", "usage", "first", "_text", "_tool", "_usage", "_part_end")

    def __init__(self, filters: list[Filter], usage: UsageFallback, first: FirstToken | None) -> None:
        self.filters = filters
        self.usage = usage  # the usage filter: the fast lane keeps raw events in it
        self.first = first  # first-token timing, after every filter; None once it fired
        self._bind()

    def _bind(self) -> None:
        text: list[Callable[[TextDelta], None]] = []
        tool: list[Callable[[ToolCallDelta], None]] = []
        usage: list[Callable[[UsageReport], None]] = []
        part_end = False
        for f in self.filters:
            has = hooks(f)
            if "on_text" in has:
                text.append(f.on_text)
            if "on_tool" in has:
                tool.append(f.on_tool)
            if "on_usage" in has:
                usage.append(f.on_usage)
            part_end = part_end or "on_part_end" in has
        self._text, self._tool, self._usage, self._part_end = tuple(text), tuple(tool), tuple(usage), part_end

    @classmethod
    def compose(cls, ctx: RequestContext, scanner: OutputScanner | None, text_of: Callable[[bytes], str], *,
                whole: bool = False) -> Chain:
        """The request's filters, in order (see gateway.filters)."""
        usage = UsageFallback(ctx, text_of)
        filters: list[Filter] = [usage]
        if ctx.cache_fill is not None:  # before output guardrails: the answer as the upstream sent it
            filters.append(ctx.cache_fill)
        if scanner is not None:
            filters.append(WholeOutputGuard(scanner) if whole else OutputGuard(scanner))
        if ctx.trace is not None:
            filters.append(FinishReasons(ctx.trace))
        if ctx.answer is not None:  # a shadow pair's side: what the client gets, for the comparison
            filters.append(AnswerText(ctx.answer))
        return cls(filters, usage, None if whole or ctx.timings.first_token else FirstToken(ctx))

    def run(self, events: list[Event]) -> list[Event]:
        for ev in events:
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
                # Events before this one went through every filter already; the rest go filter by filter.
                i = next(j for j, e in enumerate(events) if e is ev)
                rest = events[i:]
                for f in self.filters:
                    rest = _through(f, rest)
                events = events[:i] + rest
                break
        if self.first is not None and self.first.seen(events):
            self.first = None
        return events

    def end(self, events: list[Event]) -> list[Event]:
        """The upstream finished: its last events, then what each filter still holds, through the rest.
        A filter is not called with no events, nor for `on_end` when it does not hold anything back."""
        for f in self.filters:
            if events:
                events = _through(f, events)
            if "on_end" in hooks(f):
                events += f.on_end()
        if events and self.first is not None and self.first.seen(events):
            self.first = None
        return events

    def close(self) -> None:
        for f in self.filters:
            if "close" in hooks(f):
                f.close()


def _through(f: Filter, events: list[Event]) -> list[Event]:
    """`events` through one filter's hooks, with what it releases before each part's or choice's end."""
    has = hooks(f)
    out: list[Event] = []
    for ev in events:
        if isinstance(ev, TextDelta):
            if "on_text" in has:
                f.on_text(ev)
        elif isinstance(ev, ToolCallDelta):
            if "on_tool" in has:
                f.on_tool(ev)
        elif isinstance(ev, UsageReport):
            if "on_usage" in has:
                f.on_usage(ev)
        elif "on_part_end" in has and (isinstance(ev, PartEnd) or isinstance(ev, Finish)):
            out += f.on_part_end(ev)
        out.append(ev)
    return out
