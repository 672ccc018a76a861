"""PII and secret detection: a fast regex-and-validator tier (Presidio recognizers) and an opt-in NER tier.

Build one `PiiDetector` per worker at start-up (it compiles patterns and, with `ner=True`, loads spaCy);
`detect()` is synchronous and pure. The fast tier never imports spaCy and never touches the network.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from gateway.guardrails.pii.fold import spans_as_read
from gateway.guardrails.pii.holdback import HoldSpec, growing_suffix_start
from gateway.guardrails.pii.ner import NER_ENTITIES, ner_available

FAST_TIER_ENTITIES: tuple[str, ...] = (
    "EMAIL_ADDRESS",
    "PHONE_NUMBER",
    "CREDIT_CARD",
    "US_SSN",
    "IBAN_CODE",
    "IP_ADDRESS",
    "URL",
    "US_PASSPORT",
    "SECRET",
)
DEFAULT_THRESHOLD = 0.5

__all__ = ["FAST_TIER_ENTITIES", "NER_ENTITIES", "Finding", "PiiDetector", "ner_available"]


@dataclass(frozen=True, slots=True)
class Finding:
    start: int  # str offsets into the scanned text, end exclusive
    end: int
    entity_type: str
    score: float


class PiiDetector:
    """Detects the enabled entity types; `entities=None` means every fast-tier type (plus NER types if `ner`)."""

    def __init__(
        self,
        entities: Iterable[str] | None = None,
        thresholds: Mapping[str, float] | None = None,
        ner: bool = False,
    ) -> None:
        from gateway.guardrails.pii.recognizers import NumericScan, build_fast_detectors

        known = set(FAST_TIER_ENTITIES) | set(NER_ENTITIES)
        wanted = tuple(entities) if entities is not None else FAST_TIER_ENTITIES + (NER_ENTITIES if ner else ())
        unknown = sorted(set(wanted) - known)
        if unknown:
            raise ValueError(f"unknown PII entity types {unknown}; expected some of {sorted(known)}")
        self.entities: frozenset[str] = frozenset(wanted)
        self._thresholds = {e: DEFAULT_THRESHOLD for e in self.entities}
        self._thresholds.update(thresholds or {})

        self._detectors = build_fast_detectors(self.entities)
        self._numeric = next((d for d in self._detectors if isinstance(d, NumericScan)), None)

        self._ner = None
        ner_types = self.entities & set(NER_ENTITIES)
        if ner and ner_types:
            from gateway.guardrails.pii.ner import NerTagger

            self._ner = NerTagger(ner_types)
        elif ner_types and not ner:
            raise ValueError(f"{sorted(ner_types)} need the NER tier (ner=True)")

        # (detect, entity type, threshold) per detector, resolved once: detect() runs on every streamed
        # chunk. The numeric scan reports each finding's type, so it has neither.
        self._steps = tuple((d.detect, None, 0.0) if d is self._numeric
                            else (d.detect, d.entity_type, self._thresholds[d.entity_type]) for d in self._detectors)

        self.max_entity_len: int = max((d.max_len for d in self._detectors), default=0)
        if self._ner is not None:
            self.max_entity_len = max(self.max_entity_len, self._ner.max_len)

    def detect(self, text: str) -> list[Finding]:
        """Findings sorted by start, non-overlapping (overlaps go to a SECRET, then the higher score, then the
        longer span). Scanned as a reader sees `text` (gateway.guardrails.pii.fold); spans are `text`'s."""
        return spans_as_read(text, self._detect)

    def _detect(self, text: str) -> list[Finding]:
        thresholds = self._thresholds
        found: list[Finding] = []
        for detect, etype, threshold in self._steps:
            if etype is None:
                for numeric_type, start, end, score in detect(text):
                    if score >= thresholds[numeric_type]:
                        found.append(Finding(start, end, numeric_type, score))
                continue
            for start, end, score in detect(text):
                if score >= threshold:
                    found.append(Finding(start, end, etype, score))
        if self._ner is not None:
            for start, end, etype, score in self._ner.detect(text):
                if score >= thresholds[etype]:
                    found.append(Finding(start, end, etype, score))
        return _resolve_overlaps(found)

    @property
    def hold_spec(self) -> HoldSpec:
        """The arguments of `may_continue`'s growing-suffix rule, for a `HoldBack` over several detectors."""
        return self.max_entity_len, self._ner is not None, "EMAIL_ADDRESS" in self.entities

    def may_continue(self, text: str) -> int:
        """Smallest index from which an entity could still grow if text were appended; len(text) if none."""
        return growing_suffix_start(text, *self.hold_spec)


def _resolve_overlaps(found: list[Finding]) -> list[Finding]:
    if len(found) < 2:
        return found
    found.sort(key=lambda f: f.start)
    if all(a.end <= b.start for a, b in zip(found, found[1:])):
        return found  # the usual case: nothing overlaps
    # A secret wins any overlap: the e-mail 'pw@db.example.com' inside 'postgres://u:pw@db.example.com'
    # must not hide the password from the secrets rule, which keeps only SECRET findings of a shared pass.
    return _first_disjoint(sorted(found, key=lambda f: (f.entity_type != "SECRET", -f.score, -(f.end - f.start),
                                                        f.start)))


def _first_disjoint(ordered: Sequence) -> list:
    """Each span (anything with .start and .end) of `ordered` that overlaps none kept before it, by start.

    The kept spans never cross (non-empty ones are disjoint, an empty one lies inside none), so sorted
    by (start, end) their ends never decrease: among the kept spans starting before a candidate's end,
    the last one reaches furthest, and the candidate overlaps a kept span exactly when that one ends
    after the candidate's start: a bisection each, where a check against every kept span made a text
    of many overlapping findings quadratic."""
    kept = []
    spans: list[tuple[int, int]] = []  # the kept spans' (start, end), sorted
    for h in ordered:
        i = bisect_left(spans, (h.end,))  # kept spans with start < h.end come before i
        if i and spans[i - 1][1] > h.start:
            continue
        kept.append(h)
        insort(spans, (h.start, h.end))
    kept.sort(key=lambda h: h.start)
    return kept
