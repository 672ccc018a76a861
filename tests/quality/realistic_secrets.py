"""A seeded corpus of secrets as real traffic writes them, and its scorer (run as a script or from a test).

    PYTHONPATH=$PWD .venv/bin/python tests/quality/realistic_secrets.py [--errors KIND] [--holdout] [--demo]

Texts come from templates of real-world formats (.env, YAML, TOML, INI, JSON, XML, docker-compose,
Kubernetes manifests, CI configs, logs, stack traces, shell history, code in several languages,
e-mails and tickets in nine European languages) filled with freshly generated values of each secret
kind, plus clean texts built from the same formats with hard negatives: public certificates and SSH
or PGP public keys, lock-file hashes, UUIDs, git SHAs, placeholders, environment-variable and template
references, masked values, and prose about passwords. The same seed gives the same corpus.

A finding is a true positive when it lies inside a labelled secret (two characters of slack for
quotes); a secret counts as found when findings cover 90% of it. A finding outside every secret is a
false positive of the text's kind (a clean text's kind is the kind its decoys imitate), so precision
is per kind as well. Templates marked `holdout` were not looked at while tuning the detector: the
scorer reports them apart with --holdout.
"""

from __future__ import annotations

import argparse
import random
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.quality.secret_templates import FILLER, TEMPLATES  # noqa: E402
from tests.quality.secret_values import KINDS, SEED, Sample, assemble  # noqa: E402

__all__ = ["KINDS", "SEED", "Sample", "build", "detector", "score"]


def build(seed: int = SEED, per_template: int = 40) -> list[Sample]:
    rng = random.Random(seed)
    out = []
    for kind, template, holdout in TEMPLATES:
        for _ in range(per_template):
            parts = [rng.choice(FILLER)] + template(rng)
            out.append(assemble(parts, kind, template.__name__, holdout))
    return out


# ---- scoring ----------------------------------------------------------------------------------------------


def score(samples: list[Sample], detect: Callable[[str], list], show: str | None = None) -> dict:
    """Per kind: found, gold, true-positive findings, false-positive findings; and clean texts flagged."""
    found, gold, tp, fp = Counter(), Counter(), Counter(), Counter()
    clean = flagged = 0
    for s in samples:
        preds = [(f.start, f.end) for f in detect(s.text) if f.entity_type == "SECRET"]
        for a, b, kind in s.spans:
            gold[kind] += 1
            covered = sum(max(0, min(b, pe) - max(a, ps)) for ps, pe in preds)
            if covered >= 0.9 * (b - a):
                found[kind] += 1
            elif show in (kind, "all"):
                print(f"FN {kind:14} {s.template:20} {s.text[a:b][:60]!r}")
        for ps, pe in preds:
            hit = next((k for a, b, k in s.spans if ps < b and a < pe), None)
            if hit is not None and any(a - 2 <= ps and pe <= b + 2 for a, b, _ in s.spans):
                tp[hit] += 1
            else:
                fp[hit or s.kind] += 1
                if show in (hit or s.kind, "all"):
                    print(f"FP {hit or s.kind:14} {s.template:20} {s.text[ps:pe][:60]!r} in {s.text[max(0, ps - 40):ps]!r}")
        if s.clean:
            clean += 1
            flagged += bool(preds)
    rows = {}
    for kind in KINDS:
        rows[kind] = {"recall": found[kind] / gold[kind] if gold[kind] else 1.0,
                      "precision": tp[kind] / (tp[kind] + fp[kind]) if tp[kind] + fp[kind] else 1.0,
                      "gold": gold[kind], "fp": fp[kind]}
    return {"kinds": rows, "clean_texts": clean, "clean_flagged": flagged / clean if clean else 0.0}


def detector(demo: bool = False):
    """The secrets rule's detector; with `demo`, the one pass the demo config shares with its contact-PII rule."""
    from gateway.guardrails.pii import PiiDetector

    extra = ["EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "US_SSN", "IBAN_CODE", "IP_ADDRESS"] if demo else []
    return PiiDetector(entities=["SECRET", *extra])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--errors", default=None, help="kind (or 'all') whose misses and false positives to print")
    ap.add_argument("--holdout", action="store_true", help="score the held-out templates only")
    ap.add_argument("--demo", action="store_true", help="detect with the demo config's shared pass (SECRET + contact PII)")
    ap.add_argument("--seed", type=int, default=SEED)
    args = ap.parse_args()
    samples = [s for s in build(args.seed) if s.holdout == args.holdout] if args.holdout else build(args.seed)
    result = score(samples, detector(args.demo).detect, args.errors)
    print(f"{len(samples)} texts ({result['clean_texts']} clean), seed {args.seed}")
    print(f"{'kind':15} {'P':>6} {'R':>6} {'gold':>5} {'FP':>4}")
    for kind, r in result["kinds"].items():
        print(f"{kind:15} {r['precision']:6.3f} {r['recall']:6.3f} {r['gold']:5d} {r['fp']:4d}")
    print(f"clean texts with any secret finding: {result['clean_flagged']:.3f}")


if __name__ == "__main__":
    main()
