"""Token counting with tiktoken from the BPE files shipped in `gateway/data/tiktoken` (never downloaded).

A `Tokenizer` is built once per process at start-up (`Services.tokens`) and owns everything counting
caches: both encodings, their `TokenCounter`s and the table of conversation-history counts; nothing is
kept at module level. `load_encodings()` reads both files (about 0.5 s, at start-up off the loop);
counting loads them lazily if start-up did not, but importing this module, or building a
`Tokenizer`, does no I/O. Model names pick the
encoding: o200k_base for gpt-4o, gpt-4.1, gpt-4.5, gpt-5, o1/o3/o4 and chatgpt-4o; cl100k_base for
everything else, Anthropic and other providers included, where it is an estimate (their tokenizers
are not public) used only to reserve rate-limit and budget capacity before the upstream call.

Counts go through `gateway.token_count.TokenCounter`, which returns exactly `len(encode_ordinary(text))`
from cached counts of words and split-pattern pieces (tiktoken alone is one of the larger costs of a
request); its module doc says why the sum is exact.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import re
from importlib import resources
from typing import Any

import orjson
import tiktoken

from gateway.token_count import TokenCounter

# From tiktoken_ext.openai_public (tiktoken 0.7+): the split patterns and special tokens.
_CL100K_PAT = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|"""
    r"""\s++$|\s*[\r\n]|\s+(?!\S)|\s"""
)
_O200K_PAT = "|".join(
    [
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""\p{N}{1,3}""",
        r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
        r"""\s*[\r\n]+""",
        r"""\s+(?!\S)""",
        r"""\s+""",
    ]
)
_SPEC = {
    "cl100k_base": (
        _CL100K_PAT,
        {"<|endoftext|>": 100257, "<|fim_prefix|>": 100258, "<|fim_middle|>": 100259,
         "<|fim_suffix|>": 100260, "<|endofprompt|>": 100276},  # fmt: skip
        "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
    ),
    "o200k_base": (
        _O200K_PAT,
        {"<|endoftext|>": 199999, "<|endofprompt|>": 200018},
        "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
    ),
}
_O200K_MODELS = re.compile(r"^(?:.*/)?(?:gpt-4o|gpt-4\.1|gpt-4\.5|gpt-5|chatgpt-4o|o1|o3|o4|gpt-oss)(?:$|[-.:@])")

# OpenAI chat format overhead (the cookbook's count for gpt-3.5-turbo-0613 and later models).
TOKENS_PER_MESSAGE = 3
TOKENS_PER_NAME = 1
REPLY_PRIMING = 3
IMAGE_TOKENS = 765  # a 1024x1024 "high" detail image; a fixed estimate, images are not downloaded


@functools.cache
def _load(name: str) -> tiktoken.Encoding:
    # An Encoding is immutable once built, and building one costs ~1 s and ~150 MB: one per process, shared
    # by every Tokenizer (the mutable caches, word tables and history, stay each Tokenizer's own).
    pat, special, sha256 = _SPEC[name]
    data = resources.files("gateway").joinpath(f"data/tiktoken/{name}.tiktoken").read_bytes()
    if hashlib.sha256(data).hexdigest() != sha256:
        raise RuntimeError(f"gateway/data/tiktoken/{name}.tiktoken does not match its expected hash")
    ranks = {base64.b64decode(tok): int(rank) for tok, rank in (line.split() for line in data.splitlines() if line)}
    return tiktoken.Encoding(name, pat_str=pat, mergeable_ranks=ranks, special_tokens=special)


def encoding_name(model: str | None) -> str:
    return "o200k_base" if model and _O200K_MODELS.match(model.lower()) else "cl100k_base"


def _content_tokens(counter: TokenCounter, content: Any) -> int:
    if content is None:
        return 0
    if isinstance(content, str):
        return counter.count(content)
    if isinstance(content, list):  # OpenAI content parts or Anthropic content blocks
        n = 0
        for part in content:
            if isinstance(part, str):
                n += counter.count(part)
            elif isinstance(part, dict):
                kind = part.get("type")
                if kind in ("image_url", "image", "input_image"):
                    n += IMAGE_TOKENS
                elif isinstance(part.get("text"), str):
                    n += counter.count(part["text"])
                elif kind == "tool_use":
                    n += counter.count(str(part.get("name", "")) + str(part.get("input", "")))
                elif kind == "tool_result":
                    n += _content_tokens(counter, part.get("content"))
        return n
    return counter.count(str(content))


# Earlier turns of a conversation (and system prompts) come back with every request of that conversation,
# so their counts are kept in a bounded table; the newest message is always counted fresh. Keyed by the
# encoding and a 128-bit digest of the text, so the table's memory does not grow with message size.
_HISTORY_MAX = 4096
_HISTORY_MIN_CHARS = 64


def _history_key(enc_name: str, text: str) -> tuple[str, bytes]:
    return enc_name, hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()


class Tokenizer:
    """Token counts for every API's prompt and for streamed text, with the caches that make them cheap."""

    __slots__ = ("_encodings", "_counters", "_history")

    def __init__(self) -> None:
        self._encodings: dict[str, tiktoken.Encoding] = {}
        self._counters: dict[str, TokenCounter] = {}
        self._history: dict[tuple[str, bytes], int] = {}

    def load_encodings(self) -> None:
        """Build both encodings and their counters (start-up; idempotent)."""
        for name in _SPEC:
            self._counter(name)

    def _counter(self, name: str) -> TokenCounter:
        counter = self._counters.get(name)
        if counter is None:
            if name not in self._encodings:
                self._encodings[name] = _load(name)
            counter = self._counters[name] = TokenCounter(self._encodings[name])
        return counter

    def counter_for(self, model: str | None) -> TokenCounter:
        return self._counter(encoding_name(model))

    def encoding_for(self, model: str | None) -> tiktoken.Encoding:
        return self._counter(encoding_name(model)).encoding

    def count_text(self, text: str, model: str | None) -> int:
        """Tokens in `text`; special-token text is counted as ordinary text, never rejected."""
        if not text:
            return 0
        return self.counter_for(model).count(text)

    def _history_tokens(self, counter: TokenCounter, text: str) -> int:
        history = self._history
        key = _history_key(counter.name, text)
        n = history.get(key)
        if n is None:
            n = counter.count(text)
            if len(history) >= _HISTORY_MAX:
                history.pop(next(iter(history)))  # oldest first (dicts keep insertion order)
            history[key] = n
        return n

    def count_messages(self, messages: list[dict[str, Any]], model: str | None) -> int:
        """Prompt tokens of a chat request: per-message overhead, role, name, content, tool calls."""
        counter = self.counter_for(model)
        n = REPLY_PRIMING
        last = len(messages) - 1
        for i, msg in enumerate(messages):
            if not isinstance(msg, dict):
                continue
            n += TOKENS_PER_MESSAGE
            role = msg.get("role")
            if isinstance(role, str):
                n += counter.count(role)
            name = msg.get("name")
            if isinstance(name, str):
                n += TOKENS_PER_NAME + counter.count(name)
            content = msg.get("content")
            if i < last and isinstance(content, str) and len(content) >= _HISTORY_MIN_CHARS:
                n += self._history_tokens(counter, content)
            else:
                n += _content_tokens(counter, content)
            for call in msg.get("tool_calls") or ():
                fn = call.get("function") if isinstance(call, dict) else None
                if isinstance(fn, dict):
                    n += counter.count(str(fn.get("name", "")) + str(fn.get("arguments", "")))
        return n
