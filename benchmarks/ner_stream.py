"""What the NER tier costs a streamed answer when it scans the output: added time to first token and
inter-chunk p99, against the same gateway with the fast PII tier only (and without guardrails).

    python benchmarks/ner_stream.py [--n 200] [--runs 3]

Each row is a gateway subprocess pinned to its own CPU (as in bench.py) in front of the canned
upstream, which streams a 24-piece answer back to back; the client streams `n` requests one at a time
and records TTFT and the gaps between content chunks. Rows:

    passthrough   no guardrails
    pii-fast      PII rule (fast tier) on the output
    pii-ner       the same rule with `ner = true` (PERSON, LOCATION, DATE_TIME also by spaCy) on the output

Each figure is the median over `runs`; the "added" lines are pii-ner minus pii-fast from the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench  # noqa: E402  (the benchmark helpers: processes, config, the streaming client)

PII_FAST = """
[[guardrails]]
id = "pii"
type = "pii"
entities = ["EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "US_SSN", "IBAN_CODE", "IP_ADDRESS"]
action = "redact"
direction = "output"
"""
PII_NER = PII_FAST.replace('"IP_ADDRESS"]', '"IP_ADDRESS", "PERSON", "LOCATION", "DATE_TIME"]\nner = true')
ROWS = {
    "passthrough": ({}, bench.NO_AUDIT),
    "pii-fast": ({"guardrails.toml": PII_FAST}, bench.NO_AUDIT),
    "pii-ner": ({"guardrails.toml": PII_NER}, bench.NO_AUDIT),
}


async def stream_latency(url: str, n: int) -> dict:
    import aiohttp

    ttfts: list[float] = []
    gaps: list[float] = []
    async with aiohttp.ClientSession() as s:
        for _ in range(10):  # warm-up (the first NER call loads nothing, but the executor starts its thread)
            await bench._one(s, url, bench.STREAM_BODY, True)
        for _ in range(n):
            _, ttft, g = await bench._one(s, url, bench.STREAM_BODY, True)
            ttfts.append(ttft)
            gaps.extend(g)
    return {"ttft_p50": bench.pct(ttfts, 50), "ttft_p99": bench.pct(ttfts, 99),
            "gap_p50": bench.pct(gaps, 50), "gap_p99": bench.pct(gaps, 99)}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=200, help="streamed requests per row and run")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    bench.ROW_FILES.update(ROWS)
    up_port = bench.free_port()
    procs = [bench.start([bench.PY, "benchmarks/canned_upstream.py", str(up_port)], up_port, bench.LOAD_CPU)]
    upstream = f"http://127.0.0.1:{up_port}"
    tmp = Path(tempfile.mkdtemp(prefix="gw-ner-bench-"))
    urls: dict[str, str] = {}
    try:
        for row in ROWS:
            port = bench.free_port()
            cfg = bench.gateway_config(tmp / row, upstream, row, "redis://127.0.0.1:1/0")
            procs.append(bench.start([bench.PY, "-m", "gateway", "serve", "--config", str(cfg), "--port", str(port)],
                                     port, bench.PROXY_CPU))
            urls[row] = f"http://127.0.0.1:{port}/v1/chat/completions"
        results: dict[str, list[dict]] = {row: [] for row in ROWS}
        for _ in range(args.runs):
            for row, url in urls.items():  # interleaved, so drift hits every row alike
                results[row].append(asyncio.run(stream_latency(url, args.n)))
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(10)
    keys = ("ttft_p50", "ttft_p99", "gap_p50", "gap_p99")
    med = {row: {k: statistics.median(r[k] for r in runs) for k in keys} for row, runs in results.items()}
    print("| row | TTFT p50 | TTFT p99 | inter-chunk p50 | inter-chunk p99 |")
    print("|---|---|---|---|---|")
    for row, m in med.items():
        print(f"| {row} | " + " | ".join(f"{m[k] * 1000:.2f} ms" for k in keys) + " |")
    fast, ner = med["pii-fast"], med["pii-ner"]
    print(f"\nadded by NER on the output: TTFT p50 {1000 * (ner['ttft_p50'] - fast['ttft_p50']):+.2f} ms, "
          f"inter-chunk p99 {1000 * (ner['gap_p99'] - fast['gap_p99']):+.2f} ms "
          f"(ratio pii-ner / pii-fast: TTFT p50 {ner['ttft_p50'] / fast['ttft_p50']:.2f}x, "
          f"inter-chunk p99 {ner['gap_p99'] / fast['gap_p99']:.2f}x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
