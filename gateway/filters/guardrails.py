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
        scanner = self.scanner
        out: list[Event] = []
        for ev in events:
            kind = type(ev)
            if kind is TextDelta:
                if self.whole:
                    ev.text = scanner.scan_text(ev.text, ev.choice)  # type: ignore[union-attr]
                elif ev.text:  # type: ignore[union-attr]
                    self._text.add(ev.choice)  # type: ignore[union-attr]
                    self._fed.add(ev.choice)  # type: ignore[union-attr]
                    ev.text = scanner.feed(ev.choice, ev.text)  # type: ignore[union-attr]
            elif kind is ToolCallDelta:
                args = ev.arguments  # type: ignore[union-attr]
                if args:
                    self._fed.add(ev.choice)  # type: ignore[union-attr]
                    ev.arguments = (scanner.scan_tool_args(args) if self.whole  # type: ignore[union-attr]
                                    else scanner.feed_tool_args(ev.choice, ev.index, args))  # type: ignore[union-attr]
            elif kind is PartEnd:
                self._flush_part(ev.choice, ev.tool, out)  # type: ignore[union-attr]
            elif kind is Finish and not self.whole:
                self._flush_choice(ev.choice, out)  # type: ignore[union-attr]
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
