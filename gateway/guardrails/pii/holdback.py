"""Where the tail of a stream could still be the start of an entity (for the stream hold-back).

Entities are mostly single whitespace-free tokens, except digit groups ("4967 5723 8823 7084",
"+1 (439) 048-8618", a card broken by a line break), obfuscated e-mails ("jdoe [at] gmail [dot] com")
and, with NER, capitalised names. So the growing suffix is the last token, extended back over short
gaps whose neighbours could join into one of those.

`HoldBack` answers for several detectors at once (the stream scanner asks once per chunk for all the
rules of a request): the smallest of their `growing_suffix_start`s, computed once where one
detector's answer is known to be the smallest.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from gateway.guardrails.pii.fold import index_as_read

_OBFUSCATION_WORDS = frozenset({"at", "dot", "(at)", "[at]", "{at}", "(dot)", "[dot]", "{dot}"})
_NUMERIC_END = frozenset("0123456789()+")
_NUMERIC_START = _NUMERIC_END | frozenset("xX")
# Every prefix of an obfuscation word: "[a" at the very end may be the start of "[at]".
_OBFUSCATION_PREFIXES = frozenset(w[:i] for w in _OBFUSCATION_WORDS for i in range(1, len(w) + 1))
_LOCAL_PART = re.compile(r"[\w.+-]*\w")

HoldSpec = tuple[int, bool, bool]  # (max_len, names, emails): the arguments of growing_suffix_start


def _joins(left: str, right: str, gap: str, names: bool, emails: bool = False) -> bool:
    if len(gap) > 3 or gap.count("\n") > 1:
        return False
    if emails and right.lower() in _OBFUSCATION_PREFIXES and _LOCAL_PART.fullmatch(left):
        return True
    if left[-1] in _NUMERIC_END and right[0] in _NUMERIC_START:
        return True
    if left.lower() in _OBFUSCATION_WORDS or right.lower() in _OBFUSCATION_WORDS:
        return True
    return names and gap == " " and left[0].isupper() and right[0].isupper()


def _token_before(text: str, end: int, floor: int, spaces_only: bool = False) -> tuple[int, int] | None:
    """(start, end) of the last whitespace-free token ending at or before `end`, not reaching below
    `floor`. Scans backwards from the end, so a feed costs the length of the tail it looks at, not
    the whole hold-back window. `spaces_only`: the caller knows the text has no LF, CR or tab."""
    j = end
    while j > floor and text[j - 1].isspace():
        j -= 1
    if j <= floor:
        return None
    # ASCII whitespace found in C; a token holding other (Unicode) spaces only grows longer, which
    # holds back more text, never less.
    if spaces_only:
        k = text.rfind(" ", floor, j) + 1
    else:
        k = max(text.rfind(" ", floor, j), text.rfind("\n", floor, j), text.rfind("\t", floor, j),
                text.rfind("\r", floor, j)) + 1
    return (k if k > floor else floor), j


def growing_suffix_start(text: str, max_len: int, names: bool = False, emails: bool = False) -> int:
    """`emails`: obfuscated e-mails are detected, so a finished word may still be the local part of
    "jdoe at gmail dot com": it is held until the next word shows it is not. Answered on the text as the
    detectors read it (gateway.guardrails.pii.fold), as an index into `text`."""
    return index_as_read(text, lambda view: _growing_suffix_start(view, max_len, names, emails))


def _growing_suffix_start(text: str, max_len: int, names: bool, emails: bool) -> int:
    n = len(text)
    if n == 0 or max_len <= 0:
        return n
    floor = n - max_len if n > max_len else 0
    # Streamed prose seldom holds a line break or a tab: then one rfind finds each token's start.
    spaces_only = not ("\n" in text or "\r" in text or "\t" in text)
    last = _token_before(text, n, floor, spaces_only)
    if last is None:
        return n
    start, tend = last
    token = text[start:tend]
    if tend < n:
        # The text ends in whitespace: the last token is finished unless the next one could join it.
        gap = text[tend:]
        if len(gap) > 3 or gap.count("\n") > 1:
            return n
        numeric = token[-1] in _NUMERIC_END
        if not (numeric or token.lower() in _OBFUSCATION_WORDS or (names and gap == " " and token[0].isupper())
                or (emails and _LOCAL_PART.fullmatch(token))):
            return n
    while start > floor:
        prev = _token_before(text, start, floor, spaces_only)
        if prev is None:
            break
        pstart, pend = prev
        left = text[pstart:pend]
        if not _joins(left, token, text[pend:start], names, emails):
            break
        start, token = pstart, left
    return start


class HoldBack:
    """The smallest `growing_suffix_start` over several detectors' specs, for one rule selection.

    A text no longer than every spec's `max_len` gives each spec the same floor (0) and so the same
    tokens; there `names` and `emails` only add ways to hold, so a spec whose flags include another's
    never answers later than it, and only the specs with maximal flags are asked. Longer texts ask
    every spec: different floors clip the tokens differently.
    """

    __slots__ = ("specs", "_short_len", "_short")

    def __init__(self, specs: Iterable[HoldSpec]) -> None:
        self.specs = tuple(sorted({s for s in specs if s[0] > 0}))
        self._short_len = min((s[0] for s in self.specs), default=0)
        flags = {(names, emails) for _, names, emails in self.specs}
        maximal = [f for f in flags if not any(g != f and g[0] >= f[0] and g[1] >= f[1] for g in flags)]
        self._short = tuple(sorted((self._short_len, names, emails) for names, emails in maximal))

    def __bool__(self) -> bool:
        return bool(self.specs)

    def start(self, text: str) -> int:
        specs = self._short if len(text) <= self._short_len else self.specs
        if len(specs) == 1:
            max_len, names, emails = specs[0]
            return growing_suffix_start(text, max_len, names, emails)
        return min(growing_suffix_start(text, *spec) for spec in specs)
