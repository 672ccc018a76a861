"""The text the PII tier reads: what a reader of it sees, with a map back to the characters it came from.

A value can be written so that a pattern misses it and a reader (a person, a model, a parser) does not:
an invisible character inside it (`123-45\u200b-6789`, a soft hyphen in an e-mail address, Unicode tag
characters), a no-break or other Unicode space between its groups (`4111\u00a01111 ...`, what a web page or
French typography puts there), fullwidth forms (`４１１１...`, `bob＠example.com`). The fast tier and the
NER tier scan the folded text; each finding's span is mapped back and covers the original characters,
invisible ones inside it included. Folding only deletes characters or replaces one with one.

ASCII text is never folded (one `isascii` test); other text only when it holds such a character. Cost on
2.4 KB of non-ASCII text (one core of the 2-core dev box): ~8 us to find there is nothing to fold (~25 us when
the text holds an emoji or other astral character); with a few such characters ~50 us; Japanese with fullwidth
punctuation throughout ~150 us (a substitution per character replaced).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from dataclasses import replace
from typing import Protocol, TypeVar

from gateway.guardrails.injection.normalize import INVISIBLE

_SPACES = "\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000"
_FULLWIDTH = "\uff01-\uff5e"
_INVISIBLE_BMP = "".join(part for part in re.findall(r".-.|.", INVISIBLE.pattern[1:-1]) if ord(part[0]) < 0x10000)
_INVISIBLE_ASTRAL = "".join(part for part in re.findall(r".-.|.", INVISIBLE.pattern[1:-1]) if ord(part[0]) >= 0x10000)
# Searched apart: a class with astral ranges costs `re` three times as much on every character, and only a
# string holding an astral character (CPython stores those 4 bytes a character) can hold one.
_FOLD_BMP = re.compile("[" + _INVISIBLE_BMP + _SPACES + _FULLWIDTH + "]")
_DELETE_BMP = re.compile("[" + _INVISIBLE_BMP + "]")
_ASTRAL = re.compile("[" + _INVISIBLE_ASTRAL + "\U000e0000-\U000e007f]")  # invisible ones, Unicode tags
# One character for one: spaces to " ", fullwidth forms to ASCII. A substitution per match: str.translate
# with a table looks up every character of non-ASCII text (~80 ns each), this only the ones it replaces.
_ONE_FOR_ONE = re.compile("[" + _SPACES + _FULLWIDTH + "]")
_REPLACE = {**{chr(c): " " for c in (0x00A0, 0x1680, 0x202F, 0x205F, 0x3000, *range(0x2000, 0x200B))},
            **{chr(c): chr(c - 0xFEE0) for c in range(0xFF01, 0xFF5F)}}


def _replace(m: re.Match[str]) -> str:
    return _REPLACE[m.group()]


def _maybe_astral(text: str) -> bool:
    return sys.getsizeof(text) >= 4 * len(text)  # false only for strings stored 1 or 2 bytes a character


def fold(text: str) -> tuple[str, list[int] | None] | None:
    """(folded text, the original index of each folded character plus `len(text)` at the end, or None when
    none was deleted and the indexes are the same), or None when there is nothing to fold."""
    if text.isascii():
        return None
    astral = _maybe_astral(text) and _ASTRAL.search(text) is not None
    if not astral and _FOLD_BMP.search(text) is None:
        return None
    view = _ONE_FOR_ONE.sub(_replace, text)
    deletions = [m.start() for m in _DELETE_BMP.finditer(view)]
    if astral:
        deletions = sorted(deletions + [m.start() for m in _ASTRAL.finditer(view)])
    if not deletions:
        return view, None
    out: list[str] = []
    starts: list[int] = []
    last = 0
    for i in deletions:
        out.append(view[last:i])
        starts.extend(range(last, i))
        last = i + 1
    out.append(view[last:])
    starts.extend(range(last, len(view) + 1))
    return "".join(out), starts


def span_back(starts: list[int] | None, start: int, end: int) -> tuple[int, int]:
    """A folded span [start, end) as the original characters it covers (any folded-away ones inside)."""
    if starts is None:
        return start, end
    return starts[start], (starts[end - 1] + 1 if end > start else starts[start])


class _Span(Protocol):
    start: int
    end: int


S = TypeVar("S", bound=_Span)


def spans_as_read(text: str, detect: Callable[[str], list[S]]) -> list[S]:
    """`detect` run on `text` as a reader sees it, its spans mapped back onto `text`."""
    folded = fold(text)
    if folded is None:
        return detect(text)
    view, starts = folded
    if starts is None:
        return detect(view)
    return [replace(f, start=a, end=b) for f in detect(view) for a, b in (span_back(starts, f.start, f.end),)]


def index_as_read(text: str, find: Callable[[str], int]) -> int:
    """`find` (an index into the text it is given) run on `text` as a reader sees it, as an index into `text`."""
    folded = fold(text)
    if folded is None:
        return find(text)
    view, starts = folded
    at = find(view)
    return at if starts is None else starts[at]
