"""Window features shared by inference and by `scripts/train_injection.py`.

Normalised text is cut into segments at line breaks and sentence ends. A segment's features are its word
unigrams and bigrams (CJK and kana count one character per token, so bigrams are character bigrams there).
The model scores every segment and every pair of neighbouring segments, and a document scores as its best
window: evidence never adds up across a long document, only within a sentence or two.
"""

from __future__ import annotations

import re

# Line breaks and sentence ends (a full stop only when followed by a space, so URLs and file names
# stay in one segment).
SEGMENT_SPLIT = re.compile(r"\n|[.!?;](?:\s|$)|[。！？；]")
TOKEN = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uf900-\ufaff]|[^\W_\u3040-\u30ff\u3400-\u9fff\uf900-\ufaff]+|:")
# A segment longer than this is not one sentence (a run-on paragraph, minified code, a table row); it is
# cut into pieces so a long benign run cannot add up evidence and a payload inside it is still seen.
MAX_SEGMENT_TOKENS = 48


def segment_tokens(normalized: str) -> list[list[str]]:
    """Token lists of the non-empty segments of already-normalised text."""
    out = []
    for segment in SEGMENT_SPLIT.split(normalized):
        tokens = TOKEN.findall(segment)
        if len(tokens) <= MAX_SEGMENT_TOKENS:
            if tokens:
                out.append(tokens)
        else:
            out.extend(tokens[i:i + MAX_SEGMENT_TOKENS] for i in range(0, len(tokens), MAX_SEGMENT_TOKENS))
    return out


def segment_features(tokens: list[str]) -> list[str]:
    """Unigrams and space-joined bigrams (tokens never contain spaces, so the two cannot collide)."""
    return tokens + list(map(" ".join, zip(tokens, tokens[1:])))
