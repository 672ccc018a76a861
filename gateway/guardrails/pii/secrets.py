"""SECRET: API keys and tokens, which Presidio has no recognizer for.

Known formats are matched by their fixed prefixes; bare 40-character AWS secret access keys and other
unprefixed tokens are accepted only when they look random (mixed character classes, high Shannon
entropy) so that words, hex digests and paths are not flagged.
"""

from __future__ import annotations

import math
import re
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
# (needle, offset of the needle inside the match): every known format contains one of these literals,
# so the prefix regex only runs where one occurs, not at every position of the text.
_KNOWN_NEEDLES = (
    ("sk-", 0), ("k_live_", 1), ("k_test_", 1), ("AKIA", 0), ("ASIA", 0), ("AGPA", 0), ("AIDA", 0),
    ("AROA", 0), ("ANPA", 0), ("ghp_", 0), ("gho_", 0), ("ghu_", 0), ("ghs_", 0), ("ghr_", 0),
    ("github_pat_", 0), ("xox", 0), ("AIza", 0), ("glpat-", 0), ("hf_", 0), ("npm_", 0),
)  # fmt: skip

# Unprefixed tokens: 40-char AWS secrets and similar (base64 alphabet, no word boundaries inside).
# No lookbehind: a pattern that opens with one is tried at every offset; the boundary is checked on
# the few matches instead. A match consumes its whole run, so a longer run yields no false start.
_OPAQUE = re.compile(r"[A-Za-z0-9/+]{32,}={0,2}")
_OPAQUE_BEFORE = frozenset("_/+.-")
_OPAQUE_AFTER = frozenset("_/+=-")
_CUES = ("secret", "token", "key", "password", "passwd", "credential", "auth", "api")


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
        seen = -1
        for needle, back in _KNOWN_NEEDLES:
            i = text.find(needle)
            while i != -1:
                m = _KNOWN.match(text, i - back) if i >= back else None
                if m is not None and m.start() != seen:
                    seen = m.start()
                    yield m.start(), m.end(), 0.95
                i = text.find(needle, i + 1)
        n = len(text)
        for m in _OPAQUE.finditer(text):
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
