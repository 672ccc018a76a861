"""Score the shipped injection detector on the dev set: per-category rates and single-thread latency.

    .venv/bin/python tests/quality/injection_eval.py [path/to/injection_dev.jsonl] [--repeat N]

The model was trained on this dev set, so the quality numbers here are in-sample (an upper bound); the
honest numbers come from `scripts/train_injection.py --cv` (grouped by near_dup_group). Latency is what
this script is for: after a warm-up pass every dev prompt is scored once (single-run figures), then N more
times keeping each prompt's fastest run (best-of-N figures: what a quiet core gives; single-run figures
also carry whatever else the machine was doing).
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from gateway.guardrails.injection import InjectionDetector  # noqa: E402

DEV = Path(os.environ.get("GATEWAY_EVAL_DIR", Path(__file__).resolve().parents[3] / "shared" / "data" / "eval")) / "injection_dev.jsonl"


def _percentiles(label: str, timings: list[float]) -> None:
    timings = sorted(timings)
    p50 = statistics.median(timings)
    p99 = timings[min(len(timings) - 1, int(len(timings) * 0.99))]
    print(f"latency {label} over {len(timings)} prompts: p50={p50:.3f} ms p99={p99:.3f} ms max={timings[-1]:.3f} ms")


def main() -> None:
    args = sys.argv[1:]
    repeat = 9
    if "--repeat" in args:
        i = args.index("--repeat")
        repeat = int(args[i + 1])
        del args[i:i + 2]
    path = Path(args[0]) if args else DEV
    rows = [json.loads(line) for line in path.open(encoding="utf-8")]
    detector = InjectionDetector()
    for row in rows:
        detector.score(row["text"])
    timings, flags = [], []
    for row in rows:
        started = time.perf_counter()
        flags.append(detector.flagged(row["text"]))
        timings.append((time.perf_counter() - started) * 1000)
    _percentiles("single run", timings)
    best = list(timings)
    for _ in range(repeat):
        for i, row in enumerate(rows):
            started = time.perf_counter()
            detector.flagged(row["text"])
            best[i] = min(best[i], (time.perf_counter() - started) * 1000)
    _percentiles(f"best of {repeat + 1}", best)
    attack = [r["label"] == "attack" for r in rows]
    tp = sum(f and a for f, a in zip(flags, attack))
    fp = sum(f and not a for f, a in zip(flags, attack))
    fn = sum(a and not f for f, a in zip(flags, attack))
    precision, recall = tp / max(1, tp + fp), tp / max(1, tp + fn)
    print(f"in-sample (trained on this set): P={precision:.3f} R={recall:.3f} "
          f"F1={2 * precision * recall / max(1e-9, precision + recall):.3f} FPR={fp / max(1, attack.count(False)):.3f}")
    per: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for row, flagged in zip(rows, flags):
        per[row["category"].split(":")[0], row["label"]][0] += flagged
        per[row["category"].split(":")[0], row["label"]][1] += 1
    for (category, label), (hit, n) in sorted(per.items()):
        print(f"  {category:28s} {'recall' if label == 'attack' else 'FPR':6s} {hit / n:.3f} ({hit}/{n})")


if __name__ == "__main__":
    main()
