"""The slow (NER) tier, run off the event loop within the rules' time bound, for input and output.

Input: `slow_findings` runs every slow rule over the request's texts in one executor call.

Output: before the (synchronous) filter chain sees a stream event's text, the pipe awaits
`OutputScanner.prepare(events)`, which runs NER in an executor over exactly the window the stream
scanner will scan for that text (its held tail plus the released left context plus the new text), and
stores the findings in stream coordinates (`StreamScanner.slow_found`). The scanner's release then
adds them to the fast tier's spans, so a name split across chunks is held back by the names hold-back
and redacted whole, within the same hold-back bound. A whole answer's texts are prepared the same way,
keyed by text.

Budget: one executor call per upstream event that carries text while NER applies to the output
(spaCy's small model over a window of <= hold-back + 64 + chunk characters: ~1-3 ms of CPU in a
worker thread), bounded by the rule's `ner_timeout_ms`; a timeout or error fails as the rule's
`on_error` says (closed: the stream ends with an error event; open: the fast tier only, recorded).
benchmarks/ner_stream.py measures the added time to first token and inter-chunk p99.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from gateway.events import Event, TextDelta, ToolCallDelta
from gateway.guardrails.pii import Finding
from gateway.guardrails.policy import SpanGuard

Slow = Sequence[tuple[int, SpanGuard]]  # (plan index, rule with an NER tier)
Extras = dict[int, list[Finding]]  # findings by plan index


class SlowTierFailed(Exception):
    """The NER tier raised or ran past its bound; `closed` holds the rules that must then refuse."""

    def __init__(self, closed: list[SpanGuard], cause: BaseException) -> None:
        super().__init__(type(cause).__name__)
        self.closed = closed


def timeout_of(slow: Slow) -> float:
    return max(g.ner_timeout for _, g in slow)


async def slow_findings(slow: Slow, texts: Sequence[str]) -> list[Extras]:
    """Each text's findings by plan index, from one executor call bounded by the rules' timeout.

    Raises SlowTierFailed on any error or timeout."""

    def run() -> list[Extras]:
        return [{i: g.detect_slow(t) for i, g in slow} for t in texts]

    loop = asyncio.get_running_loop()
    try:
        return await asyncio.wait_for(loop.run_in_executor(None, run), timeout_of(slow))
    except Exception as exc:
        raise SlowTierFailed([g for _, g in slow if g.rule.on_error == "closed"], exc) from exc


def shift(extras: Extras, offset: int) -> Extras:
    """Findings moved by `offset` characters (window -> stream coordinates and back)."""
    return {i: [Finding(f.start + offset, f.end + offset, f.entity_type, f.score) for f in found]
            for i, found in extras.items() if found}


def in_window(found: Extras, base: int, n: int) -> Extras | None:
    """Stream-coordinate findings as spans of the window starting at `base` of length `n`, clipped to
    it: a finding reaching past the window's end (its text is still to be fed) touches the end, so the
    scanner holds it back until it is whole."""
    out: Extras = {}
    for i, spans in found.items():
        kept = []
        for f in spans:
            start, end = max(f.start - base, 0), min(f.end - base, n)
            if start < end:
                kept.append(Finding(start, end, f.entity_type, f.score))
        if kept:
            out[i] = kept
    return out or None


def new_texts(events: Sequence[Event]) -> dict[tuple[bool, object], str]:
    """The text each stream channel gets from `events`, by (tool arguments?, channel key): a choice's
    text or a tool call's arguments, its pieces in one batch joined so one NER call covers each feed."""
    new: dict[tuple[bool, object], str] = {}
    for ev in events:
        if isinstance(ev, TextDelta) and ev.text:
            key: tuple[bool, object] = (False, ev.choice)
            new[key] = new.get(key, "") + ev.text
        elif isinstance(ev, ToolCallDelta) and ev.arguments:
            key = (True, (ev.choice, ev.index))
            new[key] = new.get(key, "") + ev.arguments
    return new
