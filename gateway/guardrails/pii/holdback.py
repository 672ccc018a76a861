"""Where the tail of a stream could still be the start of an entity (for the stream hold-back).

Entities are mostly single whitespace-free tokens, except digit groups ("4967 5723 8823 7084",
"+1 (439) 048-8618", a card broken by a line break), obfuscated e-mails ("jdoe [at] gmail [dot] com")
and, with NER, capitalised names. So the growing suffix is the last token, extended back over short
gaps whose neighbours could join into one of those.
"""

from __future__ import annotations

import re

_OBFUSCATION_WORDS = frozenset({"at", "dot", "(at)", "[at]", "{at}", "(dot)", "[dot]", "{dot}"})
_NUMERIC_END = frozenset("0123456789()+")
# Every prefix of an obfuscation word: "[a" at the very end may be the start of "[at]".
_OBFUSCATION_PREFIXES = frozenset(w[:i] for w in _OBFUSCATION_WORDS for i in range(1, len(w) + 1))
_LOCAL_PART = re.compile(r"[\w.+-]*\w")


def _joins(left: str, right: str, gap: str, names: bool, emails: bool = False) -> bool:
    if len(gap) > 3 or gap.count("\n") > 1:
        return False
    if emails and right.lower() in _OBFUSCATION_PREFIXES and _LOCAL_PART.fullmatch(left):
        return True
    if left[-1] in _NUMERIC_END and (right[0] in _NUMERIC_END or right[0] in "xX"):
        return True
    if left.lower() in _OBFUSCATION_WORDS or right.lower() in _OBFUSCATION_WORDS:
        return True
    return names and gap == " " and left[0].isupper() and right[0].isupper()


def _token_before(text: str, end: int, floor: int) -> tuple[int, int] | None:
    """(start, end) of the last whitespace-free token ending at or before `end`, not reaching below
    `floor`. Scans backwards from the end, so a feed costs the length of the tail it looks at, not
    the whole hold-back window."""
    j = end
    while j > floor and text[j - 1].isspace():
        j -= 1
    if j <= floor:
        return None
    # ASCII whitespace found in C; a token holding other (Unicode) spaces only grows longer, which
    # holds back more text, never less.
    k = max(text.rfind(" ", floor, j), text.rfind("\n", floor, j), text.rfind("\t", floor, j),
            text.rfind("\r", floor, j)) + 1
    return max(k, floor), j


def growing_suffix_start(text: str, max_len: int, names: bool = False, emails: bool = False) -> int:
    """`emails`: obfuscated e-mails are detected, so a finished word may still be the local part of
    "jdoe at gmail dot com": it is held until the next word shows it is not."""
    n = len(text)
    if n == 0 or max_len <= 0:
        return n
    floor = max(0, n - max_len)
    last = _token_before(text, n, floor)
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
        prev = _token_before(text, start, floor)
        if prev is None:
            break
        pstart, pend = prev
        if not _joins(text[pstart:pend], token, text[pend:start], names, emails):
            break
        start, token = pstart, text[pstart:pend]
    return max(start, floor)
