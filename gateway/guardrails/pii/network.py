"""IP_ADDRESS (IPv4 through the numeric scan, IPv6 on its own) and URL."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator

from gateway.guardrails.pii.validation import validator_cache

_IPV4 = re.compile(r"(?<![\w.])\d{1,3}(?:\.\d{1,3}){3}(?:/\d{1,2})?(?!\w|\.\d)")
_IPV6_HINT = re.compile(r":[0-9A-Fa-f]{0,4}:")
_HEX_COLON = frozenset("0123456789abcdefABCDEF:")
_IPV6 = re.compile(r"(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?:%\w+)?(?:/\d{1,3})?(?![\w:])")


# Four dot-separated numbers after one of these are a version ("version": "1.38.146.97", Chrome/120.0.6099.109).
_VERSION_CUES = ("version", "ver.", "release", "firmware", "build", "kernel", "chrome/", "safari/", "image", "upgrad",
                 "downgrad")


_IMAGE_TAG = re.compile(r"[\w.-]/[\w.-]+:\Z")


def _after_version_cue(text: str, start: int) -> bool:
    before = text[max(0, start - 40) : start].lower()
    if _IMAGE_TAG.search(before):
        return True  # registry/app:1.2.3.4
    if start and text[start - 1] in "vV" and not (start > 1 and text[start - 2].isalnum()):
        return True  # v1.2.3.4
    return any(c in before for c in _VERSION_CUES)


def _names_no_one(value: str) -> bool:
    """Loopback, unspecified and reserved addresses (127.0.0.1, 0.0.0.0, ::1, 255.255.255.0) are the
    same on every machine, so they identify no one; a config or a log is full of them."""
    try:
        address = ipaddress.ip_interface(value).ip
    except ValueError:
        return False
    # IPv6 'reserved' is everything outside the assigned blocks, which a random address often is.
    return address.is_loopback or address.is_unspecified or (address.version == 4 and address.is_reserved)


class IpDetector:
    entity_type = "IP_ADDRESS"
    max_len = 50
    min_digits = 4

    def __init__(self, classes: dict[str, type]) -> None:
        presidio_invalidate = classes["IpRecognizer"]().invalidate_result

        def invalidate(value: str) -> bool:
            return presidio_invalidate(value) or _names_no_one(value)

        self._invalidate = validator_cache(invalidate)

    def detect_window(self, text: str, lo: int, hi: int, lower: str) -> list[tuple[int, int, float]]:
        if text.find(".", lo, hi) == -1:  # most clusters: a list, not a generator, is cheap to return
            return []
        return [(m.start(), m.end(), 0.9) for m in _IPV4.finditer(text, lo, hi)
                if not self._invalidate(m.group()) and not _after_version_cue(text, m.start())]

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

