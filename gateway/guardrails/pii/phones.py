"""PHONE_NUMBER: phone-shaped digit groups, checked with `phonenumbers` (candidates only, never a region-by-region scan)."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator

import phonenumbers

from gateway.guardrails.pii.validation import context_before

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
            cued = context_before(lower, m.start(), _PHONE_CONTEXT)
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

