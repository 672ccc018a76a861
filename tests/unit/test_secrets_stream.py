"""A secret split across stream chunks is caught as when whole: realistic texts of every secret kind
(from the seeded corpus) split at every point give the unsplit redaction, and under a block rule the
stream is stopped before any character of the secret is released."""

from __future__ import annotations

import pytest

from gateway.config.validate import SourcedRule
from gateway.context import RequestContext
from gateway.errors import PolicyBlocked
from gateway.guardrails.engine import Guardrails
from tests.quality import realistic_secrets as corpus


def _guardrails(*rules: dict) -> Guardrails:
    return Guardrails.compile([SourcedRule("test.toml", f"guardrails[{i}]", r) for i, r in enumerate(rules)])


def _ctx() -> RequestContext:
    return RequestContext("req", "chat", "openai", None, 0.0, "trace", "span")


CONTACT = {"id": "contact-pii", "type": "pii", "action": "redact", "direction": "output",
           "entities": ["EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "US_SSN", "IBAN_CODE", "IP_ADDRESS"]}
REDACT = _guardrails({"id": "secrets", "type": "secrets", "action": "redact", "direction": "output"}, CONTACT)
BLOCK = _guardrails({"id": "no-secrets", "type": "secrets", "action": "block", "direction": "output"}, CONTACT)


def _samples() -> list[corpus.Sample]:
    """Two short texts with secrets per kind (short: every split point of each is tried)."""
    picked: dict[str, list] = {}
    for s in corpus.build(11, per_template=2):
        if s.spans and len(s.text) <= 320 and len(picked.setdefault(s.kind, [])) < 2:
            picked[s.kind].append(s)
    return [s for kind in corpus.KINDS for s in picked.get(kind, [])]


SAMPLES = _samples()


def _stream(g: Guardrails, chunks: list[str]) -> str:
    scanner = g.for_request(None, None).output_scanner(_ctx())
    return "".join(scanner.feed(0, c) for c in chunks) + scanner.flush(0)


def test_samples_cover_every_kind() -> None:
    assert {s.kind for s in SAMPLES} == set(corpus.KINDS)


@pytest.mark.parametrize("sample", SAMPLES, ids=[f"{s.kind}-{s.template}" for s in SAMPLES])
def test_redaction_at_every_split_matches_the_whole_text(sample: corpus.Sample) -> None:
    text = sample.text
    whole = REDACT.for_request(None, None).output_scanner(_ctx()).scan_text(text)
    for start, end, _ in sample.spans:
        assert text[start:end] not in whole
    for i in range(1, len(text)):
        assert _stream(REDACT, [text[:i], text[i:]]) == whole, f"split at {i}: {text[:i]!r} | {text[i:]!r}"
    assert _stream(REDACT, list(text)) == whole


@pytest.mark.parametrize("sample", SAMPLES, ids=[f"{s.kind}-{s.template}" for s in SAMPLES])
def test_block_stops_the_stream_before_the_secret_leaves(sample: corpus.Sample) -> None:
    text = sample.text
    first = min(start for start, _, _ in sample.spans)
    for i in list(range(1, len(text), 3)) + [len(text)]:
        scanner = BLOCK.for_request(None, None).output_scanner(_ctx())
        released = ""
        with pytest.raises(PolicyBlocked):
            for chunk in (text[:i], text[i:]):
                released += scanner.feed(0, chunk)
            released += scanner.flush(0)
        assert len(released) <= first, f"split at {i} released {released!r}"
