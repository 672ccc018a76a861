"""Span scanning shared by input rewriting and the streaming output scanner, with a bounded hold-back.

`SpanPlan` applies a request's span rules (pii, secrets, deny_list) and pseudonym restoration together
in one pass over a text: every rule detects on the same original text, overlapping edits are resolved
once, and each kept span gets its own rule's action.

`StreamScanner` runs a plan over streamed text, one independent channel per choice (and per tool-call
argument stream). Each channel keeps one raw `window`: a little already-released text, left context for
the detectors, then the unreleased tail. On every feed it detects over the window and releases up to
the first position where a span could still be completing (the detectors' `may_continue`, any span
touching the end, any span crossing the cut). So an entity split over any chunk boundary is edited
exactly as if unsplit, and the unreleased tail never exceeds the plan's bound: a candidate still
growing past it is released as `<REDACTED>` (fail closed) when any rule edits text.

`scan_whole` runs a plan over a text known whole (input texts, non-streamed answers) in one pass: the
reference a stream of the same text must equal.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import orjson

from gateway.guardrails.actions import PLACEHOLDER, PLACEHOLDER_MAX_LEN, Pseudonyms
from gateway.guardrails.pii import Finding, _first_disjoint
from gateway.guardrails.pii.holdback import HoldBack
from gateway.guardrails.policy import SpanGuard
from gateway.guardrails.slow_tier import in_window

log = logging.getLogger(__name__)
RESTORE = -1  # Hit.guard of a pseudonym placeholder to restore
OVERFLOW_LABEL = "<REDACTED>"
CONTEXT_CHARS = 64  # released raw text kept as left context (word boundaries, look-behinds)
_PARTIAL_PLACEHOLDER = re.compile(r"<(?:[A-Z][A-Z_]*(?:_[0-9]{0,6})?)?\Z")


class GuardFailed(Exception):
    """A detector of a rule with on_error = "closed" raised; the request must not pass unscanned."""

    def __init__(self, guard: SpanGuard) -> None:
        super().__init__(guard.id)
        self.guard = guard


@dataclass(frozen=True, slots=True)
class Hit:
    start: int
    end: int
    entity_type: str
    score: float
    guard: int  # index into SpanPlan.guards, or RESTORE


@dataclass(slots=True)
class Found:
    """One pass over one text: spans to rewrite (non-overlapping, sorted) and spans only noted."""

    edits: list[Hit]
    flags: list[Hit]
    blocks: list[Hit]

    def all(self) -> list[Hit]:
        return sorted(self.edits + self.flags + self.blocks, key=lambda h: (h.start, h.end))


class SpanPlan:
    """The span rules acting on one direction of one request, applied together.

    Everything but `pseudonyms` and `failed` depends on the rules alone, so the engine builds a plan once
    per rule selection and `bind`s a copy to each request.
    """

    __slots__ = ("guards", "pseudonyms", "restore", "json_escape_restored", "bound", "edits_text", "failed",
                 "_buckets", "_suffix", "_other_holds", "_shared")

    def __init__(
        self,
        guards: Sequence[SpanGuard],
        pseudonyms: Pseudonyms | None = None,
        *,
        restore: bool = False,
        json_escape_restored: bool = False,
    ) -> None:
        self.guards = tuple(guards)
        self.pseudonyms = pseudonyms  # input: filled by pseudonymize rules; output: read to restore
        self.restore = restore
        self.json_escape_restored = json_escape_restored
        self.bound = max([g.hold_back for g in self.guards] + [PLACEHOLDER_MAX_LEN if restore else 0])
        self.edits_text = any(g.action.changes_text for g in self.guards)
        self.failed: set[int] = set()  # rules with on_error = "open" whose detector raised
        # Which list of a Found each rule's spans go to: 0 edits, 1 flags, 2 blocks.
        self._buckets = tuple(2 if g.action.kind == "block" else 1 if g.action.kind == "flag" else 0
                              for g in self.guards)
        # The growing-suffix rules answer together; any other rule's may_continue is asked on its own.
        specs = [getattr(g, "hold_spec", None) for g in self.guards]
        self._suffix = HoldBack(spec for spec in specs if spec is not None)
        self._other_holds = tuple(g.may_continue for g, spec in zip(self.guards, specs) if spec is None)
        # One detection pass every rule filters (the fast-tier PII rules of a config): when it finds
        # nothing, no rule has a span and find() asks none of them.
        shared = {getattr(g, "shared", None) for g in self.guards}
        self._shared = shared.pop() if len(shared) == 1 else None

    def bind(self, pseudonyms: Pseudonyms | None) -> SpanPlan:
        """This plan for one request: the same rules, that request's pseudonyms, no failures yet."""
        plan = object.__new__(SpanPlan)
        plan.guards = self.guards
        plan.pseudonyms = pseudonyms
        plan.restore = self.restore
        plan.json_escape_restored = self.json_escape_restored
        plan.bound = self.bound
        plan.edits_text = self.edits_text
        plan.failed = set()
        plan._buckets = self._buckets
        plan._suffix = self._suffix
        plan._other_holds = self._other_holds
        plan._shared = self._shared
        return plan

    def find(self, text: str, extra: dict[int, list[Finding]] | None = None) -> Found:
        """Every rule's spans in `text`; `extra` adds spans found earlier by slow tiers, by rule index."""
        restored: list[Hit] = []
        if self.restore and self.pseudonyms and "<" in text:
            for m in PLACEHOLDER.finditer(text):
                if self.pseudonyms.original(m.group()) is not None:
                    restored.append(Hit(m.start(), m.end(), m.group(1), 1.0, RESTORE))
        if self._shared is not None and not restored and not extra and not self._shared_finds(text):
            return Found([], [], [])
        found = Found([], [], [])
        lists = (found.edits, found.flags, found.blocks)
        for i, guard in enumerate(self.guards):
            try:
                spans = guard.detect(text)
            except Exception as exc:
                if guard.rule.on_error == "closed":
                    raise GuardFailed(guard) from exc
                log.exception("guardrail %s failed; on_error = open lets the text pass", guard.id)
                self.failed.add(i)
                spans = []
            if extra and i in extra:
                spans = list(spans) + list(extra[i])
            if not spans:
                continue
            out = lists[self._buckets[i]]
            for f in spans:
                if restored and any(f.start < r.end and r.start < f.end for r in restored):
                    continue  # a placeholder of ours, not new PII
                out.append(Hit(f.start, f.end, f.entity_type, f.score, i))
        if restored:
            found.edits = _non_overlapping(restored + found.edits)
        elif len(found.edits) > 1:
            found.edits = _non_overlapping(found.edits)
        return found

    def _shared_finds(self, text: str) -> bool:
        """Whether the shared pass finds anything; True when it raised, so that the rules' own calls
        meet the error and each rule's on_error decides."""
        try:
            return bool(self._shared.detect(text))
        except Exception:
            return True

    def may_continue(self, text: str) -> int:
        cut = self._suffix.start(text) if self._suffix else len(text)
        for may_continue in self._other_holds:
            cut = min(cut, may_continue(text))
        if self.restore and self.pseudonyms:
            tail_start = max(0, len(text) - PLACEHOLDER_MAX_LEN)
            lt = text.rfind("<", tail_start)
            if lt >= 0 and _PARTIAL_PLACEHOLDER.match(text, lt):
                cut = min(cut, lt)
        return cut

    def apply(self, text: str, edits: Sequence[Hit], lo: int = 0, hi: int | None = None) -> str:
        """`text[lo:hi]` with every edit inside it replaced (edits are clipped to the range)."""
        hi = len(text) if hi is None else hi
        parts: list[str] = []
        pos = lo
        for h in edits:
            start, end = max(h.start, lo), min(h.end, hi)
            if start >= end:
                continue
            parts.append(text[pos:start])
            value = text[start:end]
            if h.guard == RESTORE:
                original = self.pseudonyms.original(value) if self.pseudonyms else None
                if original is None:
                    original = value
                elif self.json_escape_restored:
                    original = orjson.dumps(original).decode()[1:-1]
                parts.append(original)
            else:
                parts.append(self.guards[h.guard].action.replace(h.entity_type, value, self.pseudonyms))
            pos = end
        parts.append(text[pos:hi])
        return "".join(parts)


def _non_overlapping(hits: list[Hit]) -> list[Hit]:
    """Placeholders first, then the higher score, the longer span, the earlier rule (as PiiDetector does).

    O(n log n): a text of many findings (every chunk of a stream is rescanned) made the pairwise check
    against every kept span quadratic. The input is sorted in place."""
    if len(hits) < 2:
        return hits
    # Stable, so hits of one start keep their input order, the tie-break of the priority sort below.
    hits.sort(key=lambda h: h.start)
    if all(a.start < b.start and a.end <= b.start for a, b in zip(hits, hits[1:])):
        return hits  # the usual case: nothing overlaps, every hit is kept
    hits.sort(key=lambda h: (h.guard != RESTORE, -h.score, -(h.end - h.start), h.guard, h.start))
    return _first_disjoint(hits)


@dataclass(slots=True)
class _Channel:
    # Raw text: up to CONTEXT_CHARS already released (left context for detection), then the unreleased
    # rest. One string, so a feed appends to it once and detection runs on it as it is.
    window: str = ""
    released: int = 0  # how much of `window` is released context
    base: int = 0  # where `window` starts in the channel's whole text (stream coordinates)

    @property
    def held(self) -> int:
        return len(self.window) - self.released


@dataclass(slots=True)
class Tally:
    """What a scanner saw, by rule index: entity counts (never the values)."""

    counts: dict[int, Counter] = field(default_factory=dict)
    restored: int = 0
    overflow_chars: int = 0  # released by the bound before the detectors could decide

    def add(self, hits: Sequence[Hit]) -> None:
        for h in hits:
            if h.guard == RESTORE:
                self.restored += 1
            else:
                self.counts.setdefault(h.guard, Counter())[h.entity_type] += 1


OnBlock = Callable[[SpanGuard, Hit], None]  # must raise


class StreamScanner:
    """Streams text through a SpanPlan; one channel per key (a choice, or a choice's tool call)."""

    def __init__(self, plan: SpanPlan, on_block: OnBlock, tally: Tally | None = None) -> None:
        self.plan = plan
        self.on_block = on_block
        self.tally = tally if tally is not None else Tally()
        self._channels: dict[object, _Channel] = {}
        # Slow-tier (NER) findings per channel in stream coordinates, computed off the event loop
        # before the text they cover is fed (gateway.guardrails.slow_tier); empty without an NER tier.
        self.slow_found: dict[object, dict[int, list[Finding]]] = {}
        self.max_held = 0  # the most characters any channel held back after a feed (for tests, metrics)

    def held(self, key: object) -> int:
        ch = self._channels.get(key)
        return ch.held if ch else 0

    def window_of(self, key: object) -> tuple[str, int]:
        """The text the next feed of `key` scans before its new text, and where it starts in the stream."""
        ch = self._channels.get(key)
        return (ch.window, ch.base) if ch is not None else ("", 0)

    def open_keys(self) -> list:
        return [k for k, ch in self._channels.items() if ch.held]

    def feed(self, key: object, text: str) -> str:
        ch = self._channels.get(key)
        if ch is None:
            ch = self._channels[key] = _Channel()
        if not text:
            return ""
        ch.window += text
        out = self._release(ch, final=False, key=key)
        held = len(ch.window) - ch.released
        if held > self.max_held:
            self.max_held = held
        return out

    def flush(self, key: object) -> str:
        ch = self._channels.pop(key, None)
        slow = self.slow_found.pop(key, None)
        if ch is None or not ch.held:
            return ""
        return self._release(ch, final=True, slow=slow)

    def _release(self, ch: _Channel, *, final: bool, key: object = None,
                 slow: dict[int, list[Finding]] | None = None) -> str:
        plan = self.plan
        window = ch.window
        c, n = ch.released, len(window)
        if self.slow_found and key is not None:
            slow = self.slow_found.get(key)
        found = plan.find(window, in_window(slow, ch.base, n) if slow else None)
        hits = found.edits or found.flags or found.blocks
        if final:
            cut = n
        else:
            cut = plan.may_continue(window)
            if cut < c:
                cut = c
            # A span touching the end may still grow; a span crossing the cut must go out whole.
            if hits:
                for h in sorted(found.all(), key=lambda h: h.start, reverse=True):
                    if h.end > c and h.start < cut and (h.end >= n or h.end > cut):
                        cut = max(c, h.start)
        overflow = n - cut > plan.bound
        hi = n - plan.bound if overflow else cut
        if not hits:  # the usual chunk: nothing found, the released text goes out as it came
            self._keep(ch, window, hi)
            return window[c:cut] + self._overflow(window[cut:hi]) if overflow else window[c:hi]
        for h in found.blocks:
            if h.end > c and h.start < hi:
                self.on_block(plan.guards[h.guard], h)
        done = [h for h in found.edits + found.flags if h.end > c and h.start < hi]
        # Spans straddling an overflow cut are cut there; the bound wins over completeness.
        self.tally.add(done)
        edits = [h for h in found.edits if h.end > c and h.start < hi]
        if overflow:
            out = plan.apply(window, edits, c, cut) + self._overflow(window[cut:hi])
        else:
            out = plan.apply(window, edits, c, hi)
        self._keep(ch, window, hi)
        return out

    @staticmethod
    def _keep(ch: _Channel, window: str, hi: int) -> None:
        """Everything before `hi` is released: keep CONTEXT_CHARS of it and what is held."""
        keep = hi - CONTEXT_CHARS if hi > CONTEXT_CHARS else 0
        ch.window = window[keep:]
        ch.released = hi - keep
        ch.base += keep

    def _overflow(self, text: str) -> str:
        if not text:
            return ""
        self.tally.overflow_chars += len(text)
        return OVERFLOW_LABEL if self.plan.edits_text else text


def scan_whole(plan: SpanPlan, text: str, on_block: OnBlock, tally: Tally,
               extra: dict[int, list[Finding]] | None = None) -> str:
    """A whole text at once, as a stream's final release of it would be: with the end known nothing is
    held back, so no channel, cut or overflow. Returns `text` itself when nothing in it is edited."""
    if not text:
        return ""
    found = plan.find(text, extra)
    for h in found.blocks:
        on_block(plan.guards[h.guard], h)
    if not (found.edits or found.flags):
        return text
    tally.add(found.edits)
    tally.add(found.flags)
    return plan.apply(text, found.edits) if found.edits else text
