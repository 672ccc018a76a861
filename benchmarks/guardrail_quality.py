"""Guardrail quality on the dev set: PII per-type precision/recall/F1, injection P/R/F1/FPR, latency.

    .venv/bin/python benchmarks/guardrail_quality.py [--data DIR] [--ner] [--config C] [--policy P] [--json OUT]

Quality comes from running `gateway scan` itself (a subprocess, as an operator would), so it measures
what the gateway does. A finding hits a labelled span when they overlap and share the type; predictions
overlapping only "don't care" spans (ORGANIZATION, TITLE, AGE, NRP, ZIP_CODE, US_DRIVER_LICENSE) count
neither way. Latency is per text, timed in-process around the same scanner (subprocess start-up is not
per-text latency).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import orjson

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

DEFAULT_DATA = REPO.parent / "shared" / "data" / "eval"
DONT_CARE = frozenset({"ORGANIZATION", "TITLE", "AGE", "NRP", "ZIP_CODE", "US_DRIVER_LICENSE"})


def _read(path: Path) -> list[dict]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


def scan_command() -> list[str]:
    try:
        from gateway.cli import DELEGATED

        if "scan" in DELEGATED:
            return [sys.executable, "-m", "gateway", "scan"]
    except ImportError:
        pass
    return [sys.executable, "-m", "gateway.guardrails.scan_cli"]


def run_scan(records: list[dict], args: list[str]) -> tuple[list[dict], float]:
    payload = b"".join(orjson.dumps({"id": r["id"], "text": r["text"]}) + b"\n" for r in records)
    t0 = time.perf_counter()
    proc = subprocess.run(scan_command() + args, input=payload, capture_output=True, cwd=REPO, check=False)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"gateway scan failed ({proc.returncode}):\n{proc.stderr.decode()[-2000:]}")
    out = [orjson.loads(line) for line in proc.stdout.splitlines()]
    if [o["id"] for o in out] != [r["id"] for r in records]:
        sys.exit("gateway scan output does not line up with its input")
    return out, wall


def _overlap(a: dict, b: dict) -> bool:
    return a["start"] < b["end"] and b["start"] < a["end"]


def pii_scores(records: list[dict], scanned: list[dict]) -> dict[str, dict]:
    tp_gold, fn, tp_pred, fp = Counter(), Counter(), Counter(), Counter()
    for rec, out in zip(records, scanned):
        preds = out["findings"]
        gold = rec["spans"]
        for g in gold:
            if g["entity_type"] in DONT_CARE:
                continue
            if any(p["entity_type"] == g["entity_type"] and _overlap(p, g) for p in preds):
                tp_gold[g["entity_type"]] += 1
            else:
                fn[g["entity_type"]] += 1
        for p in preds:
            if any(g["entity_type"] == p["entity_type"] and _overlap(p, g) for g in gold):
                tp_pred[p["entity_type"]] += 1
            elif any(g["entity_type"] in DONT_CARE and _overlap(p, g) for g in gold):
                continue
            else:
                fp[p["entity_type"]] += 1
    rows: dict[str, dict] = {}
    for etype in sorted(set(tp_gold) | set(fn) | set(tp_pred) | set(fp)):
        rows[etype] = _prf(tp_pred[etype], fp[etype], tp_gold[etype], fn[etype])
    rows["ALL"] = _prf(sum(tp_pred.values()), sum(fp.values()), sum(tp_gold.values()), sum(fn.values()))
    return rows


def _prf(tp_pred: int, fp: int, tp_gold: int, fn: int) -> dict:
    p = tp_pred / (tp_pred + fp) if tp_pred + fp else float("nan")
    r = tp_gold / (tp_gold + fn) if tp_gold + fn else float("nan")
    f = 2 * p * r / (p + r) if p == p and r == r and p + r else float("nan")
    return {"precision": p, "recall": r, "f1": f, "gold": tp_gold + fn, "predicted": tp_pred + fp}


def injection_scores(records: list[dict], scanned: list[dict]) -> dict:
    def counts(pairs):
        c = Counter()
        for rec, out in pairs:
            attack = rec["label"] == "attack"
            flagged = bool(out["injection"] and out["injection"]["flagged"])
            c[("t" if attack == flagged else "f") + ("p" if flagged else "n")] += 1
        return c

    def summary(c: Counter) -> dict:
        tp, fp, fn, tn = c["tp"], c["fp"], c["fn"], c["tn"]
        p = tp / (tp + fp) if tp + fp else float("nan")
        r = tp / (tp + fn) if tp + fn else float("nan")
        f1 = 2 * p * r / (p + r) if tp else (0.0 if tp + fn else float("nan"))
        return {"precision": p, "recall": r, "f1": f1,
                "fpr": fp / (fp + tn) if fp + tn else float("nan"), "n": tp + fp + fn + tn}

    pairs = list(zip(records, scanned))
    by_cat: dict[str, list] = {}
    for rec, out in pairs:
        by_cat.setdefault(rec["category"].split(":")[0], []).append((rec, out))
    return {"all": summary(counts(pairs)), "by_category": {k: summary(counts(v)) for k, v in sorted(by_cat.items())}}


def latency(texts: list[str], config: str | None, policy: str | None, ner: bool) -> dict:
    from gateway.guardrails.engine import Guardrails
    from gateway.guardrails.scan_cli import Scanner, load_rules

    scanner = Scanner(Guardrails.compile(load_rules(config, policy, ner)), "input")
    for t in texts[:20]:  # warm caches (first NER call, lazy tables)
        scanner.analyze(t)
    times = []
    for t in texts:
        t0 = time.perf_counter()
        scanner.analyze(t)
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    return {"p50_ms": statistics.median(times), "p99_ms": times[min(len(times) - 1, int(len(times) * 0.99))],
            "max_ms": times[-1], "n": len(times), "mean_chars": statistics.mean(len(t) for t in texts)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--ner", action="store_true")
    ap.add_argument("--config")
    ap.add_argument("--policy")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args(argv)
    scan_args = (["--ner"] if args.ner else []) + (["--config", args.config] if args.config else []) + (
        ["--policy", args.policy] if args.policy else [])

    pii = _read(args.data / "pii_dev.jsonl")
    inj = _read(args.data / "injection_dev.jsonl")
    pii_out, pii_wall = run_scan(pii, scan_args)
    inj_out, inj_wall = run_scan(inj, scan_args)
    result = {
        "command": " ".join(scan_command()[1:] + scan_args),
        "pii": pii_scores(pii, pii_out),
        "injection": injection_scores(inj, inj_out),
        "latency": {"pii_dev": latency([r["text"] for r in pii], args.config, args.policy, args.ner),
                    "injection_dev": latency([r["text"] for r in inj], args.config, args.policy, args.ner)},
        "subprocess_wall_s": {"pii_dev": pii_wall, "injection_dev": inj_wall},
    }
    _print(result)
    if args.json:
        args.json.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
    return 0


def _print(r: dict) -> None:
    print(f"gateway scan: python {r['command']}\n")
    print(f"{'PII type':<16}{'P':>7}{'R':>7}{'F1':>7}{'gold':>7}{'pred':>7}")
    for etype, m in r["pii"].items():
        print(f"{etype:<16}{m['precision']:>7.3f}{m['recall']:>7.3f}{m['f1']:>7.3f}{m['gold']:>7}{m['predicted']:>7}")
    print(f"\n{'injection':<24}{'P':>7}{'R':>7}{'F1':>7}{'FPR':>7}{'n':>6}")
    rows = {"ALL": r["injection"]["all"], **r["injection"]["by_category"]}
    for name, m in rows.items():
        print(f"{name:<24}{m['precision']:>7.3f}{m['recall']:>7.3f}{m['f1']:>7.3f}{m['fpr']:>7.3f}{m['n']:>6}")
    print("\nlatency per text (in-process, all detectors of the policy):")
    for name, m in r["latency"].items():
        print(f"  {name:<14} p50 {m['p50_ms']:.2f} ms  p99 {m['p99_ms']:.2f} ms  max {m['max_ms']:.2f} ms"
              f"  (n={m['n']}, mean {m['mean_chars']:.0f} chars)")
    w = r["subprocess_wall_s"]
    print(f"gateway scan wall time incl. start-up: pii_dev {w['pii_dev']:.2f} s, injection_dev {w['injection_dev']:.2f} s")


if __name__ == "__main__":
    raise SystemExit(main())
