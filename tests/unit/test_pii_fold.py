"""PII written so that a pattern misses it and a reader does not: invisible characters inside the value,
Unicode spaces between its groups, fullwidth forms. Whole and streamed (every split point, one character
a chunk), the value never reaches the caller in any form a reader folds back to it; text without such
characters is scanned exactly as before (the fold is a no-op on it)."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.config.validate import SourcedRule
from gateway.context import RequestContext
from gateway.guardrails.engine import Guardrails
from gateway.guardrails.pii import PiiDetector
from gateway.guardrails.pii.fold import fold
from tests.support.reader import read as _read

INVISIBLE = ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad", "\u180e", "\U000e0020"]
SPACES = ["\u00a0", "\u202f", "\u2009", "\u3000"]
VALUES = {  # (text around, value): each value is detected in plain ASCII with its context
    "US_SSN": ("my ssn is {} thanks", "123-45-6789"),
    "CREDIT_CARD": ("card {} exp 12/29", "4111 1111 1111 1111"),
    "EMAIL_ADDRESS": ("write to {} today", "jane.doe@example.com"),
    "IBAN_CODE": ("iban {} please", "DE89 3704 0044 0532 0130 00"),
    "IP_ADDRESS": ("host {} is down", "192.168.10.77"),
    "SECRET": ("key {} ok", "sk-proj-abcdefghijklmnopqrstuvwx1234"),
}
DETECTOR = PiiDetector()


def disguise(value: str, rng: random.Random) -> str:
    out = []
    for ch in value:
        r = rng.random()
        if ch == " ":
            out.append(rng.choice(SPACES) if r < 0.7 else " ")
            continue
        if 0x21 <= ord(ch) <= 0x7E and r < 0.3:
            ch = chr(ord(ch) + 0xFEE0)  # fullwidth
        out.append(ch)
        if rng.random() < 0.3:
            out.append(rng.choice(INVISIBLE))
    return "".join(out)


@pytest.mark.parametrize("entity", sorted(VALUES))
def test_the_plain_value_is_found(entity: str) -> None:
    context, value = VALUES[entity]
    text = context.format(value)
    assert [(f.entity_type, text[f.start:f.end]) for f in DETECTOR.detect(text)] == [(entity, value)]


@settings(max_examples=300, deadline=None)
@given(entity=st.sampled_from(sorted(VALUES)), seed=st.integers(0, 2**32))
def test_a_disguised_value_is_found_and_its_span_covers_every_character_of_it(entity: str, seed: int) -> None:
    context, value = VALUES[entity]
    disguised = disguise(value, random.Random(seed))
    text = context.format(disguised)
    found = [f for f in DETECTOR.detect(text) if f.entity_type == entity]
    assert found, (entity, text)
    at = text.index(disguised)
    assert any(f.start <= at and at + len(disguised) <= f.end + 1 for f in found), (text, found)


def _guardrails() -> Guardrails:
    return Guardrails.compile([SourcedRule("t.toml", "guardrails[0]", {"id": "pii", "type": "pii", "action": "redact",
                                                                       "direction": "output"})])


def _ctx() -> RequestContext:
    return RequestContext("req", "chat", "openai", None, 0.0, "trace", "span")


@pytest.mark.parametrize("entity", sorted(VALUES))
def test_streamed_at_every_split_point_a_disguised_value_never_reaches_the_reader(entity: str) -> None:
    g = _guardrails()
    context, value = VALUES[entity]
    for seed in range(3):
        text = context.format(disguise(value, random.Random(seed)))
        whole = g.for_request(None, None).output_scanner(_ctx()).scan_text(text)
        assert value not in _read(whole), whole
        for chunks in [[text[:i], text[i:]] for i in range(1, len(text))] + [list(text)]:
            scanner = g.for_request(None, None).output_scanner(_ctx())
            out = "".join(scanner.feed(0, c) for c in chunks) + scanner.flush(0)
            assert out == whole, (chunks, out)


def test_text_without_fold_characters_is_scanned_as_it_is() -> None:
    for text in ("my ssn is 123-45-6789", "naïve café, card 4111 1111 1111 1111", "日本語のテキスト"):
        assert fold(text) is None or fold(text)[0] == text


@pytest.mark.parametrize("text", ["about project fal\u200bcon now", "about ＰＲＯＪＥＣＴ falcon now",
                                  "about project\u00a0fal\u00adcon now", "about pro\U000e0020ject falcon now"])
def test_a_deny_list_phrase_disguised_the_same_ways_is_found_whole_and_at_every_split(text: str) -> None:
    g = Guardrails.compile([SourcedRule("t.toml", "guardrails[0]", {"id": "deny", "type": "deny_list",
                                                                    "phrases": ["project falcon"], "action": "redact",
                                                                    "direction": "output"})])
    whole = g.for_request(None, None).output_scanner(_ctx()).scan_text(text)
    assert whole == "about <DENY_LIST> now", whole
    for i in range(1, len(text)):
        scanner = g.for_request(None, None).output_scanner(_ctx())
        assert scanner.feed(0, text[:i]) + scanner.feed(0, text[i:]) + scanner.flush(0) == whole, i
