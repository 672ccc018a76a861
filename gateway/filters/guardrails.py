"""Output guardrails over events: the request's `OutputScanner` applied to each choice's text and each
tool call's arguments. Streamed text goes through the scanner's `feed` (which may hold some back);
what it holds is released (`flush`) as one more event before the part ends (`PartEnd`), before the
choice finishes (`Finish`), or when the upstream finishes. A whole answer's texts are scanned whole."""

from __future__ import annotations

from gateway.events import Event, Finish, PartEnd, TextDelta, ToolCallDelta
from gateway.filters import Filter
from gateway.guardrails.engine import OutputScanner


class OutputGuard(Filter):
    __slots__ = ("scanner", "whole", "_text", "_fed")

    def __init__(self, scanner: OutputScanner, *, whole: bool = False) -> None:
        self.scanner = scanner
        self.whole = whole
        self._text: set[int] = set()  # choices with text fed and not yet flushed
        self._fed: set[int] = set()  # choices with text or tool arguments fed

    def on_events(self, events: list[Event]) -> list[Event]:
        # Text and tool arguments are rewritten in place; only a part's or a choice's end adds events
        # (what was held back), and only then is a new list made.
        for i, ev in enumerate(events):
            if isinstance(ev, TextDelta):  # narrows for the type checker; as fast as `type(ev) is`
                if ev.text and not self.whole:  # a streamed piece (inlined: it runs for every chunk)
                    choice = ev.choice
                    self._text.add(choice)
                    self._fed.add(choice)
                    ev.text = self.scanner.feed(choice, ev.text)
                else:
                    self._text_delta(ev)
            elif isinstance(ev, ToolCallDelta):
                self._tool_delta(ev)
            elif isinstance(ev, PartEnd) or isinstance(ev, Finish) and not self.whole:
                return self._with_flushes(events, i)
        return events

    def _text_delta(self, ev: TextDelta) -> None:
        if self.whole:
            ev.text = self.scanner.scan_text(ev.text, ev.choice)
        elif ev.text:
            self._text.add(ev.choice)
            self._fed.add(ev.choice)
            ev.text = self.scanner.feed(ev.choice, ev.text)

    def _tool_delta(self, ev: ToolCallDelta) -> None:
        args = ev.arguments
        if args:
            self._fed.add(ev.choice)
            ev.arguments = (self.scanner.scan_tool_args(args) if self.whole
                            else self.scanner.feed_tool_args(ev.choice, ev.index, args))

    def _with_flushes(self, events: list[Event], start: int) -> list[Event]:
        """`events` from `start` on, with what is held back released before each part's or choice's end."""
        out = events[:start]
        for ev in events[start:]:
            if isinstance(ev, TextDelta):
                self._text_delta(ev)
            elif isinstance(ev, ToolCallDelta):
                self._tool_delta(ev)
            elif isinstance(ev, PartEnd):
                self._flush_part(ev.choice, ev.tool, out)
            elif isinstance(ev, Finish) and not self.whole:
                self._flush_choice(ev.choice, out)
            out.append(ev)
        return out

    def _flush_part(self, choice: int, tool: int | None, out: list[Event]) -> None:
        if tool is None:
            if choice in self._text:
                self._text.discard(choice)
                rest = self.scanner.flush(choice)
                if rest:
                    out.append(TextDelta(choice, rest))
        elif tool in self.scanner.open_tool_calls(choice):
            args = self.scanner.flush_tool_args(choice, tool)
            if args:
                out.append(ToolCallDelta(choice, tool, arguments=args))

    def _flush_choice(self, choice: int, out: list[Event]) -> None:
        """A choice's end: its text, then each tool call's arguments still held back."""
        self._flush_part(choice, None, out)
        for call in self.scanner.open_tool_calls(choice):
            self._flush_part(choice, call, out)

    def on_end(self) -> list[Event]:
        out: list[Event] = []
        for choice in sorted(self._fed):
            self._flush_choice(choice, out)
        return out
