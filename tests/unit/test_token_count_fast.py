"""The fast token counter returns exactly tiktoken's count, on every path, and its tables stay bounded."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import tiktoken
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway import token_count, tokens
from gateway.token_count import TokenCounter, spaces_are_safe
from gateway.tokens import Tokenizer

TOKENIZER = Tokenizer()

NAMES = ("cl100k_base", "o200k_base")
EVAL = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "eval"


@pytest.fixture(scope="module")
def counters() -> dict[str, TokenCounter]:
    TOKENIZER.load_encodings()
    return {name: TokenCounter(TOKENIZER._encodings[name]) for name in NAMES}


def assert_exact(counters: dict[str, TokenCounter], text: str) -> None:
    for name, counter in counters.items():
        want = len(counter.encoding.encode_ordinary(text))
        assert counter.count(text) == want, (name, text)
        # Each path on its own, wherever it claims to be exact.
        if spaces_are_safe(text):
            assert counter._count_units(text) == want, (name, "units", text)
        if text.isascii():
            assert counter._count_pieces(text) == want, (name, "pieces", text)


# Characters and runs where the split patterns differ between alternatives, engines or encodings.
ASCII_ATOMS = [
    *"aAzZsStTdDmMlLvVrReE", "ll", "LL", "ve", "RE", "Hello", "HTML", "camelCase", "iPhone",
    *"0123456789", "1234", "'", "'s", "'S", "'t", "'ll", "'LL", "'Ve", "'re", "'d", "'m",
    " ", "  ", "   ", *"\t\n\r\x0b\x0c", "\r\n", "\n\n", " \n", "\n ", "\t ",
    *"\x1c\x1d\x1e\x1f\x00\x01\x7f", *"/:.,;!?-_\"()[]{}<>@#$%^&*+=|\\~`", "//", "://", "...", "\n/",
]  # fmt: skip
ascii_text = st.one_of(
    st.lists(st.sampled_from(ASCII_ATOMS), max_size=24).map("".join),
    st.text(st.characters(max_codepoint=127), max_size=40),
)
UNICODE_ATOMS = [
    *ASCII_ATOMS, "é", "É", "naïve", "Ǆ", "ǅ", "ʰ", "ª", "\u0301", "e\u0301", "²", "½", "٣", "Ⅻ", "日本語",
    "\xa0", "\x85", "\u1680", "\u2003", "\u2028", "\u2029", "\u202f", "\u205f", "\u3000", "\u200b", "\u180e",
    "’", "“", "—", "😀", "👍🏽", "\ufeff", "\ud83d", "\ude00",
]  # fmt: skip
unicode_text = st.lists(st.sampled_from(UNICODE_ATOMS), max_size=24).map("".join)
FAST = settings(max_examples=2500, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def split_probes() -> dict[str, tiktoken.Encoding]:
    """Encodings with each real split pattern and a vocabulary of every byte and every pair of ASCII
    characters: their counts depend on where pieces are cut far more than the real vocabularies' do
    (with those, cutting "camelCase" or not happens to cost the same)."""
    pairs = [bytes([a, b]) for a in range(128) for b in range(128)]
    ranks = {tok: rank for rank, tok in enumerate([bytes([b]) for b in range(256)] + pairs)}
    return {name: tiktoken.Encoding(f"{name}-pairs", pat_str=tokens._SPEC[name][0], mergeable_ranks=ranks,
                                    special_tokens={})
            for name in NAMES}  # fmt: skip


@FAST
@given(ascii_text)
def test_ascii_text_counts_exactly(counters, split_probes, text):
    assert_exact(counters, text)
    for name, probe in split_probes.items():  # and the split itself cuts where tiktoken's does
        pieces = counters[name]._split(text.encode())
        assert b"".join(pieces) == text.encode(), name
        got = sum(len(probe._core_bpe.encode_single_piece(piece)) for piece in pieces)
        assert got == len(probe.encode_ordinary(text)), (name, text, pieces)


@settings(max_examples=1500, deadline=None)
@given(unicode_text)
def test_unicode_text_counts_exactly(counters, text):
    assert_exact(counters, text)


LITERALS = [
    "", " ", "  ", "\n", "\r\n", "\t", "a", "'s", "'S", "I'LL", "she'S here", "don't", "x 'll", "' s",
    "12345678", "a1b2 c3", "1,234,567.89", "hello  world", "hello world ", "hello world  ", " hello",
    "  hello", "end.\n\nNext", "end.\r\n\r\nNext", "a\n b", "a \nb", "a\t b", "a \t b", "a\x0b b", "a\x0c\x0c b",
    "a\x1c b", "\x1c\x1d\x1e\x1f", "x\x00y \x00", "def f(x):\n    return x  # note\n", "path/to/file\n/next",
    "http://example.com/a?b=c d", "ALLCAPS Word", "CamelCaseWord's", "The QUICK'S fox's", "\n\n\n   \n",
    "trailing\n", "trailing \n", "trailing\n  ", "café au lait", "naïve café — “quoted” ’s", "日本語 テキスト",
    "emoji 😀 and 👍🏽", "nbsp\xa0 here", "em\u2003 space", "lone \ud83d surrogate", "pair \ud83d\ude00 text",
    "special <|endoftext|> and <|fim_prefix|> text",
]  # fmt: skip


@pytest.mark.parametrize("text", LITERALS)
def test_literal_texts(counters, text):
    assert_exact(counters, text)


def test_eval_texts(counters):
    files = sorted(EVAL.glob("*.jsonl")) if EVAL.is_dir() else []
    if not files:
        pytest.skip(f"no evaluation texts at {EVAL}")
    texts = [json.loads(line)["text"] for f in files for line in f.read_text().splitlines() if line.strip()]
    for text in texts:
        assert_exact(counters, text)
    for text in texts:  # and again from warm tables
        for counter in counters.values():
            assert counter.count(text) == len(counter.encoding.encode_ordinary(text))


def test_counts_through_tokens_module_are_exact():
    TOKENIZER.load_encodings()
    text = "Please summarise the notes.\n\n  - item one\n  - item two's cost: $1,234\n"
    for model in ("gpt-4o", "gpt-4"):
        assert TOKENIZER.count_text(text, model) == len(TOKENIZER.encoding_for(model).encode_ordinary(text))


def test_tables_stay_bounded(counters, monkeypatch):
    monkeypatch.setattr(token_count, "MAX_ENTRIES", 200)
    monkeypatch.setattr(token_count, "MAX_HEAD_ENTRIES", 10)
    monkeypatch.setattr(token_count, "MISS_LIMIT", 10_000)  # every part is new: keep them all coming
    for name in NAMES:
        counter = TokenCounter(counters[name].encoding)
        for i in range(20):
            words = " ".join(f"w{i}x{j}" for j in range(300))  # spaces safe: head and unit tables
            indented = "\n  ".join(f"p{i}q{j}" for j in range(300))  # unsafe spaces: piece table
            long = "x" * 65 + " " + "y" * 200  # parts too long to keep
            for text in (words, indented, long):
                assert counter.count(text) == len(counter.encoding.encode_ordinary(text))
            heads, units, pieces = counter.table_sizes()
            assert 0 < heads <= 10 and 0 < units <= 200 and 0 < pieces <= 200, counter.table_sizes()
        assert max(map(len, counter._units)) <= token_count.MAX_KEY_CHARS
        assert max(map(len, counter._heads)) <= token_count.MAX_KEY_CHARS


def test_many_unseen_parts_are_counted_together(counters):
    limit = token_count.MISS_LIMIT
    for name in NAMES:
        counter = TokenCounter(counters[name].encoding)
        words = " ".join(f"z{j}q" for j in range(4 * limit))
        assert counter.count(words) == len(counter.encoding.encode_ordinary(words))
        assert len(counter._units) == limit  # kept the first ones, counted the rest together
        assert counter.count(words) == len(counter.encoding.encode_ordinary(words))
        assert len(counter._units) == 2 * limit  # and more of them each time
        indented = "\n  ".join(f"y{j}q" for j in range(4 * limit))
        assert counter.count(indented) == len(counter.encoding.encode_ordinary(indented))
        assert len(counter._pieces) <= limit
        for text in (words + " " + "L" * 80 + " end\n\n", words + " naïve é\u2003", words[::-1] + " "):
            assert counter.count(text) == len(counter.encoding.encode_ordinary(text)), (name, text[-20:])


def _rust_matches(pattern: str, text: str) -> str:
    """The characters of `text` that tiktoken's regex engine matches with `pattern`."""
    probe = tiktoken.Encoding("probe", pat_str=pattern, mergeable_ranks={bytes([b]): b for b in range(256)},
                              special_tokens={})  # fmt: skip
    return probe.decode_bytes(probe.encode_ordinary(text)).decode()


def test_character_classes_agree_with_tiktokens_engine():
    """The assumptions the fast paths rest on, checked against the Rust engine itself."""
    ascii_chars = "".join(map(chr, range(128)))
    assert _rust_matches(r"\s", ascii_chars) == "\t\n\x0b\x0c\r "
    assert _rust_matches(r"\p{L}", ascii_chars) == "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
    assert _rust_matches(r"\p{Lu}", ascii_chars) == "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    assert _rust_matches(r"\p{Ll}", ascii_chars) == "abcdefghijklmnopqrstuvwxyz"
    assert _rust_matches(r"[\p{Lt}\p{Lm}\p{Lo}\p{M}]", ascii_chars) == ""
    assert _rust_matches(r"\p{N}", ascii_chars) == "0123456789"
    # Non-ASCII text is split at spaces only when no whitespace precedes one; Python's \s must cover Rust's.
    everything = "".join(chr(c) for c in range(0x110000) if not 0xD800 <= c < 0xE000)
    rust_ws = _rust_matches(r"\s", everything)
    assert rust_ws and all(c.isspace() for c in rust_ws), [c for c in rust_ws if not c.isspace()]
