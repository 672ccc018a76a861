"""Per-type recall and precision on the realistic corpus (tests/quality/pii_corpus.py), and the share of
PII-free texts with any finding, for the detectors the demo policy enables (secrets included).

    PYTHONPATH=. .venv/bin/python tests/quality/pii_realistic_eval.py [--seed 13] [--n 1200] [--errors TYPE]

A finding hits a labelled span when it has the same type, overlaps it and reaches past it only over
punctuation or spaces (a finding that eats a neighbouring word is a miss and a false positive).
"""

from __future__ import annotations

import argparse
from collections import Counter
from dataclasses import dataclass

from gateway.guardrails.pii import PiiDetector
from tests.quality.pii_corpus import Record, build

DEMO_ENTITIES = ("EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "US_SSN", "IBAN_CODE", "IP_ADDRESS", "SECRET")
PII_TYPES = DEMO_ENTITIES[:-1]


@dataclass
class Scores:
    recall: dict[str, float]
    precision: dict[str, float]
    clean_flagged: float  # share of PII-free texts with any finding
    counts: dict[str, tuple[int, int, int]]  # type -> (gold, missed, false positives)


def _hit(text: str, f, gold: tuple[int, int, str]) -> bool:
    s, e, t = gold
    if f.entity_type != t or f.end <= s or e <= f.start:
        return False
    extra = text[f.start : max(f.start, s)] + text[min(f.end, e) : f.end]
    return not any(c.isalnum() for c in extra)


def score(records: list[Record], detector: PiiDetector, show: str | None = None) -> Scores:
    gold_n, missed, tp, fp = Counter(), Counter(), Counter(), Counter()
    clean = flagged = 0
    for rec in records:
        found = detector.detect(rec.text)
        if not rec.has_pii:
            clean += 1
            flagged += bool(found)
        for g in rec.spans:
            gold_n[g[2]] += 1
            if not any(_hit(rec.text, f, g) for f in found):
                missed[g[2]] += 1
                if show in (g[2], "all"):
                    print(f"FN {g[2]:13} {rec.text[g[0]:g[1]]!r:32} t{rec.template} {rec.text[max(0, g[0]-40):g[1]+10]!r}")
        for f in found:
            if any(_hit(rec.text, f, g) for g in rec.spans):
                tp[f.entity_type] += 1
            else:
                fp[f.entity_type] += 1
                if show in (f.entity_type, "all"):
                    print(f"FP {f.entity_type:13} {rec.text[f.start:f.end]!r:32} t{rec.template} "
                          f"{'clean' if not rec.has_pii else 'pii'} {rec.text[max(0, f.start-40):f.end+10]!r}")
    types = sorted(set(gold_n) | set(fp))
    recall = {t: 1 - missed[t] / gold_n[t] if gold_n[t] else 1.0 for t in types}
    precision = {t: tp[t] / (tp[t] + fp[t]) if tp[t] + fp[t] else 1.0 for t in types}
    return Scores(recall, precision, flagged / clean if clean else 0.0,
                  {t: (gold_n[t], missed[t], fp[t]) for t in types})


def report(name: str, s: Scores) -> None:
    print(f"{name}: type            recall  precision  gold  missed  FP")
    for t in sorted(s.counts):
        g, m, f = s.counts[t]
        print(f"{name}: {t:15} {s.recall[t]:.3f}   {s.precision[t]:.3f}    {g:5} {m:6} {f:4}")
    print(f"{name}: PII-free texts with any finding: {s.clean_flagged:.3f}")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--seed", type=int, default=13)
    p.add_argument("--n", type=int, default=1200)
    p.add_argument("--errors", help="print misses and false positives of this type (or 'all')")
    args = p.parse_args()
    records = build(args.seed, args.n)
    detector = PiiDetector(entities=DEMO_ENTITIES)
    for split in ("tune", "holdout"):
        report(split, score([r for r in records if r.split == split], detector, args.errors))
    report("all", score(records, detector))


if __name__ == "__main__":
    main()
