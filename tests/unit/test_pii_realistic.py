"""Targets on the realistic corpus (tests/quality/pii_corpus.py: configs, logs, stack traces, CSV/JSON,
signatures and tickets in nine languages, with order/tracking numbers, versions, UUIDs, timestamps,
ISBNs and invoice numbers as hard negatives), with the detectors the demo policy enables, secrets
included: recall and precision >= 0.95 for every PII type, at most 5% of PII-free texts with a finding.
Two seeds, and the held-out half of the templates on its own."""

from __future__ import annotations

import pytest

from gateway.guardrails.pii import PiiDetector
from tests.quality.pii_corpus import build
from tests.quality.pii_realistic_eval import DEMO_ENTITIES, PII_TYPES, score

DETECTOR = PiiDetector(entities=DEMO_ENTITIES)


@pytest.mark.parametrize("seed", [13, 2027])
@pytest.mark.parametrize("split", ["all", "holdout"])
def test_realistic_corpus_meets_the_targets(seed, split):
    records = build(seed, 900)
    if split != "all":
        records = [r for r in records if r.split == split]
    s = score(records, DETECTOR)
    for etype in PII_TYPES:
        assert s.counts[etype][0] >= 10, f"too few {etype} in the corpus"
        assert s.recall[etype] >= 0.95, (etype, s.counts[etype])
        assert s.precision[etype] >= 0.95, (etype, s.counts[etype])
    assert s.clean_flagged <= 0.05
