"""Helpers every fast-tier detector shares: cached validators and the cue-before-a-match test."""

from __future__ import annotations

import functools


def validator_cache(validate):
    """A validator (a pure function of the candidate string) with its recent answers kept.

    The stream scanner detects over its whole hold-back window on every chunk, so a value stays in view
    for window / chunk feeds (tens to hundreds) and was validated again on each: for a stream of IP
    addresses or card numbers the validators (3-10 us a call) were most of its cost. Bounded: the
    values of untrusted text are unbounded."""
    return functools.lru_cache(maxsize=2048)(validate)


def context_before(text: str, start: int, words: tuple[str, ...], window: int = 48) -> bool:
    before = text[max(0, start - window) : start].lower()
    return any(w in before for w in words)

