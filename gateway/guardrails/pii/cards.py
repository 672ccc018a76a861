"""Payment card numbers, including the ranges and layouts Presidio's card pattern misses.

Presidio's pattern only accepts 13-16 digit numbers starting 1, 3, 4, 5[0-5] or 6, so it misses
Mastercard's 2-series (2221-2720), 19-digit Visa and Maestro, and numbers split across a line break.
Candidates here are 12-19 digits in groups separated by one space, '-' or a line break; each must have
an issuer prefix that fits its length and pass Presidio's Luhn validator.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from gateway.guardrails.pii.validation import validator_cache

# Groups of 2-8 digits (cards are written 4-4-4-4, 4-6-5, 8\n8, ...) or one solid run; never after a
# "+", which starts a phone number in E.164 (+4915123450210 is also a Luhn-valid 13-digit "Visa").
_CANDIDATE = re.compile(r"(?<![\d.,/+-])\d{2,19}(?:(?:[ -]|\r?\n)\d{2,8}){0,5}(?![\d]|[.,/-]\d)")
_SEPARATORS = str.maketrans("", "", " -\r\n")


def _issuer_accepts(digits: str) -> bool:
    n = len(digits)
    p2 = int(digits[:2])
    p4 = int(digits[:4])
    p6 = int(digits[:6])
    if digits[0] == "4":  # Visa
        return n in (13, 16, 19)
    if 51 <= p2 <= 55 or 2221 <= p4 <= 2720:  # Mastercard
        return n == 16
    if p2 in (34, 37):  # American Express
        return n == 15
    if p4 == 6011 or p2 == 65 or 644 <= int(digits[:3]) <= 649 or 622126 <= p6 <= 622925:  # Discover
        return 16 <= n <= 19
    if p2 == 62:  # UnionPay
        return 16 <= n <= 19
    if p2 == 35:  # JCB (3528-3589 assigned; the rest of 35 is Presidio-accepted and test generators use it)
        return 16 <= n <= 19
    if p4 in (1800, 2131):  # JCB (old 15-digit)
        return n == 15
    if 300 <= int(digits[:3]) <= 305 or p2 in (36, 38, 39):  # Diners Club
        return 14 <= n <= 19
    if p2 == 50 or 56 <= p2 <= 69:  # Maestro
        return 12 <= n <= 19
    return False


class CardDetector:
    entity_type = "CREDIT_CARD"
    max_len = 19 + 6 * 2

    def __init__(self, classes: dict[str, type]) -> None:
        self._luhn = validator_cache(classes["CreditCardRecognizer"]().validate_result)

    min_digits = 12

    def detect_window(self, text: str, lo: int, hi: int, lower: str) -> Iterator[tuple[int, int, float]]:
        for m in _CANDIDATE.finditer(text, lo, hi):
            value = m.group()
            digits = value.translate(_SEPARATORS)
            if not 12 <= len(digits) <= 19:
                continue
            if "\n" in value and value.count("\n") > 1:
                continue
            if _issuer_accepts(digits) and self._luhn(digits):
                yield m.start(), m.end(), 1.0
