r"""Exact tiktoken token counts without building token lists: `TokenCounter.count(text)` always equals
`len(encoding.encode_ordinary(text))`, but most of the work becomes dictionary look-ups.

tiktoken encodes in two steps: its encoding's split pattern cuts the text into pieces, then each piece
is byte-pair encoded on its own. The count is therefore a sum over independent parts, and the parts
of real prompts (words) recur, so their counts are kept in bounded tables. Three ways, in order:

1. Space-separated units, for any text in which every space is *safe*: first in the text, or right
   after a character that is not whitespace. Why no piece crosses a safe space, in both patterns
   (cl100k_base, o200k_base): an alternative that matches whitespace matches only whitespace, so a
   whitespace piece cannot reach the space from the left past the non-whitespace character before it;
   and a piece that contains that character tests the space only with an element other than its
   first, and no such element accepts a space (letters, digits, `[^\s\p{L}\p{N}]`, `[\r\n/]`,
   apostrophe endings), so the space stops it exactly as the end of the text would. `\s+(?!\S)` and
   `\s++$` look only past whitespace, and no pattern looks behind, so the pieces from the space on are
   those of the rest on its own. Hence for `p0, p1, ... = text.split(" ")`:
   count(text) = count(p0) + sum(count(" " + p) for the rest), whatever the characters (for non-ASCII
   text the whitespace test errs towards "unsafe": Python's `\s` is a superset of Rust's).
2. Split pattern pieces, for ASCII text with an unsafe space (indentation, double spaces). For ASCII,
   Python's `re` (3.11+, which has possessive quantifiers) reproduces tiktoken's split exactly once
   the Unicode classes are spelled out: `\p{L}` is A-Za-z, `\p{Lu}`/`\p{Ll}` are A-Z/a-z, `\p{N}` is
   0-9, `\p{Lt}`, `\p{Lm}`, `\p{Lo}` and `\p{M}` have no ASCII members, Rust's `\s` is `[\t\n\v\f\r ]`
   (Python's would add \x1c-\x1f) and `$` without multi-line mode is `\Z`. Each piece's count is
   tiktoken's own byte-pair encoding of that piece (`encode_single_piece`, the step `encode_ordinary`
   runs per piece).
3. Anything else (non-ASCII text with an unsafe space): `encode_ordinary`.

Tables are bounded: at most `MAX_ENTRIES` keys (`MAX_HEAD_ENTRIES` for first words) of at most
`MAX_KEY_CHARS` characters each (longer parts are counted every time), cleared when full. Past
`MISS_LIMIT` unseen parts in one text the rest are counted without being kept (words in one call to
tiktoken), which caps what unseen input costs: a text of nothing but new words takes about 1.5 times
tiktoken's time, one of known words a third to a quarter of it.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import tiktoken

MAX_ENTRIES = 20_000  # per table of words or pieces: at most ~3 MB each with the longest keys; the
# most common 20,000 words of a language make up most of its running text, so steady traffic hits
MAX_HEAD_ENTRIES = 4_096  # a text's first word: one per text, so few are hot
MAX_KEY_CHARS = 64
MISS_LIMIT = 16  # unseen parts of one text counted one by one (about 1.7 us each) and kept

# The ASCII members of tiktoken's split patterns (gateway/tokens.py), one alternative a line.
_WS = r"[\t\n\x0b\x0c\r ]"  # Rust's \s on ASCII
_NOT_WS = r"[^\t\n\x0b\x0c\r ]"
_ASCII_PATTERNS = {
    "cl100k_base": "|".join([
        r"'(?i:[sdmt]|ll|ve|re)",
        r"[^\r\nA-Za-z0-9]?+[A-Za-z]++",
        r"[0-9]{1,3}+",
        r" ?[^\t\n\x0b\x0c\r A-Za-z0-9]++[\r\n]*+",
        _WS + r"++\Z",
        _WS + r"*[\r\n]",
        _WS + r"+(?!" + _NOT_WS + ")",
        _WS,
    ]),
    "o200k_base": "|".join([
        r"[^\r\nA-Za-z0-9]?[A-Z]*[a-z]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
        r"[^\r\nA-Za-z0-9]?[A-Z]+[a-z]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
        r"[0-9]{1,3}",
        r" ?[^\t\n\x0b\x0c\r A-Za-z0-9]+[\r\n/]*",
        _WS + r"*[\r\n]+",
        _WS + r"+(?!" + _NOT_WS + ")",
        _WS + r"+",
    ]),
}  # fmt: skip

# An unsafe space in ASCII text: after a space or after other whitespace (checked only when present,
# since `"\n" in text` is far cheaper than a two-character search).
_ASCII_WS_THEN_SPACE = tuple((ws, ws + " ") for ws in "\t\n\r\x0b\x0c")
_WS_THEN_SPACE = re.compile(r"\s ")  # any text; Python's \s includes every character Rust's does


def spaces_are_safe(text: str) -> bool:
    """Whether every space in `text` is its first character or follows one that is not whitespace."""
    if not text.isascii():
        return _WS_THEN_SPACE.search(text) is None
    if "  " in text:
        return False
    for ws, ws_space in _ASCII_WS_THEN_SPACE:
        if ws in text and ws_space in text:
            return False
    return True


class _TooManyMisses(Exception):
    pass


class _CountTable(dict):
    """part -> token count; `table[part]` computes and keeps a missing count (see the module doc)."""

    def __init__(self, compute: Callable, max_entries: int, miss_limit: int | None) -> None:
        super().__init__()
        self.compute = compute
        self.max_entries = max_entries
        self.miss_limit = miss_limit
        self.misses = 0

    def __missing__(self, part):
        if len(part) > MAX_KEY_CHARS:  # never kept; costs about what tiktoken alone would
            return self.compute(part)
        self.misses += 1
        if self.miss_limit is not None and self.misses > self.miss_limit:
            raise _TooManyMisses
        n = self.compute(part)
        if len(self) >= self.max_entries:
            self.clear()  # simple and self-healing: the hot words come back within a few requests
        self[part] = n
        return n


class TokenCounter:
    """Counts tokens of one tiktoken encoding; `count(text) == len(encoding.encode_ordinary(text))`."""

    def __init__(self, encoding: tiktoken.Encoding) -> None:
        self.encoding = encoding
        self.name = encoding.name
        encode = self._encode = encoding.encode_ordinary
        piece_tokens = self._piece_tokens = encoding._core_bpe.encode_single_piece  # one piece's BPE
        self._split = re.compile(_ASCII_PATTERNS[encoding.name].encode()).findall
        self._heads = _CountTable(lambda part: len(encode(part)), MAX_HEAD_ENTRIES, None)
        self._units = _CountTable(lambda part: len(encode(" " + part)), MAX_ENTRIES, MISS_LIMIT)
        self._pieces = _CountTable(lambda piece: len(piece_tokens(piece)), MAX_ENTRIES, MISS_LIMIT)

    def count(self, text: str) -> int:
        if spaces_are_safe(text):
            return self._count_units(text)
        if text.isascii():
            return self._count_pieces(text)
        return len(self._encode(text))

    def _count_units(self, text: str) -> int:
        parts = text.split(" ")
        rest = parts[1:]
        units = self._units
        units.misses = 0
        try:
            return self._heads[parts[0]] + sum(map(units.__getitem__, rest))
        except _TooManyMisses:
            pass
        # Many unseen words: count those still unseen in one call. They keep their order, so every space
        # of " " + " ".join(unseen) is safe too, and its count is the sum of theirs.
        counts = list(map(units.get, rest))
        unseen = [part for part, n in zip(rest, counts) if n is None]
        n = self._heads[parts[0]] + sum(filter(None, counts))
        return n + len(self._encode(" " + " ".join(unseen))) if unseen else n

    def _count_pieces(self, text: str) -> int:
        split = self._split(text.encode())
        pieces = self._pieces
        pieces.misses = 0
        try:
            return sum(map(pieces.__getitem__, split))
        except _TooManyMisses:
            pass
        counts = list(map(pieces.get, split))
        unseen = [piece for piece, n in zip(split, counts) if n is None]
        return sum(filter(None, counts)) + sum(map(len, map(self._piece_tokens, unseen)))

    def table_sizes(self) -> tuple[int, int, int]:
        return len(self._heads), len(self._units), len(self._pieces)
