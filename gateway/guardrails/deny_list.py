"""The `deny_list` guardrail: phrases that must not pass, in prompts or in answers (streaming included).

Matching is case-insensitive unless asked otherwise, on word boundaries, and tolerant of up to four
whitespace characters (line breaks included) wherever the phrase has a space, so a phrase split over
chunks or reflowed by the model still matches; and on the text as a reader sees it (invisible characters
skipped, Unicode spaces as spaces, fullwidth letters as ASCII: gateway.guardrails.pii.fold). `may_continue`
tells the stream scanner how much of the tail could still become a match, so it holds back only that.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, model_validator

from gateway import reasons
from gateway.config.validate import SourcedRule
from gateway.guardrails.actions import SpanAction
from gateway.guardrails.pii import Finding
from gateway.guardrails.pii.fold import index_as_read, spans_as_read
from gateway.guardrails.policy import RuleBase, SpanGuard, resolve_hold_back

ENTITY = "DENY_LIST"
_MAX_GAP = 4  # whitespace characters allowed where the phrase has one space
_SPACES = re.compile(r"\s+")


class DenyListRule(RuleBase):
    type: Literal["deny_list"]
    phrases: tuple[str, ...] = Field(min_length=1)
    case_sensitive: bool = False
    whole_words: bool = True
    action: Literal["block", "redact", "flag"] = "block"
    hold_back_chars: int | None = Field(default=None, gt=0, le=65_536)

    @model_validator(mode="after")
    def _check(self) -> DenyListRule:
        if any(not p.strip() for p in self.phrases):
            raise ValueError("phrases must not be empty or blank")
        return self


class DenyListGuard(SpanGuard):
    kind = "deny_list"

    def __init__(self, rule: DenyListRule, source: SourcedRule) -> None:
        super().__init__(rule, source)
        self._fold = (lambda s: s) if rule.case_sensitive else str.lower
        # Normalised phrases (single spaces, folded) for the prefix test of may_continue.
        self._phrases = tuple(sorted({self._fold(" ".join(p.split())) for p in rule.phrases}, key=len, reverse=True))
        self._first_chars = frozenset(p[0] for p in self._phrases)
        self._longest = len(self._phrases[0])
        gap = r"\s{1,%d}" % _MAX_GAP
        body = "|".join(gap.join(re.escape(w) for w in p.split(" ")) for p in self._phrases)
        edges = (r"(?<!\w)(?:", r")(?!\w)") if rule.whole_words else ("(?:", ")")
        self._pattern = re.compile(edges[0] + body + edges[1], 0 if rule.case_sensitive else re.IGNORECASE)
        self._whole = rule.whole_words
        self.max_entity_len = max(len(p) + (_MAX_GAP - 1) * p.count(" ") for p in self._phrases)
        self.hold_back = resolve_hold_back(rule.hold_back_chars, self.max_entity_len, source)
        self.action = SpanAction(rule.action)

    def detect(self, text: str) -> list[Finding]:
        # Read as a reader sees it, as the PII tier reads (gateway.guardrails.pii.fold): a zero-width space
        # inside a phrase or fullwidth letters do not hide it.
        return spans_as_read(text, self._detect)

    def _detect(self, text: str) -> list[Finding]:
        return [Finding(m.start(), m.end(), ENTITY, 1.0) for m in self._pattern.finditer(text)]

    def may_continue(self, text: str) -> int:
        return index_as_read(text, self._may_continue)

    def _may_continue(self, text: str) -> int:
        n = len(text)
        lo = max(0, n - self.max_entity_len)
        fold = self._fold
        # Two exact prunes from one pass over the window's whitespace runs, so that only a few positions
        # fold their whole tail (each did before: quadratic in the window, which a long phrase makes up
        # to ~10^5 characters' work per streamed chunk). A tail holding a run longer than _MAX_GAP never
        # matches; a candidate's tail starts with a phrase's first character, never whitespace, so it
        # holds exactly the runs that start after it: none of the long ones once past the last of them.
        # And a tail whose runs, collapsed to one space, still leave it longer than every phrase is no
        # phrase prefix: folding never shortens a text.
        runs = [(m.start(), m.end()) for m in _SPACES.finditer(text, lo)]
        first = lo
        for start, end in runs:
            if end - start > _MAX_GAP:
                first = end
        runs = [(start, end) for start, end in runs if start >= first]
        excess = sum(end - start - 1 for start, end in runs)  # what collapsing the runs after i removes
        r = 0
        for i in range(first, n):
            while r < len(runs) and runs[r][0] < i:
                excess -= runs[r][1] - runs[r][0] - 1
                r += 1
            if fold(text[i]) not in self._first_chars:
                continue
            if self._whole and i > 0 and (text[i - 1].isalnum() or text[i - 1] == "_"):
                continue
            if n - i - excess > self._longest:
                continue
            norm = fold(_SPACES.sub(" ", text[i:]))
            # A tail that is a phrase prefix may still complete; a whole phrase at the very end is still
            # undecided, because the next character decides the word boundary (or a longer phrase).
            if any(p.startswith(norm) for p in self._phrases):
                return i
        return n

    def reason(self, entities: dict[str, int]) -> str:
        return reasons.DENY_LIST_MATCH
