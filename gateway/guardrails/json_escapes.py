"""JSON text as its readers decode it: tool-call arguments are JSON, and `bob\\u0040example.com` is
`bob@example.com` to every caller and model that parses them. Guardrails scan arguments after
`\\uXXXX` and `\\/` escapes are written as the characters they stand for (the same JSON value), so an
escape cannot hide a value from a rule. Escapes that JSON requires (quote, backslash, control
characters) and surrogate halves stay as they are.

`unescape` does a whole text; `Unescaper` does a stream, holding back an escape cut by a chunk edge.
"""

from __future__ import annotations

import re

# An escape: `\uXXXX`, an escape cut at the end of the text (`\`, `\u`, `\u0`..), or `\` and one character
# (so an escaped backslash is consumed as a pair and never starts another escape).
_ESCAPE = re.compile(r"\\(?:u[0-9a-fA-F]{4}|u[0-9a-fA-F]{0,3}\Z|\Z|.)", re.S)


def _char(m: re.Match[str]) -> str:
    s = m.group()
    if s == "\\/":
        return "/"
    if len(s) == 6:
        c = int(s[2:], 16)
        if c >= 0x20 and c not in (0x22, 0x5C) and not 0xD800 <= c < 0xE000:
            return chr(c)
    return s


def unescape(text: str) -> str:
    """`text` (JSON) with its optional escapes written as characters: the same JSON value."""
    return _ESCAPE.sub(_char, text) if "\\" in text else text


def _cut(m: re.Match[str], end: int) -> bool:
    s = m.group()
    return m.end() == end and (s == "\\" or (s[1] == "u" and len(s) < 6))


class Unescaper:
    """`unescape` over a stream of chunks: an escape cut by a chunk's end waits for the next chunk."""

    __slots__ = ("held",)

    def __init__(self) -> None:
        self.held = ""

    def feed(self, chunk: str) -> str:
        text = self.held + chunk
        self.held = ""
        if "\\" not in text:
            return text
        last = None
        for last in _ESCAPE.finditer(text):
            pass
        if last is not None and _cut(last, len(text)):
            text, self.held = text[:last.start()], text[last.start():]
        return unescape(text)

    def flush(self) -> str:
        held, self.held = self.held, ""
        return held
