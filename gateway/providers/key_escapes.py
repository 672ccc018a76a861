"""The escapes a reader decodes back into a provider key, for `key_scrub`: JSON `\\u` (surrogate pairs too)
and `\\/` escapes at any depth of escaped backslashes, and percent-encoding; decoding with a map back to raw
positions (to cut exactly the raw text a key was written in); an escape cut off at a text's end; and the
byte forms the scrubber's pre-checks look for.
"""

from __future__ import annotations

import re
import urllib.parse

import orjson

JSON_ESCAPE = re.compile(r"\\+u([dD][89abAB][0-9a-fA-F]{2})\\+u([dD][c-fC-F][0-9a-fA-F]{2})|\\+u([0-9a-fA-F]{4})|\\+(/)")


def json_char(m: re.Match) -> str:
    if m.group(4):
        return "/"
    if m.group(3):
        return chr(int(m.group(3), 16))
    hi, lo = int(m.group(1), 16), int(m.group(2), 16)
    return chr(0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00))


def unescape(s: str) -> str:
    """`s` as a reader may decode it: JSON `\\u`/`\\/` escapes (at any depth of escaped backslashes) and
    percent-encoding, over and over (a URL in a JSON string in a message) until nothing changes."""
    for _ in range(4):
        out = urllib.parse.unquote(JSON_ESCAPE.sub(json_char, s))
        if out == s:
            break
        s = out
    return s


# One escape a reader decodes to one character (the JSON forms above, or an ASCII `%XX`), for mapping decoded
# positions back to the raw text; and an escape cut off at a text's end (its next piece may complete it).
ONE_ESCAPE = re.compile(JSON_ESCAPE.pattern + r"|%([0-7][0-9a-fA-F])")
PARTIAL_ESCAPE = re.compile(r"(?:\\+(?:u[0-9a-fA-F]{0,3}|u[dD][89abAB][0-9a-fA-F]{2}\\*u?[0-9a-fA-F]{0,3})?|%[0-9a-fA-F]?)\Z")


# The same, as a JSON string's end in an event's bytes (a literal backslash is written `\\\\` there); each
# led by a literal that `in` finds first (a `\\u00e9` of ensure_ascii text is no literal backslash).
CUT_BACKSLASH = re.compile(rb'(?:\\\\)+(?:u[0-9a-fA-F]{0,3}|u[dD][89abAB][0-9a-fA-F]{2}(?:\\\\)*u?[0-9a-fA-F]{0,3})?"')
CUT_PERCENT = re.compile(rb'%[0-9a-fA-F]?"')


def cut_escape(data: bytes) -> bool:
    """Does a JSON string in `data` end in an escape cut off?"""
    return ((b"\\\\" in data and CUT_BACKSLASH.search(data) is not None)
            or (b"%" in data and CUT_PERCENT.search(data) is not None))


def decode_map(s: str) -> tuple[str, list[int]]:
    """`s` decoded as `unescape` does (ASCII percent escapes only: an ASCII key has no other), with the
    raw position each decoded character starts at, and `len(s)` after the last."""
    starts = list(range(len(s) + 1))
    for _ in range(4):
        out: list[str] = []
        at: list[int] = []
        last = 0
        for m in ONE_ESCAPE.finditer(s):
            out.append(s[last:m.start()])
            at.extend(range(last, m.start()))
            out.append(chr(int(m.group(5), 16)) if m.group(5) else json_char(m))
            at.append(m.start())
            last = m.end()
        if not at:
            break
        out.append(s[last:])
        at.extend(range(last, len(s) + 1))
        s = "".join(out)
        starts = [starts[i] for i in at]
    return s, starts


def hex_class(n: int, width: int) -> str:
    """`n` in hex, either case accepted: a reader's JSON or URL decoder takes both."""
    return "".join(f"[{d}{d.upper()}]" if d.isalpha() else d for d in f"{n:0{width}x}")


def json_raw(s: str) -> bytes:
    """`s` as it sits inside a JSON string when written without `\\u` escapes."""
    return orjson.dumps(s)[1:-1]
