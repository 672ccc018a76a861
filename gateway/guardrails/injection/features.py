"""Window features shared by inference and by `scripts/train_injection.py`.

Normalised text is cut into segments at line breaks and sentence ends. A segment's features are its word
unigrams and bigrams (CJK and kana count one character per token, so bigrams are character bigrams there)
and its structure features (`structure_features`: kinds of word in order, close together).
The model scores every segment and every pair of neighbouring segments, and a document scores as its best
window: evidence never adds up across a long document, only within a sentence or two.
"""

from __future__ import annotations

import re

_CJK = "\u3040-\u30ff\u3400-\u9fff\uf900-\ufaff"
# Line breaks and sentence ends (a full stop only when followed by whitespace, so URLs and file names
# stay in one segment). Written to start with one character class so the regex engine can skip to
# candidate characters instead of trying every position (three times faster than `\n|[.!?;]...`).
SEGMENT_SPLIT = re.compile(r"[\n.!?;。！？；](?:(?<=[.!?;])(?:\s|$)|(?<![.!?;]))")
TOKEN = re.compile(rf"[{_CJK}]|[^\W_{_CJK}]+|:")
# A segment longer than this is not one sentence (a run-on paragraph, minified code, a table row); it is
# cut into pieces so a long benign run cannot add up evidence and a payload inside it is still seen.
MAX_SEGMENT_TOKENS = 48

# The text is tokenised in one pass with segment ends kept in the token stream as a mark (no token is
# empty, and none holds a NUL), instead of one tokeniser call per segment. Separator characters are never
# part of a token, so this yields exactly the tokens that splitting first and tokenising each part would.
# Non-ASCII text: TOKEN (or its CJK-free form) in a group, so a separator match comes back as "".
_TOKEN_OR_END = re.compile(rf"({TOKEN.pattern})|{SEGMENT_SPLIT.pattern}")
_TOKEN_OR_END_NO_CJK = re.compile(rf"([^\W_]+|:)|{SEGMENT_SPLIT.pattern}")
_HAS_CJK = re.compile(f"[{_CJK}]")
# ASCII text (the common case): a regex match per token costs several times what str.split() does, so
# separators become "\n" (via SEGMENT_SPLIT, which needs the original context), then one translate keeps
# [a-z0-9:] and turns "\n" into a NUL mark and everything else into a space. The NUL from the original text
# becomes a space too, so only segment ends are marked.
_ASCII_TABLE = {c: (chr(c) if chr(c).isalnum() or c == ord(":") else " ") for c in range(128)}
_ASCII_TABLE[ord("\n")] = "\0"


def marked_tokens(normalized: str) -> tuple[list[str], str]:
    """All tokens of already-normalised text in order, each segment end marked by the returned mark."""
    if normalized.isascii():
        marked = SEGMENT_SPLIT.sub("\n", normalized).translate(_ASCII_TABLE)
        return marked.replace(":", " : ").replace("\0", " \0 ").split(), "\0"
    pattern = _TOKEN_OR_END if _HAS_CJK.search(normalized) else _TOKEN_OR_END_NO_CJK
    return pattern.findall(normalized), ""


def segment_spans(tokens: list[str], mark: str) -> list[tuple[int, int]]:
    """(start, end) of each non-empty segment in `tokens`, long segments cut into MAX_SEGMENT_TOKENS pieces.

    Appends `mark` to `tokens` (a sentinel that ends the last segment).
    """
    tokens.append(mark)
    spans = []
    start, last = 0, len(tokens) - 1
    find = tokens.index
    while start <= last:
        end = find(mark, start)
        if end - start <= MAX_SEGMENT_TOKENS:
            if end > start:
                spans.append((start, end))
        else:
            spans.extend((i, min(i + MAX_SEGMENT_TOKENS, end)) for i in range(start, end, MAX_SEGMENT_TOKENS))
        start = end + 1
    return spans


def segment_tokens(normalized: str) -> list[list[str]]:
    """Token lists of the non-empty segments of already-normalised text."""
    tokens, mark = marked_tokens(normalized)
    return [tokens[start:end] for start, end in segment_spans(tokens, mark)]


def segment_features(tokens: list[str]) -> list[str]:
    """Unigrams and space-joined bigrams (tokens never contain spaces, so the two cannot collide).

    This string form names the weights in model.json; inference looks bigrams up as (a, b) tuples
    instead, which skips building a joined string per token pair.
    """
    return tokens + list(map(" ".join, zip(tokens, tokens[1:])))


# Structure features: which kinds of word follow which, close together, in one piece. A bag of words sees
# "assistants", "must" and "run" alike in a README about agents and in a line that orders the agent reading
# it; what tells them apart is order and distance: an AI reader, then a modal, then an action ("automated
# assistants with repo access should now run ..."), or an action, then chat data, then a URL ("send the
# chat history to https ..."). Feature (a, b, near) is present in a piece when a word of kind b comes at
# most NEAR tokens after the last word of kind a; (a, b, far) within FAR. The piece start counts as a word
# of kind "^" with near features only ("^>act": an action verb opens the segment). Each feature counts
# once per piece, in the order first seen (the C scorer adds them in the same order). "you" is not a kind:
# documentation addresses its reader as "you" as often as attacks address the model, and with it the
# features flagged one benign long document in nine on the dev set.
KIND_NAMES = ("^", "ai", "modal", "now", "act", "data", "user", "url", "colon")
TOKEN_KINDS: dict[str, int] = {}
for _kind, _words in {
    "ai": "ai ais assistant assistants llm llms chatbot chatbots bot bots agent agents model models copilot gpt "
          "chatgpt claude gemini summarizer summarizers summariser automated",
    "modal": "must should shall will need needs required",
    "now": "now instead immediately only always",
    "act": "ignore disregard forget override bypass send forward post upload reveal print output repeat "
           "reply respond answer say tell call run execute delete fetch visit include append encode prefix "
           "pretend act switch approve transfer state translate write render",
    "data": "conversation history transcript messages chat password passwords credentials secret secrets token "
            "tokens key keys",
    "user": "user users human",
    "url": "http https www",
    "colon": ":",
}.items():
    TOKEN_KINDS.update(dict.fromkeys(_words.split(), KIND_NAMES.index(_kind)))
NEAR, FAR = 2, 10
_NK = len(KIND_NAMES)
# Feature index (a * kinds + b) * 2 + far, and the name it has in model.json's weights ("#ai>modal", "#ai>modal~").
STRUCTURE_NAMES = tuple(f"#{a}>{b}{'~' if far else ''}" for a in KIND_NAMES for b in KIND_NAMES for far in (0, 1))


def structure_features(tokens: list[str]) -> list[int]:
    """Indexes of the piece's structure features, each once, in the order first seen."""
    last: list[int | None] = [None] * _NK
    last[0] = -1
    fired: set[int] = set()
    out: list[int] = []
    kind_of = TOKEN_KINDS.get
    for j, token in enumerate(tokens):
        b = kind_of(token)
        if b is None:
            continue
        for a, at in enumerate(last):
            if at is None or a == b:
                continue
            d = j - at
            base = (a * _NK + b) * 2
            if d <= NEAR and base not in fired:
                fired.add(base)
                out.append(base)
            if d <= FAR and a and base + 1 not in fired:
                fired.add(base + 1)
                out.append(base + 1)
        last[b] = j
    return out
