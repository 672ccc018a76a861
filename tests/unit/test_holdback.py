"""The stream hold-back rule: one `HoldBack` over several detectors answers as the smallest of their
own answers would, and tokens end at every kind of ASCII whitespace."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.guardrails.pii.holdback import HoldBack, growing_suffix_start

# Pieces that exercise every joining rule: digit groups, obfuscation words, capitalised names,
# e-mail local parts, Unicode and ASCII whitespace of every kind.
_PIECES = st.sampled_from(["a", "b.c", "Jo", "Ann", "0", "41", "(", ")", "+", "x", "@", "-", "_", "at", "dot",
                           "[at]", "(dot)", "[a", " ", "  ", "    ", "\n", "\n\n", "\t", "\r", "\u2003", "é"])
_SPECS = st.lists(st.tuples(st.integers(0, 40), st.booleans(), st.booleans()), min_size=1, max_size=4)


@settings(max_examples=500, deadline=None)
@given(pieces=st.lists(_PIECES, max_size=40), specs=_SPECS)
def test_hold_back_is_the_smallest_answer_of_its_specs(pieces: list[str], specs: list) -> None:
    text = "".join(pieces)
    hold = HoldBack(specs)
    expected = min([growing_suffix_start(text, *spec) for spec in specs] + [len(text)])
    assert (hold.start(text) if hold else len(text)) == expected


def test_the_bench_rules_ask_one_spec_for_short_texts() -> None:
    # secrets (no e-mails) and pii with e-mails: below both lengths the e-mail spec answers for both.
    hold = HoldBack([(256, False, False), (254, False, True)])
    assert hold._short == ((254, False, True),)
    assert hold.start("the word jdoe ") == len("the word ")
    long = "x" * 300 + " jdoe "
    assert hold.start(long) == min(growing_suffix_start(long, 256), growing_suffix_start(long, 254, emails=True))


@pytest.mark.parametrize("space", [" ", "\n", "\t", "\r"])
def test_a_token_starts_after_any_ascii_whitespace(space: str) -> None:
    assert growing_suffix_start(f"hello{space}world", 256) == 6
    assert growing_suffix_start(f"a b{space}4111 1111", 256) == 4  # digit groups join; 'b' does not
