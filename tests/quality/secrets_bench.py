"""Micro-benchmark of the secrets scan on ~300-token texts without secrets, this tree against a baseline rev.

    PYTHONPATH=$PWD .venv/bin/python tests/quality/secrets_bench.py [REV]   (REV default 1554a50)

The baseline's secrets.py is read with `git show` (it imports nothing of ours). Prose: 230-word cuts of the
benign long documents of the injection dev set; config: a docker-compose file with placeholders and prose.
"""

from __future__ import annotations

import importlib.util
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
EVAL = ROOT.parent.parent / "shared" / "data" / "eval" / "injection_dev.jsonl"


def _baseline(rev: str):
    src = subprocess.run(["git", "show", f"{rev}:gateway/guardrails/pii/secrets.py"], cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout
    path = Path(tempfile.mkdtemp()) / "baseline_secrets.py"
    path.write_text(src)
    spec = importlib.util.spec_from_file_location("baseline_secrets", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.SecretDetector()


def _texts() -> dict[str, list[str]]:
    docs = [json.loads(line) for line in EVAL.open()]
    words = " ".join(d["text"] for d in docs if d.get("category", "").startswith("benign_long")).split(" ")
    prose = [" ".join(words[i : i + 230]) for i in range(0, len(words) - 230, 115)][:200]
    cfg = ("services:\n  api:\n    image: acme/api:2.3.1\n    environment:\n      LOG_LEVEL: info\n"
           "      DB_HOST: db.internal\n      DB_PASSWORD: ${DB_PASSWORD}\n      MAX_TOKENS: 4096\n") * 4
    cfg += "Why does the API container restart every few minutes? The key question is whether auth tokens expire.\n" * 3
    return {"benign prose": prose, "config + prose": [cfg] * 100}


def _bench(det, texts: list[str], rounds: int = 20) -> tuple[float, float]:
    times = []
    for _ in range(rounds):
        for text in texts:
            t0 = time.process_time()
            list(det.detect(text))
            times.append(time.process_time() - t0)
    times.sort()
    return statistics.median(times) * 1e6, times[int(len(times) * 0.99)] * 1e6


def main() -> None:
    from gateway.guardrails.pii.secrets import SecretDetector

    rev = sys.argv[1] if len(sys.argv) > 1 else "1554a50"
    for name, texts in _texts().items():
        print(f"{name} ({statistics.mean(map(len, texts)):.0f} chars, no secret)")
        for label, det in ((rev, _baseline(rev)), ("this tree", SecretDetector())):
            p50, p99 = _bench(det, texts)
            print(f"  {label:10} p50 {p50:6.1f} us  p99 {p99:7.1f} us")


if __name__ == "__main__":
    main()
