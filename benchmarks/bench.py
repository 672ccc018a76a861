"""Gateway benchmark: direct upstream vs the reference proxy vs the gateway, in one run.

    .venv/bin/python benchmarks/bench.py [--rows passthrough,limits-memory,...] [--runs 3] [--quick] [--peers auto]

Starts a canned upstream, the fixed reference proxy (benchmarks/reference_proxy.py) and the gateway
in each configuration ("row"), pins the upstream and the load generator to core 0 and the proxy under
test to core 1 (where the machine has two cores), and prints a Markdown table; JSON goes to
benchmarks/results/. Throughput comes from wrk (Debian package `wrk`, installed when missing) at
concurrency 64; latency from a Python client at concurrency 1 and 8. "Added" latency is the proxy's
percentile minus the direct upstream's percentile. CPU ms per request is the proxy process's user+system
CPU time over the wrk run divided by the requests it served. Medians of --runs runs.

Peer rows (--peers auto|litellm|none; benchmarks/peers.py): "auto" adds a LiteLLM proxy row when its
executable is found at $LITELLM_BIN or .peers/litellm/bin/litellm, and says so when it is skipped;
"litellm" fails without it. LiteLLM gets its own virtual environment, outside the project's:

    python3 -m venv .peers/litellm && .peers/litellm/bin/pip install 'litellm[proxy]==1.108.7'

(pinned; 1.107.0 was a compromised release and is refused). It runs offline with one uvicorn worker on
the proxy core, one model routed to the same canned upstream, the benchmark key as its master key, no
database and no callbacks, and is measured exactly like the gateway rows.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

from peers import LITELLM_INSTALL, litellm_bin, start_litellm

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
KEY = "sk-bench-0123456789"
NCPU = os.cpu_count() or 1
LOAD_CPU = {0}
PROXY_CPU = {1} if NCPU > 1 else {0}

# ~300 tokens of prompt.
PROMPT = ("Please summarise the following notes for the weekly engineering review and list the action items. "
          "The team shipped the new billing pipeline, migrated two services to the new cluster and fixed the "
          "flaky integration tests. Open questions remain about the rollout schedule for the European region, "
          "the on-call rotation for the holidays and the budget for load testing. ") * 5
BODY = json.dumps({"model": "bench", "messages": [{"role": "user", "content": PROMPT}], "max_tokens": 64}).encode()
STREAM_BODY = json.dumps({"model": "bench", "messages": [{"role": "user", "content": PROMPT}], "max_tokens": 64,
                          "stream": True}).encode()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pinned(cpus: set[int]):
    def fn() -> None:
        os.sched_setaffinity(0, cpus)
    return fn


def wait_port(port: int, timeout: float = 30) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), 0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU of the process and its children (the workers under --workers N)."""
    total = 0
    for p in [pid] + children(pid):
        fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    total = 0
    for p in [pid] + children(pid):
        for line in Path(f"/proc/{p}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total / 1024


def children(pid: int) -> list[int]:
    try:
        out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    except FileNotFoundError:
        return []
    return [int(x) for x in out.split()]




def gateway_config(tmp: Path, upstream: str, row: str, redis_url: str, force_redis: bool = False) -> Path:
    (tmp / "policies").mkdir(parents=True, exist_ok=True)
    (tmp / "policies" / "keys.toml").write_text(
        f'[[keys]]\nid = "bench"\nkey_sha256 = "{hashlib.sha256(KEY.encode()).hexdigest()}"\nteam = "bench"\n')
    extra_policies, extra_main = ROW_FILES.get(row, ({}, ""))
    if force_redis and "[store]" not in extra_main:
        extra_main = '[store]\nurl = "{redis}"\n' + extra_main
    for name, text in extra_policies.items():
        (tmp / "policies" / name).write_text(text)
    main = f"""
policies = ["policies/*.toml"]
[server]
max_in_flight = 100000
[providers.up]
type = "openai"
base_url = "{upstream}/v1"
[models.bench]
targets = [{{ provider = "up", model = "bench-model" }}]
{shadow_line(row)}[pricing.bench-model]  # the limits rows' USD budget needs a price for every target it covers
input = 1.0
output = 2.0
{extra_main.replace("{redis}", redis_url).replace("{upstream}", upstream)}
"""
    path = tmp / "gateway.toml"
    path.write_text(main)
    return path


LIMITS = """
[[rate_limits]]
scope = "key"
rpm = 100000000
tpm = 1000000000000
concurrency = 100000

[[budgets]]
scope = "team"
usd = 1000000000.0
window = "month"
"""
GUARDRAILS = """
[[guardrails]]
id = "secrets"
type = "secrets"
action = "block"
direction = "both"

[[guardrails]]
id = "pii"
type = "pii"
entities = ["EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "US_SSN", "IBAN_CODE", "IP_ADDRESS"]
action = "redact"
direction = "both"

[[guardrails]]
id = "injection"
type = "injection"
action = "block"
"""
SINKS = """
[audit]
spool_dir = "spool"
[[audit.sinks]]
type = "stdout"
[[audit.sinks]]
type = "file"
path = "audit.jsonl"
[[audit.sinks]]
type = "redis"
"""
CACHE_ALL = """
[[cache]]
id = "bench"
max_temperature = 2.0
ttl_s = 3600
"""
# Rows measure one feature each; only "records" and "everything" keep the audit log on.
NO_AUDIT = "[audit]\nenabled = false\n"
# Each row: (policy files, extra main-config text). {redis} is replaced by the benchmark's Redis URL.
ROW_FILES: dict[str, tuple[dict[str, str], str]] = {
    "passthrough": ({}, NO_AUDIT),
    "limits-memory": ({"limits.toml": LIMITS}, NO_AUDIT),
    "limits-redis": ({"limits.toml": LIMITS}, '[store]\nurl = "{redis}"\n' + NO_AUDIT),
    "guardrails": ({"guardrails.toml": GUARDRAILS}, NO_AUDIT),
    "records": ({}, '[store]\nurl = "{redis}"\n' + SINKS),
    "everything": ({"limits.toml": LIMITS, "guardrails.toml": GUARDRAILS}, '[store]\nurl = "{redis}"\n' + SINKS),
    # The response cache (#18): every request after the first is a hit (the body has no temperature, so
    # the rule admits any), answered from the memory store without an upstream call. Compare with passthrough.
    "cache-hit": ({"cache.toml": CACHE_ALL}, NO_AUDIT),
    # Passthrough with every request traced (sample 1.0), exported to the canned upstream's OTLP sink
    # (on the load core): compare with "passthrough" in the same run for what tracing costs.
    "tracing": ({}, NO_AUDIT + '[tracing]\nenabled = true\nsample_ratio = 1.0\nendpoint = "{upstream}/v1/traces"\n'),
}

# Shadow traffic (#18): the bench alias copies a share of its requests to a candidate on the same upstream.
SHADOW_ROWS = {"shadow-5pct": 0.05}
ROW_FILES["shadow-5pct"] = ({}, NO_AUDIT + '[models.bench-cand]\ntargets = [{ provider = "up", model = "bench-cand" }]\n')


def shadow_line(row: str) -> str:
    sample = SHADOW_ROWS.get(row)
    return f'shadow = {{ alias = "bench-cand", sample = {sample} }}\n' if sample is not None else ""


async def _one(session: aiohttp.ClientSession, url: str, body: bytes, stream: bool) -> tuple[float, float, list[float]]:
    headers = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
    t0 = time.perf_counter()
    ttft = 0.0
    gaps: list[float] = []
    async with session.post(url, data=body, headers=headers) as r:
        if not stream:
            await r.read()
            if r.status != 200:
                raise RuntimeError(f"{url}: status {r.status}")
        else:
            last = 0.0
            async for line in r.content:
                if line.startswith(b"data: {") and b'"content":"' in line and b'"content":""' not in line:
                    now = time.perf_counter()
                    if not ttft:
                        ttft = now - t0
                    elif last:
                        gaps.append(now - last)
                    last = now
    return time.perf_counter() - t0, ttft, gaps


async def latency(url: str, n: int, concurrency: int, stream: bool) -> dict:
    conn = aiohttp.TCPConnector(limit=0)
    lat: list[float] = []
    ttfts: list[float] = []
    gaps: list[float] = []
    async with aiohttp.ClientSession(connector=conn) as s:
        for _ in range(20):  # warm-up
            await _one(s, url, STREAM_BODY if stream else BODY, stream)
        per = n // concurrency

        async def worker() -> None:
            for _ in range(per):
                total, ttft, g = await _one(s, url, STREAM_BODY if stream else BODY, stream)
                lat.append(total)
                ttfts.append(ttft)
                gaps.extend(g)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return {"p50": pct(lat, 50), "p99": pct(lat, 99), "ttft_p50": pct(ttfts, 50), "gap_p99": pct(gaps, 99) if gaps else 0}


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    if not xs:
        return 0.0
    k = min(len(xs) - 1, max(0, round(p / 100 * (len(xs) - 1))))
    return xs[k]


def wrk(url: str, seconds: int, body: bytes) -> tuple[float, int]:
    lua = tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False)
    lua.write(f'wrk.method = "POST"\nwrk.body = {json.dumps(body.decode())}\n'
              f'wrk.headers["Content-Type"] = "application/json"\nwrk.headers["Authorization"] = "Bearer {KEY}"\n'
              'done = function(summary, latency, requests)\n'
              '  io.write(string.format("RESULT %d %d %d\\n", summary.requests, summary.duration, summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))\nend\n')
    lua.close()
    out = subprocess.run(["wrk", "-t1", "-c64", f"-d{seconds}s", "-s", lua.name, url], capture_output=True,
                         text=True, preexec_fn=pinned(LOAD_CPU)).stdout
    os.unlink(lua.name)
    line = [ln for ln in out.splitlines() if ln.startswith("RESULT")][0].split()
    reqs, dur_us, errors = int(line[1]), int(line[2]), int(line[3])
    if errors:
        print(f"  warning: {errors} errors from wrk against {url}", file=sys.stderr)
    return reqs / (dur_us / 1e6), reqs


def measure(name: str, url: str, pid: int | None, args) -> dict:
    os.sched_setaffinity(0, LOAD_CPU)
    res: dict = {"target": name}
    n = 200 if args.quick else 1000
    for conc in (1, 8):
        res[f"c{conc}"] = asyncio.run(latency(url, n, conc, False))
        res[f"c{conc}_stream"] = asyncio.run(latency(url, n // 2, conc, True))
    if pid is not None:
        c0 = cpu_seconds(pid)
    rps, reqs = wrk(url, 3 if args.quick else 8, BODY)
    res["rps"] = rps
    if pid is not None:
        res["cpu_ms_per_req"] = (cpu_seconds(pid) - c0) * 1000 / max(reqs, 1)
        res["rss_mb"] = rss_mb(pid)
    return res


def start(cmd: list[str], port: int, cpus: set[int], env: dict | None = None) -> subprocess.Popen:
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=pinned(cpus),
                         env={**os.environ, **(env or {})}, cwd=ROOT)
    wait_port(port)
    return p


def ensure_wrk() -> None:
    if shutil.which("wrk"):
        return
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    subprocess.run(sudo + ["apt-get", "install", "-y", "-qq", "wrk"], check=True)


def median_of(runs: list[dict]) -> dict:
    out: dict = {"target": runs[0]["target"]}
    for k, v in runs[0].items():
        if isinstance(v, dict):
            out[k] = {kk: statistics.median(r[k][kk] for r in runs) for kk in v}
        elif isinstance(v, (int, float)):
            out[k] = statistics.median(r[k] for r in runs)
    return out


def table(results: list[dict]) -> str:
    direct = next(r for r in results if r["target"] == "direct upstream")
    ms = lambda x: f"{x * 1000:.2f}"  # noqa: E731
    lines = ["| target | req/s (c=64) | added p50 / p99 ms (c=1) | added p50 / p99 ms (c=8) | stream added p50 ms (c=1) "
             "| added TTFT p50 ms | inter-chunk p99 ms | CPU ms/req | RSS MB |", "|" + "---|" * 9]
    for r in results:
        if r is direct:
            lines.append(f"| {r['target']} | {r['rps']:,.0f} | ({ms(r['c1']['p50'])} / {ms(r['c1']['p99'])}) | "
                         f"({ms(r['c8']['p50'])} / {ms(r['c8']['p99'])}) | ({ms(r['c1_stream']['p50'])}) | "
                         f"({ms(r['c1_stream']['ttft_p50'])}) | {ms(r['c1_stream']['gap_p99'])} | - | - |")
            continue
        add = lambda k, p: ms(r[k][p] - direct[k][p])  # noqa: E731
        lines.append(
            f"| {r['target']} | {r['rps']:,.0f} | {add('c1', 'p50')} / {add('c1', 'p99')} | {add('c8', 'p50')} / "
            f"{add('c8', 'p99')} | {add('c1_stream', 'p50')} | {add('c1_stream', 'ttft_p50')} | "
            f"{ms(r['c1_stream']['gap_p99'])} | {r.get('cpu_ms_per_req', 0):.3f} | {r.get('rss_mb', 0):.0f} |")
    return "\n".join(lines)


async def soak_load(url: str, seconds: float, rate: float, pid: int) -> dict:
    """Open-loop load at a fixed rate (half streamed), RSS sampled once a minute."""
    conn = aiohttp.TCPConnector(limit=0)
    sem = asyncio.Semaphore(256)
    errors = 0
    done = 0
    samples: list[tuple[float, float]] = []
    async with aiohttp.ClientSession(connector=conn) as s:
        async def one(i: int) -> None:
            nonlocal errors, done
            async with sem:
                try:
                    await _one(s, url, STREAM_BODY if i % 2 else BODY, bool(i % 2))
                    done += 1
                except Exception:
                    errors += 1

        start = time.perf_counter()
        tasks: set[asyncio.Task] = set()
        next_sample = 0.0
        i = 0
        while (now := time.perf_counter() - start) < seconds:
            if now >= next_sample:
                samples.append((now / 60, rss_mb(pid)))
                next_sample += 60
            while i < now * rate:
                t = asyncio.create_task(one(i))
                tasks.add(t)
                t.add_done_callback(tasks.discard)
                i += 1
            await asyncio.sleep(0.005)
        await asyncio.gather(*tasks)
        samples.append((seconds / 60, rss_mb(pid)))
    base = samples[1][1] if len(samples) > 2 else samples[0][1]  # after the first minute's warm-up
    return {"requests": done, "errors": errors, "rss_mb": samples, "growth_pct": (samples[-1][1] - base) / base * 100}


def run_soak(args, upstream: str, redis_url: str, tmp: Path) -> int:
    row = args.rows.split(",")[0] if args.rows != ",".join(ROW_FILES) else "everything"
    port = free_port()
    gw = start([PY, "-m", "gateway", "serve", "--config", str(gateway_config(tmp / row, upstream, row, redis_url)),
                "--port", str(port)], port, PROXY_CPU)
    try:
        os.sched_setaffinity(0, LOAD_CPU)
        res = asyncio.run(soak_load(f"http://127.0.0.1:{port}/v1/chat/completions", args.soak * 60, args.rate, gw.pid))
    finally:
        gw.terminate()
        gw.wait(20)
    print(f"soak: gateway row '{row}', {args.soak:g} min at {args.rate:g} req/s (half streamed): "
          f"{res['requests']} served, {res['errors']} errors")
    print("| minute | RSS MB |\n|---|---|")
    for minute, rss in res["rss_mb"]:
        print(f"| {minute:.1f} | {rss:.1f} |")
    print(f"RSS growth after the first minute: {res['growth_pct']:+.1f}%")
    save({"soak": res, "row": row, "rate": args.rate, "minutes": args.soak}, "soak")
    return 0


def run_scaling(args, upstream: str, redis_url: str, tmp: Path) -> int:
    """The same row with 1 and 2 workers; gateway and load generator share every core."""
    global LOAD_CPU
    row = args.rows.split(",")[0] if args.rows != ",".join(ROW_FILES) else "everything"
    all_cpus = set(range(NCPU))
    LOAD_CPU = all_cpus
    out = []
    for workers in (1, 2):
        port = free_port()
        cfg = gateway_config(tmp / f"{row}-w{workers}", upstream, row, redis_url, force_redis=True)
        gw = start([PY, "-m", "gateway", "serve", "--config", str(cfg), "--port", str(port), "--workers", str(workers)],
                   port, all_cpus)
        try:
            time.sleep(1.0)
            runs = []
            for _ in range(args.runs):
                c0 = cpu_seconds(gw.pid)
                rps, reqs = wrk(f"http://127.0.0.1:{port}/v1/chat/completions", 3 if args.quick else 8, BODY)
                runs.append((rps, (cpu_seconds(gw.pid) - c0) * 1000 / max(reqs, 1)))
            out.append({"workers": workers, "rps": statistics.median(r[0] for r in runs),
                        "cpu_ms_per_req": statistics.median(r[1] for r in runs), "rss_mb": rss_mb(gw.pid)})
        finally:
            gw.terminate()
            gw.wait(20)
    print(f"| workers (row '{row}', Redis store, load generator on the same {NCPU} cores) | req/s (c=64) | "
          "CPU ms/req | RSS MB (all workers) |\n|---|---|---|---|")
    for r in out:
        print(f"| {r['workers']} | {r['rps']:,.0f} | {r['cpu_ms_per_req']:.3f} | {r['rss_mb']:.0f} |")
    print(f"2 workers / 1 worker: {out[1]['rps'] / out[0]['rps']:.2f}x")
    save({"scaling": out, "row": row}, "scaling")
    return 0


def save(data: dict, kind: str) -> None:
    dest = ROOT / "benchmarks" / "results"
    dest.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    data = {"machine": {"cpus": NCPU}, "date": time.strftime("%Y-%m-%d"), **data}
    (dest / f"{kind}-{stamp}.json").write_text(json.dumps(data, indent=1))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", default=",".join(ROW_FILES), help=f"comma-separated, from: {', '.join(ROW_FILES)}")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="fewer requests, shorter wrk runs")
    ap.add_argument("--workers", type=int, default=1, help="workers of each gateway row (needs Redis rows)")
    ap.add_argument("--scaling", action="store_true", help="1 vs 2 workers of one row (default: everything)")
    ap.add_argument("--soak", type=float, default=0, metavar="MINUTES", help="soak one row at --rate, RSS per minute")
    ap.add_argument("--rate", type=float, default=200, help="requests per second in --soak")
    ap.add_argument("--peers", choices=("auto", "litellm", "none"), default="auto",
                    help="LiteLLM proxy row: auto = when installed (see the docstring), litellm = required")
    args = ap.parse_args()
    ensure_wrk()
    up_port, ref_port = free_port(), free_port()
    procs = [start([PY, "benchmarks/canned_upstream.py", str(up_port)], up_port, LOAD_CPU)]
    redis_port = free_port()
    redis_dir = tempfile.mkdtemp(prefix="gw-bench-redis-")
    procs.append(start(["redis-server", "--port", str(redis_port), "--save", "", "--appendonly", "no",
                        "--dir", redis_dir], redis_port, LOAD_CPU))
    redis_url = f"redis://127.0.0.1:{redis_port}/0"
    upstream = f"http://127.0.0.1:{up_port}"
    ref = start([PY, "benchmarks/reference_proxy.py", str(ref_port), upstream], ref_port, PROXY_CPU)
    procs.append(ref)
    results: list[dict] = []
    notes: list[str] = []
    if args.soak or args.scaling:
        try:
            tmp = Path(tempfile.mkdtemp(prefix="gw-bench-"))
            return run_soak(args, upstream, redis_url, tmp) if args.soak else run_scaling(args, upstream, redis_url, tmp)
        finally:
            for p in procs:
                p.terminate()
                p.wait(10)
    try:
        targets: list[tuple[str, str, int | None, subprocess.Popen | None]] = [
            ("direct upstream", f"{upstream}/v1/chat/completions", None, None),
            ("reference proxy", f"http://127.0.0.1:{ref_port}/v1/chat/completions", ref.pid, None),
        ]
        tmp = Path(tempfile.mkdtemp(prefix="gw-bench-"))
        for row in args.rows.split(","):
            port = free_port()
            cfg = gateway_config(tmp / row, upstream, row, redis_url)
            cmd = [PY, "-m", "gateway", "serve", "--config", str(cfg), "--port", str(port)]
            if args.workers > 1:
                cmd += ["--workers", str(args.workers)]
            gw = start(cmd, port, PROXY_CPU if args.workers == 1 else set(range(NCPU)))
            procs.append(gw)
            targets.append((f"gateway: {row}", f"http://127.0.0.1:{port}/v1/chat/completions", gw.pid, gw))
        exe = litellm_bin(ROOT) if args.peers != "none" else None
        if exe:
            port = free_port()
            peer, version = start_litellm(exe, tmp / "litellm", upstream, KEY, port, pinned(PROXY_CPU))
            procs.append(peer)
            targets.append((f"peer: LiteLLM {version}", f"http://127.0.0.1:{port}/v1/chat/completions", peer.pid, peer))
        elif args.peers == "litellm":
            raise SystemExit(f"--peers litellm: no executable at $LITELLM_BIN or .peers/litellm/bin/litellm; "
                             f"install with: {LITELLM_INSTALL}")
        else:
            notes.append("peer row LiteLLM skipped: " + ("--peers none" if args.peers == "none" else
                         f"not installed (no $LITELLM_BIN or .peers/litellm/bin/litellm; {LITELLM_INSTALL})"))
        for name, url, pid, _ in targets:
            runs = [measure(name, url, pid, args) for _ in range(args.runs)]
            results.append(median_of(runs))
            print(f"measured {name}", file=sys.stderr)
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:  # a gateway still draining idle keep-alive connections: the
                p.kill()                       # measurements are done, so the table is printed regardless
                p.wait(10)
    out = table(results)
    ref_rps = next(r["rps"] for r in results if r["target"] == "reference proxy")
    print(out)
    for r in results:
        if r["target"].startswith(("gateway", "peer")):
            print(f"\n{r['target']}: {r['rps'] / ref_rps:.0%} of the reference proxy's req/s")
    for note in notes:
        print(f"\n{note}")
    save({"results": results, "notes": notes}, "bench")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
