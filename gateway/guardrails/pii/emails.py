"""EMAIL_ADDRESS: Presidio's e-mail pattern matched once per '@', and obfuscated forms ('jdoe at gmail dot com').

Candidates are validated with Presidio's recognizer against the bundled public-suffix list, offline.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator

import tldextract

# Start-up only: the offline public-suffix extractor Presidio's e-mail recognizer validates with.
# suffix_list_urls=() and cache_dir=None: the bundled snapshot, no HTTP fetch, no cache file written.
_OFFLINE_TLD = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None, fallback_to_snapshot=True)


class _OfflineTldModule:
    """Stands in for the `tldextract` module inside Presidio's recognizer modules."""

    extract = staticmethod(_OFFLINE_TLD)
    TLDExtract = tldextract.TLDExtract


_URL_DELIMITERS = frozenset("/?#")

# Presidio's e-mail pattern (EmailRecognizer.PATTERNS[0], presidio-analyzer 2.2): a local part of `_A`
# characters with `_B` ones (the same plus '.') inside, '@', dot-separated domain labels. The detector
# below relies on its shape, so it is pinned here; tests/unit/test_redos.py checks that Presidio's
# pattern is still this one.
PRESIDIO_EMAIL_PATTERN = (r"\b((([!#$%&'*+\-/=?^_`{|}~\w])|([!#$%&'*+\-/=?^_`{|}~\w][!#$%&'*+\-/=?^_`{|}~\.\w]{0,}"
                          r"[!#$%&'*+\-/=?^_`{|}~\w]))[@]\w+(?:-+\w+)*(?:\.\w+(?:-+\w+)*)+)\b")
_EMAIL_FLAGS = re.IGNORECASE | re.MULTILINE | re.UNICODE  # Presidio's global flags, less DOTALL
_A = r"[!#$%&'*+\-/=?^_`{|}~\w]"
_B = r"[!#$%&'*+\-/=?^_`{|}~\.\w]"
# The helpers below match only the pattern's caseless pieces (\w, \b, symbols), which match the same
# characters with or without IGNORECASE (tests/unit/test_redos.py checks every code point), so they are
# compiled without it: case-insensitive class tests cost several times more.
# Where the run of local-part characters that ends at the end of the searched range begins (the
# look-behind and the possessive run: one pass over each run, never a rescan from inside it).
_LOCAL_RUN = re.compile(rf"(?<!{_B}){_B}*+\Z")
# Where the pattern can start inside such a run: a word boundary before a non-dot local-part character.
_LOCAL_START = re.compile(rf"\b{_A}")
# The '@'s a match can hold: a non-dot local-part character before, a domain after. The domain part is
# the pattern's own; cut short by the window it could only fail more often, so this is a superset.
_CANDIDATE_AT = re.compile(rf"@(?<={_A}@)\w+(?:-+\w+)*(?:\.\w+(?:-+\w+)*)+\b")


class EmailDetector:
    """E-mail addresses: Presidio's pattern, matched once per '@'.

    What it finds is defined by the windowed scan it replaced (kept as the reference in
    tests/unit/test_redos.py): for each '@', the pattern's matches (finditer) from the start of the
    '@''s whitespace-delimited token, in the text cut 192 characters after the '@' or at the first
    space, tab or line feed after it; the match holding the '@' is the finding. Run as written that is
    quadratic: a token of many '@'s (or a long local part with no valid domain) is rescanned from its
    start for every '@' (30 s for 25 KB of "a@"). Here each '@' costs the length of its own local part
    and domain, from these facts about the pattern:

    - A match holds exactly one '@' (neither part admits one) and no whitespace, so matches ending
      before a token never change what its scan finds, and the match holding an '@' starts after the
      previous '@'.
    - From a start s in the run of local-part characters before the '@' (the local part ends at the
      first character outside the run, which must be that '@'), the pattern matches iff s is at a word
      boundary with a non-dot character, the character before the '@' is a non-dot local character and
      the domain matches after the '@'; only the first condition depends on s, and the match is then
      [s, end of the domain). So the leftmost such s not inside the previous match is the one.
    - Which earlier match ends where depends on the cut only for the previous '@' (an earlier one's
      match stops at the next '@'), and only when nothing but local-part characters lies between the
      two: its match is redone with this '@''s cut then.
    """

    entity_type = "EMAIL_ADDRESS"
    max_len = 254

    def __init__(self, classes: dict[str, type]) -> None:
        recognizer = classes["EmailRecognizer"]()
        module = __import__(type(recognizer).__module__, fromlist=["tldextract"])
        module.tldextract = _OfflineTldModule  # the module-level tldextract.extract would fetch the PSL
        self._validate = recognizer.validate_result
        # tldextract reads the host after the last '@' unless the local part holds a URL delimiter, so
        # validation mostly depends on the domain alone, which many addresses share (gmail.com); a
        # tldextract call costs ~10 us. Bounded: the domains of untrusted text are unbounded.
        self._validate_domain = functools.lru_cache(maxsize=2048)(recognizer.validate_result)
        self._regex = re.compile(PRESIDIO_EMAIL_PATTERN, _EMAIL_FLAGS)

    def detect(self, text: str) -> Iterator[tuple[int, int, float]]:
        """Presidio's matches, less a `key=` before the address: its local part admits '=', so in
        `SUPPORT_EMAIL=ops@example.com` or `user=jane@example.com` (configs, logs) it took the key too and
        redaction ate it. An '=' inside a real local part is legal but vanishingly rare."""
        for start, end, score in self.presidio_matches(text):
            eq = text.rfind("=", start, end)
            if eq != -1 and eq < text.find("@", start, end):
                start = eq + 1
                if not _LOCAL_START.match(text, start):
                    continue
            yield start, end, score

    def presidio_matches(self, text: str) -> Iterator[tuple[int, int, float]]:
        if "@" not in text:
            return
        n = len(text)
        regex = self._regex
        # The previous '@': its position, where its match would start (None: nowhere), the cut it was
        # matched under and the end of its match (0 without one).
        prev_at, prev_start, prev_cut, prev_end = -1, None, 0, 0
        for candidate in _CANDIDATE_AT.finditer(text):
            at = candidate.start()
            skipped = text.rfind("@", prev_at + 1, at)
            if skipped != -1:  # an '@' no match holds, whatever the cut
                prev_at, prev_start, prev_end = skipped, None, 0
            hi = min(n, at + 192)
            for c in " \n\t":
                j = text.find(c, at, hi)
                if j != -1:
                    hi = j
            cut = min(n, hi + 1)
            # The run's start: looked for near the '@' first (a match there is the run's start), since a
            # search from the previous '@' walks all the text before a text's first address.
            run = _LOCAL_RUN.search(text, max(prev_at + 1, at - 64), at) or _LOCAL_RUN.search(text, prev_at + 1, at)
            scan = run.start()
            if scan == prev_at + 1 and prev_start is not None:
                # Only local-part characters since the previous '@': its match may reach into them.
                if prev_cut <= at:  # its cut hid what decides its match (the domain stops at this '@')
                    m = regex.match(text, prev_start, cut)
                    prev_end = m.end() if m is not None else 0
                scan = max(scan, prev_end)
            start = _LOCAL_START.search(text, scan, at) if scan < at else None
            m = regex.match(text, start.start(), cut) if start is not None else None
            if m is not None:
                local, _, domain = m.group().rpartition("@")
                if self._validate_domain(domain) if _URL_DELIMITERS.isdisjoint(local) else self._validate(m.group()):
                    yield m.start(), m.end(), 1.0
            prev_at, prev_start, prev_cut = at, (start.start() if start is not None else None), cut
            prev_end = m.end() if m is not None else 0


# "jdoe at gmail dot com", "jdoe(at)gmail.com", "jdoe [at] gmail [dot] com"
_AT = r"(?:\s*[\[({<]\s*at\s*[\])}>]\s*|\s+at\s+)"
_DOT = r"(?:\s*[\[({<]\s*dot\s*[\])}>]\s*|\s+dot\s+|\.)"
_OBFUSCATED_EMAIL = re.compile(
    rf"(?<![\w.+-])[a-z0-9][\w.+-]{{0,63}}{_AT}[a-z0-9][\w-]{{0,62}}(?:{_DOT}[a-z0-9][\w-]{{0,62}})*{_DOT}[a-z]{{2,24}}(?![\w@])",
    re.IGNORECASE,
)


_OBFUSCATION_WINDOW = 320  # an address is at most 254 characters; matches touching a cut are dropped


class ObfuscatedEmailDetector:
    """'jdoe at gmail dot com' and bracketed forms: the regex runs only in windows around the cues."""

    entity_type = "EMAIL_ADDRESS"
    max_len = 254

    def detect(self, text: str) -> Iterator[tuple[int, int, float]]:
        lower = text.lower()
        cues: list[int] = []
        if " dot " in lower:
            cues.extend(_find_all(lower, " dot "))
        for bracket in ")]}>":
            if bracket in lower:  # a one-character test is a memchr, far cheaper than finding "at)"
                cues.extend(_find_all(lower, "at" + bracket))
        if not cues:
            return
        if len(lower) != len(text):  # lower() changed the length (a few non-ASCII letters): offsets differ
            yield from self._scan(text, 0, len(text))
            return
        cues.sort()
        n = len(text)
        lo, hi = max(0, cues[0] - _OBFUSCATION_WINDOW), min(n, cues[0] + _OBFUSCATION_WINDOW)
        for i in cues[1:]:
            if i - _OBFUSCATION_WINDOW > hi:
                yield from self._scan(text, lo, hi)
                lo = i - _OBFUSCATION_WINDOW
            hi = min(n, i + _OBFUSCATION_WINDOW)
        yield from self._scan(text, lo, hi)

    @staticmethod
    def _scan(text: str, lo: int, hi: int) -> Iterator[tuple[int, int, float]]:
        for m in _OBFUSCATED_EMAIL.finditer(text, lo, hi):
            if m.end() == hi < len(text):
                continue
            value = m.group()
            tld = re.split(r"\W+", value)[-1].lower()
            # "meet at noon dot com" is rare; require a real public suffix for the plain " at " form.
            if not _is_public_suffix(tld):
                continue
            yield m.start(), m.end(), 0.85


@functools.lru_cache(maxsize=1024)  # a few hundred suffixes recur; each tldextract call costs ~10 us
def _is_public_suffix(tld: str) -> bool:
    return _OFFLINE_TLD(f"x.{tld}").suffix != ""


def _find_all(text: str, needle: str) -> Iterator[int]:
    i = text.find(needle)
    while i != -1:
        yield i
        i = text.find(needle, i + 1)
