"""Fast-tier recognizers built on Presidio's pattern recognizers and their validators.

Presidio's `analyze()` scans the whole text with its own broad regexes (about 3 ms for a 300-word text
across the generic recognizers), so each detector here first checks cheap trigger characters, finds
candidates with a narrow regex, and only then asks the Presidio recognizer to validate or invalidate
the candidate (Luhn, IBAN checksum, SSN invalidation, `ipaddress`, tldextract). Phone numbers are
validated with `phonenumbers` on candidates only, never with Presidio's region-by-region matcher.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator

import phonenumbers
import tldextract

from gateway.guardrails.pii._presidio import load_recognizer_classes

# Start-up only: the offline public-suffix extractor Presidio's e-mail recognizer validates with.
# suffix_list_urls=() and cache_dir=None: the bundled snapshot, no HTTP fetch, no cache file written.
_OFFLINE_TLD = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None, fallback_to_snapshot=True)


class _OfflineTldModule:
    """Stands in for the `tldextract` module inside Presidio's recognizer modules."""

    extract = staticmethod(_OFFLINE_TLD)
    TLDExtract = tldextract.TLDExtract


def validator_cache(validate):
    """A validator (a pure function of the candidate string) with its recent answers kept.

    The stream scanner detects over its whole hold-back window on every chunk, so a value stays in view
    for window / chunk feeds (tens to hundreds) and was validated again on each: for a stream of IP
    addresses or card numbers the validators (3-10 us a call) were most of its cost. Bounded: the
    values of untrusted text are unbounded."""
    return functools.lru_cache(maxsize=2048)(validate)


def _context_before(text: str, start: int, words: tuple[str, ...], window: int = 48) -> bool:
    before = text[max(0, start - window) : start].lower()
    return any(w in before for w in words)


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


_SSN = re.compile(r"(?<![\d.-])(\d{3})([- .])(\d{2})\2(\d{4})(?![\d-]|[.:]\d)|(?<![\w.-])(\d{9})(?![\w-]|[.:]\d)")
_SSN_CONTEXT = ("ssn", "social security", "social sec", "ss#", "ss #")


class SsnDetector:
    """US SSNs: delimited 3-2-4 groups (Presidio's medium pattern) or 9 digits after an SSN cue."""

    entity_type = "US_SSN"
    max_len = 11
    min_digits = 9

    def __init__(self, classes: dict[str, type]) -> None:
        self._invalidate = validator_cache(classes["UsSsnRecognizer"]().invalidate_result)

    def detect_window(self, text: str, lo: int, hi: int, lower: str) -> Iterator[tuple[int, int, float]]:
        for m in _SSN.finditer(text, lo, hi):
            if self._invalidate(m.group()):
                continue
            cued = _context_before(lower, m.start(), _SSN_CONTEXT)
            if m.group(5) is not None:
                if cued:
                    yield m.start(), m.end(), 0.85
            else:
                # Beats a phone reading of the same digits; a cue makes it near certain.
                yield m.start(), m.end(), 0.95 if cued else 0.75


_IPV4 = re.compile(r"(?<![\w.])\d{1,3}(?:\.\d{1,3}){3}(?:/\d{1,2})?(?!\w|\.\d)")
_IPV6_HINT = re.compile(r":[0-9A-Fa-f]{0,4}:")
_HEX_COLON = frozenset("0123456789abcdefABCDEF:")
_IPV6 = re.compile(r"(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?:%\w+)?(?:/\d{1,3})?(?![\w:])")


class IpDetector:
    entity_type = "IP_ADDRESS"
    max_len = 50
    min_digits = 4

    def __init__(self, classes: dict[str, type]) -> None:
        self._invalidate = validator_cache(classes["IpRecognizer"]().invalidate_result)

    def detect_window(self, text: str, lo: int, hi: int, lower: str) -> list[tuple[int, int, float]]:
        if text.find(".", lo, hi) == -1:  # most clusters: a list, not a generator, is cheap to return
            return []
        return [(m.start(), m.end(), 0.9) for m in _IPV4.finditer(text, lo, hi) if not self._invalidate(m.group())]

    def detect(self, text: str) -> Iterator[tuple[int, int, float]]:
        """IPv6 only (IPv4 comes through the numeric scan).

        Every candidate holds a ':h{0,4}:' (its literal ':' makes that search fast), so the address
        regex only runs from the start of the hex-and-colon run around each such spot.
        """
        if ":" not in text:  # a memchr; the hint regex walks the text at several times its cost
            return
        hint = _IPV6_HINT.search(text)
        done = 0
        while hint is not None:
            start = hint.start()
            while start > done and text[start - 1] in _HEX_COLON:
                start -= 1
            m = _IPV6.match(text, start)
            if m is not None:
                value = m.group()
                if value.count(":") >= 2 and value.strip(":") and not self._invalidate(value):
                    yield m.start(), m.end(), 0.9
                done = m.end()
            else:
                done = hint.end() - 1
                while done < len(text) and text[done] in _HEX_COLON:
                    done += 1  # the rest of this run can't start a match either (the lookbehind)
            hint = _IPV6_HINT.search(text, max(done, hint.start() + 1))


_IBAN = re.compile(r"[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?(?!\w)")


class IbanDetector:
    entity_type = "IBAN_CODE"
    max_len = 42
    min_digits = 2

    def __init__(self, classes: dict[str, type]) -> None:
        self._validate = validator_cache(classes["IbanRecognizer"]().validate_result)

    def detect_window(self, text: str, lo: int, hi: int, lower: str) -> list[tuple[int, int, float]]:
        # Called for every cluster and nearly always empty: a list, not a generator, costs less to return.
        # The numeric scan starts at the check digits; the country code is the two letters before.
        start = lo - 2
        if start < 0 or not text[start:lo].isupper() or (start and text[start - 1].isalnum()):
            return []
        m = _IBAN.match(text, start)
        if m is None:
            return []
        value = m.group()
        # The optional trailing group can swallow the next word: try the candidate, then without it.
        for end in (m.end(), start + value.rfind(" ")) if " " in value else (m.end(),):
            if self._validate(text[start:end]) is not False:
                return [(start, end, 1.0)]
        return []


_URL_BODY = re.compile(r"[^\s<>\"'`]+")
_URL_TRAILING = ".,;:!?)]}*_'\""
_URL_SCHEMES = ("https", "http", "ftp")
_WWW = ("www.", "WWW.", "Www.")
_WWW_BEFORE = frozenset("_@.")


class UrlDetector:
    """'scheme://...' (http, https, ftp) or 'www....': found from the '://' and 'www.' literals."""

    entity_type = "URL"
    max_len = 512  # longer URLs get split by the stream hold-back; a cap keeps the hold bounded

    def detect(self, text: str) -> Iterator[tuple[int, int, float]]:
        starts: list[int] = []
        i = text.find("://")
        while i != -1:
            for scheme in _URL_SCHEMES:
                if text[max(0, i - len(scheme)) : i].lower() == scheme:
                    starts.append(i - len(scheme))
                    break
            i = text.find("://", i + 3)
        for www in _WWW:
            i = text.find(www)
            while i != -1:
                if not i or not (text[i - 1].isalnum() or text[i - 1] in _WWW_BEFORE):
                    starts.append(i)
                i = text.find(www, i + 4)
        if len(starts) > 1:
            starts.sort()
        covered = 0
        for start in starts:
            if start < covered:
                continue  # the 'www.' inside 'https://www.'
            end = covered = _URL_BODY.match(text, start).end()
            # Trailing punctuation is not part of the URL; a ')' is when the URL holds its '('. Counted
            # once, not per stripped character: slicing and recounting per character was quadratic in a
            # run of trailing ')' (9 s for 100 KB). '(' is never stripped, so its count stays fixed.
            opens = closes = -1
            while end > start and text[end - 1] in _URL_TRAILING:
                if text[end - 1] == ")":
                    if closes < 0:
                        opens, closes = text.count("(", start, end), text.count(")", start, end)
                    if opens >= closes:
                        break
                    closes -= 1
                end -= 1
            value = text[start:end]
            if "." in value.split("//", 1)[-1]:
                yield start, end, 0.9


_PASSPORT = re.compile(r"(?<![\w-])(?:[A-Z]\d{8}|\d{9})(?![\w-])")
_PASSPORT_CONTEXT = ("passport",)


class PassportDetector:
    """US passport numbers (Presidio's two shapes): 'very weak' alone, so only after a passport cue."""

    entity_type = "US_PASSPORT"
    max_len = 9
    min_digits = 8

    def detect_window(self, text: str, lo: int, hi: int, lower: str) -> Iterator[tuple[int, int, float]]:
        # A match needs the cue in the 64 characters before it, so only that stretch is searched: a
        # search of the whole text per digit cluster was quadratic (0.85 s for 100 KB of "12345678 p ").
        if "passport" not in lower[max(0, lo - 65) : hi]:
            return
        for m in _PASSPORT.finditer(text, max(0, lo - 1), hi):
            if _context_before(lower, m.start(), _PASSPORT_CONTEXT, window=64):
                yield m.start(), m.end(), 0.8


# Phone-shaped runs: optional +CC, optional (area) or (0), digit groups split by one space, '-' or '.'
# (no commas or slashes: amounts and dates), optional extension.
_PHONE = re.compile(
    r"(?<![\w+.,/:-])(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,5}\)[ .-]?|\(0\)[ .-]?)?\d{1,10}(?:[ .-]?\(0\)[ .-]?\d{1,10})?(?:[ .-]\d{1,10}){0,4}"
    r"(?:[ ]?(?:x|ext\.?|#)[ ]?\d{1,6})?(?![\w@:]|[.,/:-]\d)",
    re.IGNORECASE,
)
_DATE_LIKE = re.compile(r"(?:19|20)\d\d[-./](?:0?[1-9]|1[0-2])[-./](?:0?[1-9]|[12]\d|3[01])$|\d{3}-\d{2}-\d{4}$")  # or SSN-shaped
_EXTENSION = re.compile(r"[ ]?(?:x|ext\.?|#)[ ]?\d+$", re.IGNORECASE)
_PHONE_REGIONS = ("US", "GB", "DE", "FR", "CH")
_PHONE_CONTEXT = ("phone", "call", "tel", "mobile", "cell", "fax", "number", "reach", "text", "contact", "desk")


class PhoneDetector:
    entity_type = "PHONE_NUMBER"
    max_len = 32
    min_digits = 7

    def __init__(self, ip_invalidate=None) -> None:
        # With IP_ADDRESS enabled, dotted quads that are valid addresses skip the phone validation.
        self._ip_invalidate = ip_invalidate

    def detect_window(self, text: str, lo: int, hi: int, lower: str) -> Iterator[tuple[int, int, float]]:
        for m in _PHONE.finditer(text, lo, hi):
            value = m.group()
            core = _EXTENSION.sub("", value)
            digits = sum(c.isdigit() for c in core)
            if digits < 7 or digits > 15 or _DATE_LIKE.match(core):
                continue
            international = value.startswith("+")
            groups = re.split(r"[ .-]+", core.replace("(0)", "").strip())
            if not international and any(len(g) == 1 for g in groups[1:]):
                continue  # ISBNs and part numbers have one-digit groups; phone numbers don't
            grouped = any(c in core for c in " -.()")
            cued = _context_before(lower, m.start(), _PHONE_CONTEXT)
            # A bare run of digits is an order number or an id unless something says it's a phone.
            if not international and not grouped and not (cued and digits in (10, 11)):
                continue
            # Uncued national numbers: a trunk '0', an (area code) or 10+ digits; else it's likely an id.
            if not international and not cued and (digits < 9 or (digits < 10 and core[0] not in "0(")):
                continue
            if self._ip_invalidate is not None and _IPV4_SHAPE.match(core) and not self._ip_invalidate(core):
                continue  # the IP reading (0.9) outscores any phone reading of the same span
            if _is_possible_phone(core, international):
                yield m.start(), m.end(), 0.85 if cued else 0.7


_IPV4_SHAPE = re.compile(r"\d{1,3}(?:\.\d{1,3}){3}$")
_NANP = re.compile(r"(?:\+1[ .-]?)?(?:\([2-9]\d\d\)|[2-9]\d\d)[ .-]?\d{3}[ .-]?\d{4}$|[2-9]\d\d[ .-]?\d{4}$")


# Bounded cache: one parse costs ~16 us and up to five regions are tried, while the same numbers recur
# across a conversation (each turn resends the history) and across the stream scanner's re-scans.
@functools.lru_cache(maxsize=2048)
def _is_possible_phone(value: str, international: bool) -> bool:
    # `phonenumbers.parse` costs tens of microseconds; North American layouts (10 digits, or 7, not
    # starting 0 or 1, optionally after +1) are always possible US numbers, so skip it for them.
    if _NANP.match(value):
        return True
    for region in (None,) if international else _PHONE_REGIONS:
        try:
            number = phonenumbers.parse(value, region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_possible_number(number):
            return True
    return False


# Runs of digit groups joined by short separators: every numeric entity lies inside one. One scan of
# the text finds them; the numeric detectors then run only on these windows. A lone digit (a list
# number, a count) has too few digits for any detector, so the scan doesn't return it; the pattern
# opens with a bare \d so the regex engine's first-character skip still applies (an alternation at the
# top level, or a lookbehind, would disable it and triple the cost of the scan).
_SEP = r"(?:[ \-./:()+]{1,3}|\r?\n|[ ]?(?:x|ext\.?)[ ]?)"
_CLUSTER = re.compile(rf"\d(?:\d+(?:{_SEP}\d+)*|{_SEP}\d+(?:{_SEP}\d+)*)\)?", re.IGNORECASE)
# On ASCII text the ASCII-only twin finds the same clusters about 40% faster: its first-character skip
# tests [0-9], not the Unicode decimal property (and IGNORECASE differs only on non-ASCII letters). Text
# without an ASCII digit has no cluster at all, which ten memchr-speed `in` tests settle up front.
_CLUSTER_ASCII = re.compile(_CLUSTER.pattern, re.IGNORECASE | re.ASCII)
_NOT_DIGITS = str.maketrans("", "", " -./:()+\r\nxXext")
_CONTEXT_DIGITS = 7  # the fewest digits of a detector that reads the lower-cased context (phone)


class NumericScan:
    """Dispatches each digit cluster to the enabled numeric detectors that could match it."""

    max_len = 0

    def __init__(self, detectors: list) -> None:
        self.detectors = detectors
        self.max_len = max((d.max_len for d in detectors), default=0)

    def detect(self, text: str) -> Iterator[tuple[str, int, int, float]]:
        lower = ""
        n = len(text)
        detectors = self.detectors
        if not text.isascii():
            clusters = _CLUSTER.finditer(text)
        elif _has_ascii_digit(text):
            clusters = _CLUSTER_ASCII.finditer(text)
        else:
            return
        for m in clusters:
            lo, hi = m.span()
            if lo and text[lo - 1] in "+(":
                lo -= 1
            digits = len(m.group().translate(_NOT_DIGITS))
            if digits >= _CONTEXT_DIGITS and not lower:
                lower = text.lower()
            window_hi = min(n, hi + 2)  # let trailing lookaheads see what follows
            for d in detectors:
                if digits >= d.min_digits:
                    for start, end, score in d.detect_window(text, lo, window_hi, lower):
                        yield d.entity_type, start, end, score


def _has_ascii_digit(text: str) -> bool:
    # Spelled out: a generator over the ten digits costs about three times as much on short texts.
    return ("0" in text or "1" in text or "2" in text or "3" in text or "4" in text or "5" in text
            or "6" in text or "7" in text or "8" in text or "9" in text)


def build_fast_detectors(entities: frozenset[str]) -> list:
    """The enabled detectors; built once at start-up. Numeric ones share one NumericScan."""
    from gateway.guardrails.pii.cards import CardDetector
    from gateway.guardrails.pii.secrets import SecretDetector

    classes = load_recognizer_classes()
    ip = IpDetector(classes)
    numeric = {
        "CREDIT_CARD": CardDetector(classes),
        "US_SSN": SsnDetector(classes),
        "IBAN_CODE": IbanDetector(classes),
        "US_PASSPORT": PassportDetector(),
        "PHONE_NUMBER": PhoneDetector(ip._invalidate if "IP_ADDRESS" in entities else None),
    }
    scanned = [d for e, d in numeric.items() if e in entities]
    if "IP_ADDRESS" in entities:
        scanned.append(ip)
    detectors: list = [NumericScan(scanned)] if scanned else []
    other = {
        "EMAIL_ADDRESS": [EmailDetector(classes), ObfuscatedEmailDetector()],
        "IP_ADDRESS": [ip],
        "URL": [UrlDetector()],
        "SECRET": [SecretDetector()],
    }
    for entity, found in other.items():
        if entity in entities:
            detectors.extend(found)
    return detectors
