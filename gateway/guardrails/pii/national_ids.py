"""Identity and account numbers: US_SSN, US_PASSPORT and IBAN_CODE (windows of the numeric scan)."""

from __future__ import annotations

import re
from collections.abc import Iterator

from gateway.guardrails.pii.validation import context_before, validator_cache

# A 3-2-4 run inside a longer group of digit groups ("1Z 435 754 79 3902 923", a tracking number) is not
# an SSN: no digit group may touch it with one more separator.
_SSN = re.compile(r"(?<![\d.-])(?<!\d )(\d{3})([- .])(\d{2})\2(\d{4})(?![\d-]|[.: ]\d)|(?<![\w.-])(\d{9})(?![\w-]|[.:]\d)")
_SSN_CONTEXT = ("ssn", "social security", "social sec", "soc. sec", "soc sec", "ss#", "ss #", "seguro social")
# Values printed as examples (the Woolworth wallet card, advertising samples, Presidio's list) and runs
# of one digit. People type exactly these into forms and prompts, so they only lower the score of an
# uncued number; after a cue they are SSNs like any other.
_SAMPLE_SSNS = frozenset({"123456789", "987654320", "078051120", "219099999", "457555462"})


def ssn_structure_possible(digits: str) -> bool:
    """False for numbers the SSA never issues: area 000, 666 or 900-999, group 00, serial 0000."""
    area = digits[:3]
    return not (area in ("000", "666") or area[0] == "9" or digits[3:5] == "00" or digits[5:] == "0000")


def ssn_is_sample(digits: str) -> bool:
    return digits in _SAMPLE_SSNS or digits == digits[0] * 9


class SsnDetector:
    """US SSNs: delimited 3-2-4 groups (Presidio's medium pattern) or 9 digits after an SSN cue.

    Presidio's invalidation mixes two kinds of rejection: impossible structures and a list of sample
    values. Only the first is a fact about the number; the second is a guess that it is an example,
    which a cue ("SSN", "social security") overrules."""

    entity_type = "US_SSN"
    max_len = 11
    min_digits = 9

    def detect_window(self, text: str, lo: int, hi: int, lower: str) -> Iterator[tuple[int, int, float]]:
        for m in _SSN.finditer(text, lo, hi):
            digits = m.group(5) or m.group(1) + m.group(3) + m.group(4)
            if not ssn_structure_possible(digits):
                continue
            cued = context_before(lower, m.start(), _SSN_CONTEXT)
            if not cued and ssn_is_sample(digits):
                continue
            if m.group(5) is not None:
                if cued:
                    yield m.start(), m.end(), 0.85
            else:
                # Beats a phone reading of the same digits; a cue makes it near certain.
                yield m.start(), m.end(), 0.95 if cued else 0.75


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
            if context_before(lower, m.start(), _PASSPORT_CONTEXT, window=64):
                yield m.start(), m.end(), 0.8


# Phone-shaped runs: optional +CC, optional (area) or (0), digit groups split by one space, '-' or '.'
