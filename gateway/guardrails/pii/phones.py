"""PHONE_NUMBER: phone-shaped digit groups, checked with `phonenumbers` (candidates only, never a region-by-region scan)."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator

import phonenumbers


_PHONE = re.compile(
    r"(?<![\w+./:-])(?<!\d,)(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,5}\)[ .-]?|\(0\)[ .-]?|0\d{2,4}/)?\d{1,10}"
    r"(?:[ .-]?\(0\)[ .-]?\d{1,10})?(?:[ .-]\d{1,10}){0,4}"
    r"(?:[ ]?(?:x|ext\.?|#)[ ]?\d{1,6})?(?![\w@]|:\w|[./:-]\d|,\d{3}(?!\d))",
    re.IGNORECASE,
)
# Dates (2024-03-15, 15/03/2024), compact timestamps (20240315-142231) and SSN-shaped 3-2-4 runs.
_DATE_LIKE = re.compile(r"(?:19|20)\d\d[-./]?(?:0[1-9]|1[0-2]|[1-9](?=[-./]))[-./]?(?:0[1-9]|[12]\d|3[01]|[1-9]\b)"
                        r"(?:[-T_ ]?\d{4,6})?$|\d{3}-\d{2}-\d{4}$|(?:0?[1-9]|[12]\d|3[01])[./](?:0?[1-9]|1[0-2])[./](?:19|20)\d\d$")
_EXTENSION = re.compile(r"[ ]?(?:x|ext\.?|#)[ ]?\d+$", re.IGNORECASE)
_GROUPS = re.compile(r"[ ./-]+")
# National numbers are tried in these regions: with a trunk '0', the countries that dial one; without,
# those whose national numbers have none (Spain, Poland, Portugal, Denmark, ...) but only after a cue.
_TRUNK_REGIONS = ("GB", "DE", "FR", "IT", "NL", "AT", "CH", "BE", "SE", "IE", "AU", "JP", "IN", "FI", "NO", "BR")
_NO_TRUNK_REGIONS = ("US", "ES", "PL", "PT", "DK", "NO", "IT", "FR", "DE", "GB", "CH")
# What the words before a number say it is, by word prefix (a substring test took "tel" in
# "Bestellung" and "hotel" for a phone cue). The nearest cue decides: a phone cue after an id cue
# ("order 4711, call 0171 ...") makes a phone number, and the reverse an id. "number" alone leans phone.
_PHONE_CUES = ("tel", "tél", "telf", "tfno", "phone", "ph", "mobil", "móvil", "movil", "cell", "cel", "handy", "fax",
               "gsm", "whatsapp", "sms", "call", "ruf", "rückruf", "anruf", "appel", "rappel", "llam", "llám", "ligue", "chiam", "bel",
               "terugbel", "zadzwo", "kom", "contact", "kontakt", "reach", "text", "desk", "hotline", "fon", "dial",
               "ring", "on_call", "oncall")
_ID_CUES = ("order", "bestell", "commande", "pedido", "ordine", "bestelling", "zamówien", "tracking", "track", "trace",
            "sendung", "paket", "suivi", "seguimiento", "tracciamento", "przesył", "invoice", "rechnung", "factur",
            "fattur", "faktur", "ref", "kunden", "vertrag", "customer", "isbn", "sku", "catalog", "serial", "version",
            "build", "ticket", "case", "account", "konto", "iban", "contract", "id", "n°", "nº", "passport", "pass",
            "ssn", "social", "tax", "steuer", "vat", "nip", "pesel", "nif", "insee", "bsn")
_NUMBER_WORDS = frozenset({"number", "nummer", "numer", "número", "numéro", "numero", "no.", "nr", "nr."})
_WORDS = re.compile(r"[^\W\d]\w*\.?|n[°º]")
_SIGNATURE_LETTERS = frozenset("tmopf")  # "T: +49 ...", "M 0171 ...", "| O 030 ..." in signatures


def _cue(text: str, lower: str, start: int) -> str | None:
    """'phone', 'id' or None: what the nearest cue in the 48 characters before `start` says."""
    kind = None
    number = False
    for m in _WORDS.finditer(lower, max(0, start - 48), start):
        word = m.group()
        if word in _NUMBER_WORDS:
            number = True
        elif word.startswith(_PHONE_CUES):
            kind = "phone"
        elif word.startswith(_ID_CUES):
            kind = "id"
        elif len(word) == 1 and word in _SIGNATURE_LETTERS:
            i = m.start()
            after = lower[i + 1 : i + 2]
            line_start = lower[max(0, i - 2) : i].strip(" \t")[-1:] in ("", "\n", "|")
            upper = len(lower) == len(text) and text[i].isupper()  # lower() kept the offsets
            if after == ":" or (upper and after == " " and line_start):
                kind = "phone"
    if kind is None and number:
        return "phone"
    return kind


class PhoneDetector:
    entity_type = "PHONE_NUMBER"
    max_len = 32
    min_digits = 7

    def __init__(self, ip_invalidate=None) -> None:
        self._ip_invalidate = ip_invalidate  # kept for the registry's signature; IPv4 shapes are never phones

    def detect_window(self, text: str, lo: int, hi: int, lower: str) -> Iterator[tuple[int, int, float]]:
        for m in _PHONE.finditer(text, lo, hi):
            value = m.group()
            core = _EXTENSION.sub("", value)
            digits = sum(c.isdigit() for c in core)
            if digits < 7 or digits > 15 or _DATE_LIKE.match(core) or _IPV4_SHAPE.match(core):
                continue
            international = value.startswith("+")
            cue = _cue(text, lower or text.lower(), m.start())
            cued = cue == "phone"
            if not international and not _national_shape_ok(text, m.start(), core, digits, cued, cue):
                continue
            if _is_possible_phone(core, international, cued):
                yield m.start(), m.end(), 0.85 if cued else 0.7


def _national_shape_ok(text: str, start: int, core: str, digits: int, cued: bool, cue: str | None) -> bool:
    """Rules for numbers written without a country code, where ids and codes look most alike."""
    if cue == "id" or digits > 12:
        return False  # an order or tracking number; national numbers have at most 12 digits with the trunk
    groups = _GROUPS.split(core.replace("(0)", "").strip("() "))
    if any(len(g) == 1 for g in groups[1:]):
        return False  # ISBNs and part numbers have one-digit groups; phone numbers don't
    if len(groups) >= 3 and all(len(g) == 4 for g in groups):
        return False  # 4-4-4: a card-like reference, no numbering plan prints it
    if "." in core and len(groups) == 4 and not core.startswith("0"):
        return False  # a version (1.38.146.9977)
    if _CODE_BEFORE.search(text, max(0, start - 16), start):
        return False  # the tail of a longer code ("1Z 693 056 01 4798 524")
    grouped = len(groups) > 1 or "(" in core
    # A bare run of digits is an order number or an id unless something says it's a phone.
    if not grouped and not (cued and digits in (9, 10, 11)):
        return False
    # Uncued national numbers: a trunk '0', an (area code) or 10+ digits; else it's likely an id.
    return cued or not (digits < 9 or (digits < 10 and core[0] not in "0("))


_IPV4_SHAPE = re.compile(r"\d{1,3}(?:\.\d{1,3}){3}$")
_CODE_BEFORE = re.compile(r"(?<!\S)[A-Za-z]*\d\w* \Z")  # searched in 16 characters only
_NANP = re.compile(r"(?:\+1[ .-]?)?(?:\([2-9]\d\d\)|[2-9]\d\d)[ .-]?\d{3}[ .-]?\d{4}$|[2-9]\d\d[ .-]?\d{4}$")


# Bounded cache: one parse costs ~16 us and up to five regions are tried, while the same numbers recur
# across a conversation (each turn resends the history) and across the stream scanner's re-scans.
@functools.lru_cache(maxsize=2048)
def _is_possible_phone(value: str, international: bool, cued: bool = False) -> bool:
    # `phonenumbers.parse` costs tens of microseconds; North American layouts (10 digits, or 7, not
    # starting 0 or 1, optionally after +1) are always possible US numbers, so skip it for them.
    if _NANP.match(value):
        return True
    if international:
        regions: tuple = (None,)
    elif value.lstrip("(").startswith("0"):
        regions = _TRUNK_REGIONS
    else:
        regions = _NO_TRUNK_REGIONS if cued else ("US", "GB", "DE", "FR", "CH")
    for region in regions:
        try:
            number = phonenumbers.parse(value, region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_possible_number(number):
            return True
    return False

