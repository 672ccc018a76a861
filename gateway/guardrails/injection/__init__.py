"""Prompt-injection detection for request-side guardrails (user messages, tool results, documents).

`InjectionDetector.score` normalises the text (see `normalize`), then takes the larger of two scores:
hand-written rules for unambiguous overrides and a small linear model whose score is the maximum over
sentence windows (one segment, or two neighbours), so a long benign document cannot accumulate evidence by
length alone. A window's features are its words, word pairs and structure features (which kinds of word
follow which, close together: an AI reader, then a modal, then an action; see
`features.structure_features`). Weights come from `scripts/train_injection.py` and ship as `model.json`.

On ASCII text (after normalisation) the tokenising and window scoring run in the optional C extension
`_fast` when it is built (see `_accel`); the Python code here and in `features` is the reference and the
fallback, and both give identical scores.
"""

from __future__ import annotations

import json
import math
from importlib import resources
from itertools import islice, repeat
from operator import add

from ._accel import fast
from .features import (FAR, KIND_NAMES, MAX_SEGMENT_TOKENS, NEAR, STRUCTURE_NAMES, TOKEN_KINDS, marked_tokens,
                       segment_spans, structure_features)
from .normalize import has_invisible, normalize
from .rules import TRIGGER_WORDS, rule_score

__all__ = ["DEFAULT_THRESHOLD", "InjectionDetector", "normalize"]

# Picked on grouped cross-validation of the dev set (the training script's --cv report): rules+model
# precision 1.00, recall 0.85, no benign prompt flagged; model alone F1 0.87. Scores between 0.5 and 0.7
# trade about 5% recall against one false positive either way.
DEFAULT_THRESHOLD: float = 0.6


class InjectionDetector:
    """Scores text for prompt injection; build once at start-up and share (no per-call state)."""

    __slots__ = ("threshold", "_unigrams", "_bigrams", "_structure", "_bias", "_fast")

    def __init__(self, threshold: float = DEFAULT_THRESHOLD, *, accelerate: bool = True) -> None:
        """`accelerate=False` runs the pure-Python path even when the C extension is built."""
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"threshold must be in [0, 1], got {threshold!r}")
        self.threshold = threshold
        raw = resources.files(__package__).joinpath("model.json").read_text(encoding="utf-8")
        model = json.loads(raw)
        if model.get("format") != 1:
            raise ValueError(f"unsupported injection model format {model.get('format')!r}")
        # float(): JSON may spell a whole-number weight as an int, and sum() adds ints on another path than
        # floats; as floats both implementations add the same numbers the same way.
        weights = {name: float(weight) for name, weight in model["weights"].items()}
        # Bigrams are stored as "a b"; keyed here as (a, b) tuples, which the scorer gets from zip() without
        # building a joined string per token pair. Tokens never contain spaces, so the split is exact. Two
        # dicts, because a dict with only str keys takes CPython's faster str-lookup path.
        # Structure features ("#ai>modal", see features.structure_features) by index; tokens never hold "#".
        self._structure = [weights.get(name, 0.0) for name in STRUCTURE_NAMES]
        self._unigrams = {name: weight for name, weight in weights.items() if " " not in name and name[0] != "#"}
        self._bigrams = {tuple(name.split(" ")): weight for name, weight in weights.items() if " " in name}
        self._bias: float = float(model["bias"])
        # The C model holds the same weights in its own tables, built once here.
        self._fast = (fast.Model(self._unigrams, self._bigrams, TRIGGER_WORDS, MAX_SEGMENT_TOKENS,
                                 TOKEN_KINDS, len(KIND_NAMES), self._structure, NEAR, FAR)
                      if accelerate and fast is not None else None)

    @property
    def accelerated(self) -> bool:
        """Whether ASCII text is scored by the C extension."""
        return self._fast is not None

    def score(self, text: str) -> float:
        """Probability-like score in [0, 1] that `text` carries an injection."""
        if not text:
            return 0.0
        best = self._score_normalized(normalize(text))
        if not text.isascii() and has_invisible(text):
            # An invisible character may hide inside a word ("ig\u200bnore") or stand for a space
            # ("ignore\u200ball\u200bprevious"): both readings are scored.
            best = max(best, self._score_normalized(normalize(text, invisible_as_space=True)))
        return best

    def _score_normalized(self, normalized: str) -> float:
        if self._fast is not None and normalized.isascii():
            # One C pass does marked_tokens + segment_spans + _model_score, and hands rule_score the trigger
            # words present instead of a token list.
            best, present = self._fast.scan(normalized)
            return max(rule_score(normalized, present), 0.0 if best is None else self._probability(best))
        # One token list for the whole text, segment ends marked in it (see features.marked_tokens).
        tokens, mark = marked_tokens(normalized)
        spans = segment_spans(tokens, mark)
        return max(rule_score(normalized, tokens), self._model_score(tokens, spans))

    def flagged(self, text: str) -> bool:
        return self.score(text) >= self.threshold

    def _model_score(self, tokens: list[str], spans: list[tuple[int, int]]) -> float:
        best = self._best_window(tokens, spans)
        return 0.0 if best is None else self._probability(best)

    def _best_window(self, tokens: list[str], spans: list[tuple[int, int]]) -> float | None:
        """The largest weight sum of one segment or two neighbours; None without segments."""
        if not spans:
            return None
        # Each token's weight and each adjacent pair's weight are looked up once for the whole text. A segment
        # sums its slices of both, which hold no mark and no pair across a mark or across a cut inside a long
        # segment, as in training; the sums are the old per-segment ones, added in the same order.
        zero = repeat(0.0)
        unigrams = list(map(self._unigrams.get, tokens, zero))
        bigrams = list(map(self._bigrams.get, zip(tokens, islice(tokens, 1, None)), zero))
        sums = [sum(unigrams[start:end]) + sum(bigrams[start:end - 1]) for start, end in spans]
        # Plus each piece's structure features, added in the order first seen (as the C scorer adds them).
        structure = self._structure
        sums = [s + sum([structure[f] for f in structure_features(tokens[start:end])])
                for s, (start, end) in zip(sums, spans)]
        best = max(sums)
        if len(sums) > 1:
            best = max(best, max(map(add, sums, islice(sums, 1, None))))
        return best

    def _probability(self, best: float) -> float:
        """The model's score for its best window sum."""
        logit = best + self._bias
        # Clamp so exp() cannot overflow on a pathological window.
        return 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, logit))))
