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
_KNOWN_TRIGGERS = ("sk-", "k_live_", "k_test_", "AKIA", "ASIA", "AGPA", "AIDA", "AROA", "ANPA", "gh", "github_pat_", "xox", "AIza", "glpat-", "hf_", "npm_")

# Unprefixed tokens: 40-char AWS secrets and similar (base64 alphabet, no word boundaries inside).
_OPAQUE = re.compile(r"(?<![\w/+.-])[A-Za-z0-9/+]{32,128}={0,2}(?![\w/+=-])")
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
        if any(t in text for t in _KNOWN_TRIGGERS):
            for m in _KNOWN.finditer(text):
                yield m.start(), m.end(), 0.95
        for m in _OPAQUE.finditer(text):
            value = m.group()
            if looks_random(value.rstrip("=")):
                cued = any(c in text[max(0, m.start() - 64) : m.start()].lower() for c in _CUES)
                if len(value) == 40 or cued:
                    yield m.start(), m.end(), 0.8 if cued else 0.7
                elif len(value) >= 48 and _entropy(value) >= 4.5:
                    yield m.start(), m.end(), 0.6
