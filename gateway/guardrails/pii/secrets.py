"""SECRET: API keys and tokens, which Presidio has no recognizer for.

Known formats are matched by their fixed prefixes; bare 40-character AWS secret access keys and other
unprefixed tokens are accepted only when they look random (mixed character classes, high Shannon
entropy) so that words, hex digests and paths are not flagged.
"""

from __future__ import annotations

import math
import re
import string
from collections import Counter
from collections.abc import Iterator

_KNOWN = re.compile(
    r"(?<![\w-])(?:"
    r"sk-(?:proj-|svcacct-|admin-|ant-(?:api|admin)\d\d-)?[A-Za-z0-9_-]{20,200}"  # OpenAI, Anthropic
    r"|[sr]k_(?:live|test)_[A-Za-z0-9]{16,100}"  # Stripe
    r"|(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA)[A-Z0-9]{16}"  # AWS access key ids
    r"|gh[pousr]_[A-Za-z0-9]{30,255}|github_pat_[A-Za-z0-9_]{50,255}"  # GitHub
    r"|xox[abposr]-[A-Za-z0-9-]{10,250}"  # Slack
    r"|AIza[A-Za-z0-9_-]{35}"  # Google API keys
    r"|glpat-[A-Za-z0-9_-]{20,64}|hf_[A-Za-z0-9]{30,64}|npm_[A-Za-z0-9]{36}"
    r")(?![\w-])"
)
# Every known format contains one of these needles, `back` characters after its start, so the prefix
# regex only runs where one occurs. Needles are grouped under a character they all hold: a one-character
# `in` is a memchr, about fifteen times cheaper than a multi-character find, and prose seldom has '_'.
_KNOWN_NEEDLES = (
    ("_", (("k_live_", 1), ("k_test_", 1), ("ghp_", 0), ("gho_", 0), ("ghu_", 0), ("ghs_", 0), ("ghr_", 0),
           ("github_pat_", 0), ("hf_", 0), ("npm_", 0))),
    ("-", (("sk-", 0), ("glpat-", 0))),
    ("x", (("xox", 0),)),
)  # fmt: skip
# AWS key ids and Google keys share their first letter: a regex opening with that literal finds all
# seven prefixes in about the time of one find.
_A_PREFIXES = re.compile(r"A(?:KIA|SIA|GPA|IDA|ROA|NPA|Iza)")

# Unprefixed tokens: 40-char AWS secrets and similar (base64 alphabet, no word boundaries inside).
# No lookbehind: a pattern that opens with one is tried at every offset; the boundary is checked on
# the few matches instead. A match consumes its whole run, so a longer run yields no false start.
_OPAQUE = re.compile(r"[A-Za-z0-9/+]{32,}={0,2}")
_OPAQUE_BEFORE = frozenset("_/+.-")
_OPAQUE_AFTER = frozenset("_/+=-")
# The regex above costs ~10 ns a character on prose (it counts out every word from every letter). A
# byte mask of its alphabet finds the first 32-character run with one C-level find; most texts have
# none. encode() turns each non-ASCII character into one '?', so offsets are unchanged.
_OPAQUE_ALPHABET = string.ascii_letters + string.digits + "/+"
_OPAQUE_MASK = bytes.maketrans(_OPAQUE_ALPHABET.encode(), b"a" * len(_OPAQUE_ALPHABET))  # others: unchanged
_OPAQUE_RUN = b"a" * 32
_CUES = ("secret", "token", "key", "password", "passwd", "credential", "auth", "api")
# Every match of either kind holds an unbroken run of at least 15 ASCII characters from this alphabet:
# each known format is all [A-Za-z0-9_-] but for the two digits of 'sk-ant-api03-' (any Unicode digit
# for \d), and after those still has 20 or more; the shortest is 'xoxb-' and ten more. Opaque tokens
# are 32-character runs of [A-Za-z0-9/+]. Prose seldom has such a run, and one mask-and-find rules it
# out for the whole text, where the needle finds cost a multi-character find each whenever prose has
# a '-' or an 'x'.
_RUN_ALPHABET = string.ascii_letters + string.digits + "/+_-"
_RUN_MASK = bytes.maketrans(_RUN_ALPHABET.encode(), b"a" * len(_RUN_ALPHABET))
_MIN_RUN = b"a" * 15


def _entropy(value: str) -> float:
    counts = Counter(value)
    n = len(value)
    return -sum(c / n * math.log2(c / n) for c in counts.values())


def looks_random(value: str) -> bool:
    has_upper = any(c.isupper() for c in value)
    has_lower = any(c.islower() for c in value)
    digits = sum(c.isdigit() for c in value)
    if not (has_upper and has_lower and digits >= 2):
        return False
    if "/" in value and value.count("/") > 3:  # a path
        return False
    return _entropy(value) >= 4.0


class SecretDetector:
    entity_type = "SECRET"
    max_len = 256

    def detect(self, text: str) -> Iterator[tuple[int, int, float]]:
        if not may_hold_secret(text):
            return
        seen = -1
        for start in _known_starts(text):
            m = _KNOWN.match(text, start)
            if m is not None and m.start() != seen:
                seen = m.start()
                yield m.start(), m.end(), 0.95
        first = text.encode("ascii", "replace").translate(_OPAQUE_MASK).find(_OPAQUE_RUN)
        if first == -1:
            return
        n = len(text)
        for m in _OPAQUE.finditer(text, first):
            start, end = m.span()
            if end - start > 130 or len(m.group().rstrip("=")) > 128 or (start and (text[start - 1].isalnum() or text[start - 1] in _OPAQUE_BEFORE)):
                continue
            if end < n and (text[end].isalnum() or text[end] in _OPAQUE_AFTER):
                continue
            value = m.group()
            if looks_random(value.rstrip("=")):
                cued = any(c in text[max(0, start - 64) : start].lower() for c in _CUES)
                if len(value) == 40 or cued:
                    yield start, end, 0.8 if cued else 0.7
                elif len(value) >= 48 and _entropy(value) >= 4.5:
                    yield start, end, 0.6


def may_hold_secret(text: str) -> bool:
    """False when no format can match anywhere in `text` (it has no long enough run of token characters)."""
    return len(text) >= len(_MIN_RUN) and text.encode("ascii", "replace").translate(_RUN_MASK).find(_MIN_RUN) != -1


def _known_starts(text: str) -> Iterator[int]:
    """Where a known-format match could start: at each needle, less its offset."""
    for gate, needles in _KNOWN_NEEDLES:
        if gate in text:
            for needle, back in needles:
                i = text.find(needle)
                while i != -1:
                    if i >= back:
                        yield i - back
                    i = text.find(needle, i + 1)
    if "A" in text:
        m = _A_PREFIXES.search(text)
        while m is not None:
            yield m.start()
            m = _A_PREFIXES.search(text, m.start() + 1)
