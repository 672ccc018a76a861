"""SECRET: API keys and tokens, which Presidio has no recognizer for.

Known formats are matched by their fixed prefixes; bare 40-character AWS secret access keys and other
unprefixed tokens are accepted only when they look random (mixed character classes, high Shannon
entropy) so that words, hex digests and paths are not flagged.
"""

from __future__ import annotations

import math
import re
import string
from bisect import bisect_left, insort
from collections import Counter
from collections.abc import Iterator

from gateway.guardrails.pii.secrets_assign import keyword_values, pem_private_keys, url_credentials

_KNOWN = re.compile(
    r"(?<![\w-])(?:"
    r"sk-(?:proj-|svcacct-|admin-|ant-(?:api|admin)\d\d-)?[A-Za-z0-9_-]{20,200}"  # OpenAI, Anthropic
    r"|[sr]k_(?:live|test)_[A-Za-z0-9]{16,100}|whsec_[A-Za-z0-9]{24,64}"  # Stripe keys, webhook secrets
    r"|(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA)[A-Z0-9]{16}"  # AWS access key ids
    r"|gh[pousr]_[A-Za-z0-9]{30,255}|github_pat_[A-Za-z0-9_]{50,255}"  # GitHub
    r"|xox[abposre]-[A-Za-z0-9-]{10,250}|xapp-\d-[A-Za-z0-9-]{20,200}"  # Slack
    r"|AIza[A-Za-z0-9_-]{35}|GOCSPX-[A-Za-z0-9_-]{28}|ya29\.[A-Za-z0-9_-]{30,400}"  # Google
    r"|gl(?:pat|dt|rt|ptt|ft|soat)-[A-Za-z0-9_-]{20,64}|hf_[A-Za-z0-9]{30,64}|npm_[A-Za-z0-9]{36}"
    r"|pypi-AgEIcHlwaS5vcmc[A-Za-z0-9_-]{50,300}"  # PyPI upload tokens (a macaroon for pypi.org)
    r"|SG\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}"  # SendGrid
    r"|SK[0-9a-fA-F]{32}"  # Twilio API key
    r"|shp(?:at|ca|pa|ss)_[a-fA-F0-9]{32}|do[opr]_v1_[a-f0-9]{64}|key-[0-9a-f]{32}|dapi[a-f0-9]{32}"
    r"|PMAK-[a-f0-9]{24}-[a-f0-9]{34}|lin_api_[A-Za-z0-9]{40}|hvs\.[A-Za-z0-9_-]{24,200}"
    r"|eyJ[A-Za-z0-9_-]{8,2000}\.eyJ[A-Za-z0-9_-]{8,4000}\.[A-Za-z0-9_-]{8,2000}"  # JWT
    r")(?![\w-])"
)
# Every known format contains one of these needles, `back` characters after its start, so the prefix
# regex only runs where one occurs. Needles are grouped under a character they all hold: a one-character
# `in` is a memchr, about fifteen times cheaper than a multi-character find, and prose seldom has '_'.
_KNOWN_NEEDLES = (
    ("_", (("k_live_", 1), ("k_test_", 1), ("ghp_", 0), ("gho_", 0), ("ghu_", 0), ("ghs_", 0), ("ghr_", 0),
           ("github_pat_", 0), ("hf_", 0), ("npm_", 0), ("whsec_", 0), ("shpat_", 0), ("shpca_", 0), ("shppa_", 0), ("shpss_", 0), ("_v1_", 3), ("lin_api_", 0))),
    ("-", (("sk-", 0), ("glpat-", 0), ("gldt-", 0), ("glrt-", 0), ("glptt-", 0), ("glft-", 0), ("glsoat-", 0), ("xapp-", 0), ("GOCSPX-", 0), ("pypi-", 0), ("key-", 0), ("PMAK-", 0))),
    ("x", (("xox", 0),)),
    (".", (("SG.", 0), ("ya29.", 0), ("hvs.", 0))),
    ("J", (("eyJ", 0),)),
    ("K", (("SK", 0),)),
    ("p", (("dapi", 0),)),
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
_RUN_ONLY = bytes(ord("a") if chr(c) in _RUN_ALPHABET else ord(" ") for c in range(256))
_WINDOW_BEFORE = 24


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


# Documentation's stand-ins for a token: 'ghp_xxxx...', 'XXXXXXXXX/XXXXXXXXX/...'.
_FILLER = re.compile(r"xxxx|XXXX|0000000000|\.\.\.")
# Webhook URLs whose path is the credential: (needle, regex of the path after it).
_WEBHOOKS = (
    ("hooks.slack.com/", re.compile(r"(?:services|workflows|triggers)/([A-Za-z0-9_/-]{20,200})")),
    ("/api/webhooks/", re.compile(r"(\d{15,22}/[A-Za-z0-9_-]{50,100})")),
    ("webhook.office.com/webhook", re.compile(r"b?2?/([\w@/-]{40,400})")),
)
# What an opaque run that is no secret opens with or follows: SSH public-key blobs (a length-prefixed
# wire format, 'AAAA...'), go.sum and Nix hashes, digests, data: URIs.
_PUBLIC_BEFORE = ("h1:", "sha1:", "sha256:", "sha384:", "sha512:", "md5:", "base64,", "ssh-rsa ", "ssh-ed25519 ",
                  "ssh-dss ", "nistp256 ", "nistp384 ", "nistp521 ")


class SecretDetector:
    entity_type = "SECRET"
    max_len = 256

    def detect(self, text: str) -> Iterator[tuple[int, int, float]]:
        found = list(self._formats(text))
        found.extend(keyword_values(text))
        found.extend(url_credentials(text))
        found.extend(pem_private_keys(text))
        yield from _disjoint(found)

    def _formats(self, text: str) -> Iterator[tuple[int, int, float]]:
        if not may_hold_secret(text):
            return
        seen = -1
        for start in _known_starts(text, _run_windows(text)):
            m = _KNOWN.match(text, start)
            if m is not None and m.start() != seen:
                seen = m.start()
                if not _FILLER.search(m.group()):
                    yield m.start(), m.end(), 0.95
        for needle, path in _WEBHOOKS:
            i = text.find(needle) if "/" in text else -1
            while i != -1:
                m = path.match(text, i + len(needle))
                if m is not None and not _FILLER.search(m.group(1)):
                    yield m.start(1), m.end(1), 0.95
                i = text.find(needle, i + len(needle))
        first = text.encode("ascii", "replace").translate(_OPAQUE_MASK).find(_OPAQUE_RUN)
        if first == -1:
            return
        n = len(text)
        blocks = _pem_blocks(text) if "-----BEGIN " in text else []
        for m in _OPAQUE.finditer(text, first):
            start, end = m.span()
            if end - start > 130 or len(m.group().rstrip("=")) > 128 or (start and (text[start - 1].isalnum() or text[start - 1] in _OPAQUE_BEFORE)):
                continue
            if end < n and (text[end].isalnum() or text[end] in _OPAQUE_AFTER):
                continue
            value = m.group()
            if _public_blob(text, start, end, blocks):
                continue
            if looks_random(value.rstrip("=")):
                cued = any(c in text[max(0, start - 64) : start].lower() for c in _CUES)
                if len(value) == 40 or cued:
                    yield start, end, 0.8 if cued else 0.7
                elif len(value) >= 48 and _entropy(value) >= 4.5:
                    yield start, end, 0.6


def _pem_blocks(text: str) -> list[tuple[int, int]]:
    """(start, end) of every PEM block: BEGIN line to END line, or to the end of the text."""
    blocks = []
    i = text.find("-----BEGIN ")
    while i != -1:
        j = text.find("-----END ", i)
        end = len(text) if j == -1 else j
        blocks.append((i, end))
        i = text.find("-----BEGIN ", end)
    return blocks


def _public_blob(text: str, start: int, end: int, blocks: list[tuple[int, int]]) -> bool:
    """An opaque run that is public by its place: an SSH public key, a hash, a data: URI, a line of a
    PEM block that is not a private key (certificates, public keys) or such a line standing alone."""
    if text.startswith("AAAA", start) or text[max(0, start - 12) : start].endswith(_PUBLIC_BEFORE):
        return True
    line_start = start == 0 or text[start - 1] == "\n"
    if line_start and (end == len(text) or text[end] in "\r\n") and end - start in (64, 76):
        return True  # a PEM or MIME body line: a private key's lines are found with its BEGIN line
    # Inside a block: a private key's body is one finding of pem_private_keys, anything else is public.
    k = bisect_left(blocks, (start + 1,))
    return bool(k) and blocks[k - 1][1] > start


def _disjoint(found: list[tuple[int, int, float]]) -> list[tuple[int, int, float]]:
    """The findings that overlap none kept before them, by score then length (as PiiDetector resolves)."""
    if len(found) < 2:
        return found
    found.sort()
    if all(a[1] <= b[0] for a, b in zip(found, found[1:])):
        return found
    kept: list[tuple[int, int, float]] = []
    spans: list[tuple[int, int]] = []
    for f in sorted(found, key=lambda f: (-f[2], f[0] - f[1], f[0])):
        i = bisect_left(spans, (f[1],))
        if i and spans[i - 1][1] > f[0]:
            continue
        kept.append(f)
        insort(spans, (f[0], f[1]))
    kept.sort()
    return kept


def may_hold_secret(text: str) -> bool:
    """False when no format can match anywhere in `text` (it has no long enough run of token characters)."""
    return len(text) >= len(_MIN_RUN) and text.encode("ascii", "replace").translate(_RUN_MASK).find(_MIN_RUN) != -1


def _run_windows(text: str) -> list[tuple[int, int]]:
    """Where a known format can lie: around each run of 15 or more token characters (every format holds
    one, see _RUN_ALPHABET), from _WINDOW_BEFORE characters before it (a prefix such as 'sk-ant-api٠٣-'
    or 'SG.' may sit before its run) to its end. Prose has few such runs, so the needles below are looked
    for in a few short windows instead of the whole text, each a find of its own."""
    windows: list[tuple[int, int]] = []
    masked = text.encode("ascii", "replace").translate(_RUN_ONLY)  # token characters 'a', the rest ' '
    i = masked.find(_MIN_RUN)
    while i != -1:
        end = masked.find(b" ", i)
        if end == -1:
            end = len(masked)
        lo, hi = max(0, i - _WINDOW_BEFORE), end
        if windows and lo <= windows[-1][1]:
            windows[-1] = (windows[-1][0], hi)
        else:
            windows.append((lo, hi))
        i = masked.find(_MIN_RUN, end)
    return windows


def _known_starts(text: str, windows: list[tuple[int, int]]) -> Iterator[int]:
    """Where a known-format match could start: at each needle inside a window, less its offset."""
    for lo, hi in windows:
        part = text[lo:hi]
        for gate, needles in _KNOWN_NEEDLES:
            if gate in part:
                for needle, back in needles:
                    i = part.find(needle)
                    while i != -1:
                        if lo + i >= back:
                            yield lo + i - back
                        i = part.find(needle, i + 1)
        if "A" in part:
            m = _A_PREFIXES.search(part)
            while m is not None:
                yield lo + m.start()
                m = _A_PREFIXES.search(part, m.start() + 1)
