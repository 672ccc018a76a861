"""Output guardrails over events: the request's `OutputScanner` applied to each choice's text and each
tool call's arguments. Streamed text goes through the scanner's `feed` (which may hold some back);
what it holds is released (`flush`) as one more event before the part ends (`PartEnd`), before the
choice finishes (`Finish`), or when the upstream finishes. A whole answer's texts are scanned whole
(`WholeOutputGuard`)."""

from __future__ import annotations

from gateway.events import Event, Finish, PartEnd, TextDelta, ToolCallDelta
from gateway.filters import Filter
from gateway.guardrails.output_scan import OutputScanner


class Signed:
    """Signed text of one choice (Anthropic thinking): scanned as its own stream, which may hold text back
    and release it in other pieces, but whose released text must be exactly what was fed: a rewrite
    (redaction, pseudonym restoration) would break the block's signature, so it refuses the answer."""

    __slots__ = ("pending",)

    def __init__(self) -> None:
        self.pending = ""  # fed and not yet released: at most the scanner's hold-back

    def check(self, scanner: OutputScanner, out: str) -> str:
        if out:
            if not self.pending.startswith(out):
                raise scanner.refuse_signed()
            self.pending = self.pending[len(out):]
        return out


class OutputGuard(Filter):
    __slots__ = ("scanner", "_text", "_fed", "_signed")

    def __init__(self, scanner: OutputScanner) -> None:
        self.scanner = scanner
        self._text: set[int] = set()  # choices with text fed and not yet flushed
        self._fed: set[int] = set()  # choices with text or tool arguments fed
        self._signed: dict[int, Signed] = {}  # choices with signed text fed and not yet flushed

    def on_text(self, ev: TextDelta) -> None:
        if ev.text:
            choice = ev.choice
            self._fed.add(choice)
            if ev.signed:
                signed = self._signed.get(choice) or self._signed.setdefault(choice, Signed())
                signed.pending += ev.text
                ev.text = signed.check(self.scanner, self.scanner.feed(("signed", choice), ev.text))  # type: ignore[arg-type]
                return
            self._text.add(choice)
            ev.text = self.scanner.feed(choice, ev.text)

    def on_tool(self, ev: ToolCallDelta) -> None:
        if ev.arguments:
            self._fed.add(ev.choice)
            ev.arguments = self.scanner.feed_tool_args(ev.choice, ev.index, ev.arguments)

    def on_part_end(self, ev: PartEnd | Finish) -> list[Event]:
        out: list[Event] = []
        if isinstance(ev, PartEnd):
            self._flush_part(ev.choice, ev.tool, out)
        else:
            self._flush_choice(ev.choice, out)
        return out

    def _flush_part(self, choice: int, tool: int | None, out: list[Event]) -> None:
        if tool is None and choice in self._signed:
            signed = self._signed.pop(choice)
            rest = signed.check(self.scanner, self.scanner.flush(("signed", choice)))  # type: ignore[arg-type]
            if rest:
                out.append(TextDelta(choice, rest, signed=True))
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


class WholeOutputGuard(Filter):
    """A whole answer: each text and each tool call's arguments scanned whole; nothing is held."""

    __slots__ = ("scanner",)

    def __init__(self, scanner: OutputScanner) -> None:
        self.scanner = scanner

    def on_text(self, ev: TextDelta) -> None:
        if ev.signed:
            if self.scanner.scan_text(ev.text, ev.choice) != ev.text:
                raise self.scanner.refuse_signed()
            return
        ev.text = self.scanner.scan_text(ev.text, ev.choice)

    def on_tool(self, ev: ToolCallDelta) -> None:
        if ev.arguments:
            ev.arguments = self.scanner.scan_tool_args(ev.arguments)
