"""Token counting from the shipped BPE files: same counts as tiktoken's own encodings, no network."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gateway import tokens
from gateway.tokens import Tokenizer

TOKENIZER = Tokenizer()

DATA = Path(tokens.__file__).parent / "data" / "tiktoken"
URL = "https://openaipublic.blob.core.windows.net/encodings/{}.tiktoken"

TEXTS = [
    "",
    "hello world",
    "Hello, World! 1234567 numbers and 'quotes' don't split wrong.",
    "  leading spaces\n\nnew lines\r\n\ttabs   ",
    "日本語のテキストと emoji 🎉🎉 mixed",
    "special text <|endoftext|> and <|fim_prefix|> counted as plain text",
    "def f(x):\n    return x ** 2  # code\n",
]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """tiktoken's own encodings, fed the same files through its cache (its hashes are checked)."""
    import tiktoken
    import tiktoken.load

    cache = tmp_path_factory.mktemp("tiktoken-cache")
    for name in ("cl100k_base", "o200k_base"):
        shutil.copy(DATA / f"{name}.tiktoken", cache / hashlib.sha1(URL.format(name).encode()).hexdigest())
    mp = pytest.MonkeyPatch()
    mp.setenv("TIKTOKEN_CACHE_DIR", str(cache))
    mp.setattr(tiktoken.load, "read_file", lambda path: pytest.fail(f"tried to download {path}"))
    try:
        yield {name: tiktoken.get_encoding(name) for name in ("cl100k_base", "o200k_base")}
    finally:
        mp.undo()


@pytest.fixture(scope="module", autouse=True)
def loaded():
    TOKENIZER.load_encodings()


@pytest.mark.parametrize("model", ["gpt-4o", "gpt-3.5-turbo"])
def test_counts_match_tiktoken(reference, model):
    ref = reference[tokens.encoding_name(model)]
    for text in TEXTS:
        assert TOKENIZER.count_text(text, model) == len(ref.encode_ordinary(text))


@pytest.mark.parametrize(
    ("model", "encoding"),
    [
        ("gpt-4o", "o200k_base"), ("gpt-4o-mini-2024-07-18", "o200k_base"), ("gpt-4.1-nano", "o200k_base"),
        ("o1", "o200k_base"), ("o3-mini", "o200k_base"), ("o4-mini", "o200k_base"), ("gpt-5", "o200k_base"),
        ("openai/gpt-4o", "o200k_base"), ("chatgpt-4o-latest", "o200k_base"),
        ("gpt-4", "cl100k_base"), ("gpt-4-turbo", "cl100k_base"), ("gpt-3.5-turbo", "cl100k_base"),
        ("text-embedding-3-small", "cl100k_base"), ("claude-sonnet-4-20250514", "cl100k_base"),
        ("o1x", "cl100k_base"), (None, "cl100k_base"),
    ],
)  # fmt: skip
def test_encoding_by_model(model, encoding):
    assert tokens.encoding_name(model) == encoding


COOKBOOK = [
    {"role": "system", "content": "You are a helpful, pattern-following assistant that translates corporate jargon into plain English."},
    {"role": "system", "name": "example_user", "content": "New synergies will help drive top-line growth."},
    {"role": "system", "name": "example_assistant", "content": "Things working well together will increase revenue."},
    {"role": "system", "name": "example_user", "content": "Let's circle back when we have more time to touch base on opportunities for increased leverage."},
    {"role": "system", "name": "example_assistant", "content": "Let's talk later when we're less busy about how to do better."},
    {"role": "user", "content": "This late pivot means we don't have time to boil the ocean for the client deliverable."},
]  # fmt: skip


def test_count_messages_matches_openai_cookbook():
    # OpenAI's "How to count tokens with tiktoken": 129 prompt tokens for gpt-4 / gpt-3.5-turbo.
    assert TOKENIZER.count_messages(COOKBOOK, "gpt-4") == 129


def test_count_messages_content_parts_and_tool_calls():
    parts = [{"role": "user", "content": [{"type": "text", "text": "hello world"}, {"type": "image_url", "image_url": {"url": "x"}}]}]
    assert TOKENIZER.count_messages(parts, "gpt-4o") == 3 + 3 + 1 + 2 + tokens.IMAGE_TOKENS
    call = [{"role": "assistant", "content": None,
             "tool_calls": [{"type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}]}]  # fmt: skip
    assert TOKENIZER.count_messages(call, "gpt-4o") > 3 + 3 + 1 + 5
    anthropic = [{"role": "user", "content": [{"type": "text", "text": "hello world"}]}]
    assert TOKENIZER.count_messages(anthropic, "claude-3-5-haiku") == 3 + 3 + 1 + 2


def test_importing_does_no_io():
    code = "import gateway.tokens as t, sys; assert not t.Tokenizer()._encodings; print('ok')"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "ok", out.stderr


def test_history_counts_come_from_the_bounded_table_and_equal_fresh_counts():
    TOKENIZER.load_encodings()
    system = "You are a careful assistant who answers questions about invoices. " * 5
    history = [{"role": "system", "content": system}, {"role": "user", "content": "first question about invoice 42"},
               {"role": "assistant", "content": "The invoice was paid on the 3rd of March, by bank transfer. " * 2},
               {"role": "user", "content": "and the second one?"}]
    TOKENIZER._history.clear()
    first = TOKENIZER.count_messages(history, "gpt-4o")
    assert tokens._history_key("o200k_base", system) in TOKENIZER._history
    assert tokens._history_key("o200k_base", "and the second one?") not in TOKENIZER._history  # newest: never cached
    assert TOKENIZER.count_messages(history, "gpt-4o") == first
    TOKENIZER._history.clear()
    assert TOKENIZER.count_messages(history, "gpt-4o") == first
    for i in range(tokens._HISTORY_MAX + 10):
        TOKENIZER.count_messages([{"role": "user", "content": f"{i} " + "x" * 80}, {"role": "user", "content": "q"}], "gpt-4o")
    assert len(TOKENIZER._history) <= tokens._HISTORY_MAX
