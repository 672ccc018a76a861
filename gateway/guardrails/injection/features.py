"""Window features shared by inference and by `scripts/train_injection.py`.

Normalised text is cut into segments at line breaks and sentence ends. A segment's features are its word
unigrams and bigrams (CJK and kana count one character per token, so bigrams are character bigrams there).
The model scores every segment and every pair of neighbouring segments, and a document scores as its best
window: evidence never adds up across a long document, only within a sentence or two.
"""

from __future__ import annotations

import re
from collections.abc import Callable

_CJK = "\u3040-\u30ff\u3400-\u9fff\uf900-\ufaff"
# Line breaks and sentence ends (a full stop only when followed by whitespace, so URLs and file names
# stay in one segment). Written to start with one character class so the regex engine can skip to
# candidate characters instead of trying every position (three times faster than `\n|[.!?;]...`).
SEGMENT_SPLIT = re.compile(r"[\n.!?;。！？；](?:(?<=[.!?;])(?:\s|$)|(?<![.!?;]))")
TOKEN = re.compile(rf"[{_CJK}]|[^\W_{_CJK}]+|:")
# Same tokens as TOKEN on text without CJK (resp. on ASCII text), with cheaper character classes.
_TOKEN_NO_CJK = re.compile(r"[^\W_]+|:")
_TOKEN_ASCII = re.compile(r"[A-Za-z0-9]+|:")
_HAS_CJK = re.compile(f"[{_CJK}]")
# A segment longer than this is not one sentence (a run-on paragraph, minified code, a table row); it is
# cut into pieces so a long benign run cannot add up evidence and a payload inside it is still seen.
MAX_SEGMENT_TOKENS = 48


def _tokenizer(normalized: str) -> Callable[[str], list[str]]:
    if normalized.isascii():
        return _TOKEN_ASCII.findall
    return TOKEN.findall if _HAS_CJK.search(normalized) else _TOKEN_NO_CJK.findall


def segment_tokens(normalized: str) -> list[list[str]]:
    """Token lists of the non-empty segments of already-normalised text."""
    findall = _tokenizer(normalized)
    out = []
    for segment in SEGMENT_SPLIT.split(normalized):
        tokens = findall(segment)
        if len(tokens) <= MAX_SEGMENT_TOKENS:
            if tokens:
                out.append(tokens)
        else:
            out.extend(tokens[i:i + MAX_SEGMENT_TOKENS] for i in range(0, len(tokens), MAX_SEGMENT_TOKENS))
    return out


def segment_features(tokens: list[str]) -> list[str]:
    """Unigrams and space-joined bigrams (tokens never contain spaces, so the two cannot collide).

    This string form names the weights in model.json; inference looks bigrams up as (a, b) tuples
    instead, which skips building a joined string per token pair.
    """
    return tokens + list(map(" ".join, zip(tokens, tokens[1:])))
