"""Text normalisation for injection scoring: undo the obfuscations attackers use to hide instructions.

Order matters: tag characters are decoded before zero-width stripping (both are invisible), NFKC folds
full-width and compatibility forms before homoglyph mapping, and leetspeak is undone last on the lowered
text. Embedded base64 runs are decoded and appended as extra lines so the decoded instruction is scored
like any other line.
"""

from __future__ import annotations

import base64
import binascii
import re
import unicodedata
from collections.abc import Callable

from ._accel import fast
from ._confusables import CONFUSABLES

# Zero-width and other invisible format characters that split words without showing anything.
# With every other format character (Unicode category Cf) outside the tag block, and the supplementary
# variation selectors.
_INVISIBLE = re.compile("[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f"
                        "\u202a-\u202e\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0"
                        "\u0600-\u0605\u06dd\u070f\u0890\u0891\u08e2\ufff9-\ufffb\U000110bd\U000110cd"
                        "\U00013430-\U0001343f\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0100-\U000e01ef]")
INVISIBLE = _INVISIBLE  # also what the PII tier reads through (gateway.guardrails.pii.fold)
# Unicode tag block: U+E0020..E007E mirror printable ASCII; the rest (E0000, E0001, E007F) are dropped.
_TAGS = re.compile("[\U000e0000-\U000e007f]+")
_TAG_TABLE = {cp: (chr(cp - 0xE0000) if 0xE0020 <= cp <= 0xE007E else None)
              for cp in range(0xE0000, 0xE0080)}

# Letters of other scripts that render like Latin ones: Unicode's confusables (UTS #39, generated into
# _confusables by scripts/gen_confusables.py) plus a few hand-picked ones. Applied only to words that mix
# scripts, so real Russian or Greek text keeps its letters (and stays scoreable as Russian).
_HOMOGLYPHS = str.maketrans(CONFUSABLES | {
    "а": "a", "в": "b", "е": "e", "ё": "e", "к": "k", "м": "m", "н": "h", "о": "o", "р": "p", "с": "c",
    "т": "t", "у": "y", "х": "x", "і": "i", "ї": "i", "ј": "j", "ѕ": "s", "ԁ": "d", "һ": "h", "ӏ": "l",
    "ԛ": "q", "ԝ": "w", "ɡ": "g", "ո": "n", "ս": "u",
    "А": "A", "В": "B", "Е": "E", "К": "K", "М": "M", "Н": "H", "О": "O", "Р": "P", "С": "C", "Т": "T",
    "Х": "X", "У": "Y", "І": "I", "Ј": "J", "Ѕ": "S", "Һ": "H", "Ԛ": "Q", "Ԝ": "W",
    "α": "a", "ο": "o", "ε": "e", "ι": "i", "κ": "k", "ν": "v", "ρ": "p", "τ": "t", "υ": "u", "χ": "x",
    "Α": "A", "Β": "B", "Ε": "E", "Ζ": "Z", "Η": "H", "Ι": "I", "Κ": "K", "Μ": "M", "Ν": "N", "Ο": "O",
    "Ρ": "P", "Τ": "T", "Υ": "Y", "Χ": "X",
})
_HOMOGLYPH_CHARS = "".join(chr(k) for k in _HOMOGLYPHS)
# Every look-alike is a non-ASCII word character (\w), so a word that holds one is found from the non-ASCII
# runs of the text: a regex class of 411 characters costs about 0.5 us a character to search (5 ms on an
# 11,000-character prompt with no look-alike in it, the slowest step of the detector), a set lookup per
# non-ASCII character almost nothing.
_HOMOGLYPH_SET = frozenset(_HOMOGLYPH_CHARS)
_NON_ASCII_RUN = re.compile("[^\x00-\x7f]+")
_WORD_REST = re.compile(r"\w*")
_LATIN = re.compile(r"[A-Za-z]")
_NON_LATIN_LETTER = re.compile(r"[^\W\d_A-Za-z%s]" % re.escape(_HOMOGLYPH_CHARS))

# Leetspeak: only words that mix letters with digit stand-ins, so "2024" stays as it is. The leading \b
# keeps the scan linear: mid-word positions fail at once.
_LEET_WORD = re.compile(r"\b(?:[a-z]+[013457]|[013457]+[a-z])[a-z0-9]*")
# Every leet word has a stand-in digit next to a letter; this search starts with a character class, so
# the regex engine skips straight to the digits and most texts never run the word scan.
_LEET_HINT = re.compile(r"[013457](?:(?<=[a-z][013457])|(?=[a-z]))")
_LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t"})

# The look-behind makes mid-word positions fail at once, so the scan stays linear in the text length.
_B64_RUN = re.compile(r"(?<![A-Za-z0-9+/_-])[A-Za-z0-9+/_-]{24,}={0,2}")
# A comment or quote that runs over several lines (`#`, `//`, ` * `, `--`, `>` quoted e-mail) is one
# segment: an instruction wrapped over three comment lines would otherwise be scored in pieces, and the
# model's windows span at most two segments. Each line that continues a comment loses its line break.
# Starts with a character class so the engine skips to line breaks instead of trying every position.
_CONTINUED_COMMENT = re.compile(r"\n(?=[ \t]*(?:#|//|\*|--|>))")
_COMMENT_START = re.compile(r"[ \t]*(?:#|//|\*|--|>)")
_PRINTABLE_TEXT = re.compile(rb"[\t\n\r\x20-\x7e]*")
_MIN_RUN = 24  # the {24,} of _B64_RUN


def has_long_word_py(text: str, min_len: int) -> bool:
    """Whether a word of text.split() has at least `min_len` characters (the reference for _fast's)."""
    words = text.split()
    return bool(words) and max(map(len, words)) >= min_len


def has_leet_hint_py(text: str) -> bool:
    """Whether _LEET_HINT matches (the reference for _fast's)."""
    return _LEET_HINT.search(text) is not None


# Both gates run on every text. The C ones are exact (tests/unit/test_injection_fast.py) and much cheaper:
# split() builds a str per word only to measure it.
has_long_word = fast.has_long_word if fast is not None else has_long_word_py
has_leet_hint = fast.has_leet_hint if fast is not None else has_leet_hint_py


def _fix_confusable_word(word: str) -> str:
    # A word with Latin letters plus look-alikes is an attack; an all-look-alike word (e.g. "Тоо") counts
    # too unless it carries other non-Latin letters, which marks genuine Cyrillic/Greek text.
    if _LATIN.search(word) or not _NON_LATIN_LETTER.search(word):
        return word.translate(_HOMOGLYPHS)
    return word


def _fix_mixed_word(word: str) -> str:
    """In a text with genuine words of other scripts, an all-look-alike word ("как", "на", "τι") is read
    as a word of that script; only words mixing Latin letters with look-alikes are mapped."""
    return word.translate(_HOMOGLYPHS) if _LATIN.search(word) else word


def fix_homoglyph_words(text: str, fix: Callable[[str], str]) -> str:
    """`text` with each word (a maximal run of \\w) that holds a look-alike letter replaced by fix(word).

    What `re.sub(r"(?<!\\w)\\w*?[look-alikes]\\w*", ...)` does (the reference in the tests), found from the
    non-ASCII runs instead of trying a 411-character class at every position."""
    parts: list[str] = []
    done = 0
    for run in _NON_ASCII_RUN.finditer(text):
        if run.end() <= done or _HOMOGLYPH_SET.isdisjoint(run.group()):
            continue
        # A run may hold several words ("ɡ\x80ɡ"): each look-alike after the last fixed word starts one.
        for first in range(max(run.start(), done), run.end()):
            if first < done or text[first] not in _HOMOGLYPH_SET:
                continue
            # The word starts after the last non-word character before it (a fixed word ends on one).
            start = first
            while start > done and _is_word_char(text[start - 1]):
                start -= 1
            end = _WORD_REST.match(text, first + 1).end()
            parts.append(text[done:start])
            parts.append(fix(text[start:end]))
            done = end
    if not parts:
        return text
    parts.append(text[done:])
    return "".join(parts)


def _is_word_char(ch: str) -> bool:
    """What `\\w` matches in a str pattern: str.isalnum() or the underscore."""
    return ch.isalnum() or ch == "_"


def _join_continued_comments(text: str) -> str:
    """Drop the line break before a comment line that follows another comment line."""

    def join(match: re.Match[str]) -> str:
        start = text.rfind("\n", 0, match.start()) + 1
        return " " if _COMMENT_START.match(text, start) else "\n"

    return _CONTINUED_COMMENT.sub(join, text)


def _deleet_word(match: re.Match[str]) -> str:
    return match.group(0).translate(_LEET)


def decode_base64_runs(text: str) -> list[str]:
    """Decode base64 runs that turn out to be readable text; binary blobs and hashes are skipped.

    Every run, however many: a cap on the count let eight readable blobs in front hide the ninth (the payload).
    The work stays linear: decoded text is 3/4 the length of its run, so nested decoding adds at most 3x."""
    found: list[str] = []
    # A run never contains whitespace, so only whitespace-separated words of 24+ characters can hold
    # one; checking word lengths is several times cheaper than the regex scan over the whole text.
    if not has_long_word(text, _MIN_RUN):
        return found
    words = text.split()
    for match in (m for word in words if len(word) >= _MIN_RUN for m in _B64_RUN.finditer(word)):
        run = match.group(0)
        core = run.rstrip("=")
        # Hex digests, identifiers and paths are long alnum runs too; real base64 of prose mixes cases
        # and digits.
        if core.isalpha() and (core.islower() or core.isupper()):
            continue
        try:
            altchars = b"-_" if "-" in run or "_" in run else None
            if altchars and ("+" in run or "/" in run):
                continue
            raw = base64.b64decode(run + "=" * (-len(run) % 4), altchars=altchars, validate=True)
        except (binascii.Error, ValueError):
            continue
        if len(raw) < 12:
            continue
        printable = _PRINTABLE_TEXT.match(raw)
        if printable is None or printable.end() < len(raw) * 0.95:
            try:
                decoded = raw.decode("utf-8")
            except UnicodeDecodeError:
                continue
            if sum(ch.isprintable() or ch.isspace() for ch in decoded) < len(decoded) * 0.95:
                continue
        else:
            decoded = raw.decode("ascii", "ignore")
        if sum(ch == " " for ch in decoded) < 2:
            continue
        found.append(decoded)
    return found


def has_invisible(text: str) -> bool:
    """Whether `text` holds an invisible format character that normalize() removes."""
    return _INVISIBLE.search(text) is not None


def normalize(text: str, invisible_as_space: bool = False) -> str:
    """Return lower-cased text with obfuscation undone; decoded base64 payloads follow on new lines.

    Invisible characters are removed (a word split by them is whole again), or with `invisible_as_space`
    read as spaces (words joined by them are apart again)."""
    if not text.isascii():
        if _TAGS.search(text):
            # Hidden tag text becomes its own line so it is scored on its own, not glued to a code line.
            text = _TAGS.sub(lambda m: "\n" + m.group(0).translate(_TAG_TABLE) + "\n", text)
        text = _INVISIBLE.sub(" " if invisible_as_space else "", text)
        text = unicodedata.normalize("NFKC", text)
        if not _HOMOGLYPH_SET.isdisjoint(text):
            foreign = _NON_LATIN_LETTER.search(text) is not None
            text = fix_homoglyph_words(text, _fix_mixed_word if foreign else _fix_confusable_word)
    decoded = decode_base64_runs(text)
    if decoded:
        text = text + "\n" + "\n".join(normalize(d, invisible_as_space) for d in decoded)
    if "\n" in text and ("#" in text or "//" in text or "*" in text or "--" in text or ">" in text):
        text = _join_continued_comments(text)
    text = text.lower()
    if " | " in text:
        # Table cells are segments of their own, so a payload in one cell is scored without its row.
        text = text.replace(" | ", "\n")
    if has_leet_hint(text):
        text = _LEET_WORD.sub(_deleet_word, text)
    return text
