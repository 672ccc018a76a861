"""Dev-time scorer for the PII detector on the eval set (not a pytest module).

    .venv/bin/python tests/quality/pii_eval.py [--ner] [--errors TYPE]

Prints per-type precision/recall/F1 (a finding hits a labelled span when they overlap and share the
type; predictions overlapping only "don't care" spans are ignored) and CPU time per detect(): per dev
record, per ~300-word PII-dense text (random dev records joined) and per 300-word cut of the benign
long documents in the injection dev set. Targets for the fast tier on ~300 words: p50 < 0.25 ms,
p99 < 1 ms. CPU time (process_time), not wall time, so other work on a shared machine doesn't count.
"""

from __future__ import annotations

import os
import argparse
import json
import random
import re
import statistics
import time
from collections import Counter
from pathlib import Path

from gateway.guardrails.pii import FAST_TIER_ENTITIES, NER_ENTITIES, PiiDetector

EVAL = Path(os.environ.get("GATEWAY_EVAL_DIR", Path(__file__).resolve().parents[3] / "shared" / "data" / "eval"))
DATA = EVAL / "pii_dev.jsonl"
BENIGN_DOCS = EVAL / "injection_dev.jsonl"
DONT_CARE = {"ORGANIZATION", "TITLE", "AGE", "NRP", "ZIP_CODE", "US_DRIVER_LICENSE"}


def overlaps(a, b) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def score(records, detector, show_errors: str | None):
    tp_gold, fn, tp_pred, fp = Counter(), Counter(), Counter(), Counter()
    for rec in records:
        text = rec["text"]
        preds = detector.detect(text)
        gold = [(s["start"], s["end"], s["entity_type"]) for s in rec["spans"]]
        for g in gold:
            if g[2] in DONT_CARE:
                continue
            if any(p.entity_type == g[2] and overlaps((p.start, p.end), g) for p in preds):
                tp_gold[g[2]] += 1
            else:
                fn[g[2]] += 1
                if show_errors in (g[2], "all"):
                    print(f"FN {g[2]:13} {text[g[0]:g[1]]!r:40} in {text[:120]!r}")
        for p in preds:
            if any(p.entity_type == g[2] and overlaps((p.start, p.end), g) for g in gold):
                tp_pred[p.entity_type] += 1
            elif any(g[2] in DONT_CARE and overlaps((p.start, p.end), g) for g in gold):
                continue
            else:
                fp[p.entity_type] += 1
                if show_errors in (p.entity_type, "all"):
                    print(f"FP {p.entity_type:13} {text[p.start:p.end]!r:40} in {text[:120]!r}")
    rows = []
    for etype in sorted(set(tp_gold) | set(fn) | set(fp) | set(tp_pred)):
        p = tp_pred[etype] / (tp_pred[etype] + fp[etype]) if tp_pred[etype] + fp[etype] else 1.0
        r = tp_gold[etype] / (tp_gold[etype] + fn[etype]) if tp_gold[etype] + fn[etype] else 1.0
        f1 = 2 * p * r / (p + r) if p + r else 0.0
        rows.append((etype, p, r, f1, tp_gold[etype] + fn[etype], fp[etype]))
    return rows


def latency(texts, detector, repeat: int):
    times = []
    for _ in range(repeat):
        for text in texts:
            t0 = time.process_time()
            detector.detect(text)
            times.append(time.process_time() - t0)
    times.sort()
    return statistics.median(times) * 1e3, times[int(len(times) * 0.99)] * 1e3


def dense_texts(records, n: int = 300, words: int = 300) -> list[str]:
    """~300-word texts made by joining random dev records: PII-dense."""
    rng = random.Random(7)
    texts = []
    for _ in range(n):
        parts: list[str] = []
        while sum(len(p.split()) for p in parts) < words:
            parts.append(rng.choice(records)["text"])
        texts.append("\n".join(parts))
    return texts


def benign_cuts(words: int = 300, stride: int = 150) -> list[str]:
    """300-word cuts (whitespace kept) of the benign long documents, joined end to end."""
    docs = [json.loads(line) for line in BENIGN_DOCS.open()]
    stream = "\n\n".join(d["text"] for d in docs if d.get("category", "").startswith("benign_long_document"))
    spans = [m.span() for m in re.finditer(r"\S+", stream)]
    return [stream[spans[i][0] : spans[i + words - 1][1]] for i in range(0, len(spans) - words, stride)]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ner", action="store_true")
    ap.add_argument("--errors", default=None, help="entity type (or 'all') whose misses and false positives to print")
    args = ap.parse_args()
    records = [json.loads(line) for line in DATA.open()]
    t0 = time.perf_counter()
    detector = PiiDetector(entities=FAST_TIER_ENTITIES + (NER_ENTITIES if args.ner else ()), ner=args.ner)
    print(f"build {time.perf_counter() - t0:.2f}s")
    print(f"{'type':14} {'P':>6} {'R':>6} {'F1':>6} {'gold':>5} {'FP':>4}")
    for etype, p, r, f1, n, nfp in score(records, detector, args.errors):
        print(f"{etype:14} {p:6.3f} {r:6.3f} {f1:6.3f} {n:5d} {nfp:4d}")
    repeat = 1 if args.ner else 5
    p50, p99 = latency([r["text"] for r in records], detector, repeat)
    print(f"per dev record  (median {statistics.median(len(r['text'].split()) for r in records):.0f} words): p50 {p50:.3f} ms  p99 {p99:.3f} ms")
    for name, texts in (("PII-dense", dense_texts(records)), ("benign docs", benign_cuts())):
        p50, p99 = latency(texts, detector, repeat)
        chars = statistics.mean(len(t) for t in texts)
        print(f"per ~300 words, {name:11} ({len(texts)} texts, {chars:.0f} chars): p50 {p50:.3f} ms  p99 {p99:.3f} ms")


if __name__ == "__main__":
    main()
