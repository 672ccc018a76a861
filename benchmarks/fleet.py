"""A fleet behind a real load balancer: N gateway instances (2, then 4) behind nginx, sharing one Redis,
everything on (limits + budgets in Redis, the guardrails, audit records to stdout, file and a Redis stream).

    nice -n 19 .venv/bin/python benchmarks/fleet.py [--instances 2,4] [--store redis|cluster|redis,cluster] [--quick]

--store cluster shares a local 3-master Redis Cluster instead of one redis-server (started as tests/cluster
does: three cluster-enabled redis-server processes and `redis-cli --cluster create`; the gateways get
`[store] url = "redis://127.0.0.1:<first node>/0?cluster=1"` and learn the other nodes from it).

Installs nginx and wrk with apt-get when missing. Measures, through nginx: latency at concurrency 1 and 8
(plain and streamed) and the gateway's overhead, i.e. the percentile through nginx -> gateways minus the
same percentile through nginx -> the canned upstream directly (so nginx's own hop is not counted);
throughput with wrk at c=64 (on a 2-core machine everything, the load generator included, shares the
two cores: the figure is bound by the machine, not by the fleet). Then, under load spread by nginx over
every instance, that a rate limit and a budget stay exact: a key limited to RPM requests a minute gets
exactly RPM answers of 200 out of a burst sent within one emission interval, and a team whose USD budget
fits exactly BUDGET_REQUESTS requests (prices chosen so a reservation equals the charge in binary floating
point) gets exactly that many. Prints a Markdown table; JSON goes to benchmarks/results/.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests.cluster's helper, when --store cluster
from bench import (BODY, GUARDRAILS, KEY, LIMITS, NCPU, PY, SINKS, STREAM_BODY, free_port, latency, save,
                   wait_port, wrk)

ROOT = Path(__file__).resolve().parent.parent
RATE_KEY, BUDGET_KEY = "sk-fleet-rate-0123456789", "sk-fleet-budget-0123456789"
RPM = 20  # GCRA: burst = the limit, then one more every 60/RPM = 3 s
BUDGET_REQUESTS = 100
# Output 48.828125 USD/M (50000 * 2**-10), input free, max_tokens 20 and the canned answer's 20 completion
# tokens: a reservation and a charge are both 20 * 48.828125 / 1e6 = 2**-10 USD exactly.
PRICE_OUT = 48.828125
COST = 20 * PRICE_OUT / 1e6
CHECK_BODY = json.dumps({"model": "bench", "messages": [{"role": "user", "content": "Say hello"}], "max_tokens": 20}).encode()


def sha(s: str) -> str:
    return hashlib.sha256(s.encode()).hexdigest()


def ensure(binary: str, package: str) -> None:
    if shutil.which(binary) or Path(f"/usr/sbin/{binary}").exists():
        return
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    subprocess.run(sudo + ["apt-get", "update", "-qq"], check=True)
    subprocess.run(sudo + ["apt-get", "install", "-y", "-qq", "--no-install-recommends", package], check=True,
                   env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})


def nginx_bin() -> str:
    return shutil.which("nginx") or "/usr/sbin/nginx"


def gateway_config(tmp: Path, upstream: str, redis_url: str) -> Path:
    pol = tmp / "policies"
    pol.mkdir(parents=True, exist_ok=True)
    (pol / "keys.toml").write_text(
        f'[[keys]]\nid = "bench"\nkey_sha256 = "{sha(KEY)}"\nteam = "bench"\n\n'
        f'[[keys]]\nid = "rate-check"\nkey_sha256 = "{sha(RATE_KEY)}"\nteam = "rate"\n\n'
        f'[[keys]]\nid = "budget-check"\nkey_sha256 = "{sha(BUDGET_KEY)}"\nteam = "budget"\n')
    (pol / "limits.toml").write_text(LIMITS + f"""
[[rate_limits]]
scope = "key"
keys = ["rate-check"]
rpm = {RPM}

[[budgets]]
scope = "team"
teams = ["budget"]
usd = {BUDGET_REQUESTS * COST!r}
window = "month"
""")
    (pol / "guardrails.toml").write_text(GUARDRAILS)
    path = tmp / "gateway.toml"
    path.write_text(f"""
policies = ["policies/*.toml"]
[server]
max_in_flight = 100000
[providers.up]
type = "openai"
base_url = "{upstream}/v1"
[models.bench]
targets = [{{ provider = "up", model = "bench-model" }}]
[pricing.bench-model]
input = 0.0
output = {PRICE_OUT}
[store]
url = "{redis_url}"
{SINKS}""")
    return path


def nginx_conf(tmp: Path, port: int, backends: list[int]) -> Path:
    tmp.mkdir(parents=True, exist_ok=True)
    servers = "\n".join(f"    server 127.0.0.1:{p};" for p in backends)
    temps = "\n".join(f"  {k}_temp_path {tmp}/{k};" for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    conf = tmp / "nginx.conf"
    conf.write_text(f"""
{"user root;" if os.geteuid() == 0 else ""}
worker_processes 1;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
{temps}
  upstream fleet {{
{servers}
    keepalive 256;
  }}
  server {{
    listen 127.0.0.1:{port} backlog=4096;
    location / {{
      proxy_pass http://fleet;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
      proxy_read_timeout 600s;
    }}
  }}
}}
""")
    return conf


def start(cmd: list[str], port: int, cwd: Path = ROOT) -> subprocess.Popen:
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=cwd,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    wait_port(port)
    return p


def start_nginx(tmp: Path, backends: list[int]) -> tuple[subprocess.Popen, str]:
    port = free_port()
    conf = nginx_conf(tmp, port, backends)
    return start([nginx_bin(), "-e", str(tmp / "error.log"), "-p", str(tmp), "-c", str(conf)], port), \
        f"http://127.0.0.1:{port}"


async def burst(url: str, key: str, n: int, concurrency: int) -> tuple[dict[int, int], float]:
    """n requests at `concurrency`; status -> count, and the seconds the burst took."""
    counts: dict[int, int] = {}
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    sem = asyncio.Semaphore(concurrency)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as s:
        async def one() -> None:
            async with sem, s.post(url + "/v1/chat/completions", data=CHECK_BODY, headers=headers) as r:
                await r.read()
                counts[r.status] = counts.get(r.status, 0) + 1
        t0 = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(n)))
    return counts, time.perf_counter() - t0


def lat(url: str, n: int) -> dict:
    return {"c1": asyncio.run(latency(url, n, 1, False)), "c8": asyncio.run(latency(url, n, 8, False)),
            "c1_stream": asyncio.run(latency(url, n // 2, 1, True))}


def served_per_instance(ports: list[int]) -> list[int]:
    out = []
    for p in ports:
        with urllib.request.urlopen(f"http://127.0.0.1:{p}/stats", timeout=5) as r:
            out.append(int(json.loads(r.read())["audit"]["next_seq"]))  # one record per request
    return out


class Store:
    """The shared store of a fleet: one redis-server, or a 3-master Redis Cluster (tests/cluster's helper)."""

    def __init__(self, kind: str, tmp: Path) -> None:
        self.kind = kind
        if kind == "cluster":
            from tests.cluster.conftest import RedisCluster

            self.cluster = RedisCluster(masters=3)
            try:
                self.cluster.start()
            except BaseException:
                self.cluster.close()  # the nodes it did start
                raise
            self.ports, self.url, self.label = self.cluster.ports, self.cluster.url, "3-master Redis Cluster"
        else:
            port = free_port()
            self.proc = start(["redis-server", "--port", str(port), "--save", "", "--appendonly", "no",
                               "--dir", str(tmp)], port)
            self.ports, self.url, self.label = [port], f"redis://127.0.0.1:{port}/0", "one Redis"

    def flush(self) -> None:
        for p in self.ports:  # on a cluster FLUSHALL is per node
            subprocess.run(["redis-cli", "-p", str(p), "flushall"], check=True, capture_output=True)

    def keys(self) -> list[int]:
        """Keys on each node (on a cluster: how the limits, budgets and audit stream spread over the masters)."""
        return [int(subprocess.run(["redis-cli", "-p", str(p), "dbsize"], capture_output=True, text=True,
                                   check=True).stdout.split()[-1]) for p in self.ports]

    def close(self) -> None:
        if self.kind == "cluster":
            self.cluster.close()
        else:
            self.proc.terminate()
            self.proc.wait(10)


def run_fleet(n: int, tmp: Path, upstream: str, store: Store, base: dict, args) -> dict:
    store.flush()
    ports = [free_port() for _ in range(n)]
    gws = []
    for i, p in enumerate(ports):  # each instance its own directory: spool and audit file (same config)
        cfg = gateway_config(tmp / f"fleet{n}-{store.kind}" / f"gw{i}", upstream, store.url)
        gws.append(start([PY, "-m", "gateway", "serve", "--config", str(cfg), "--port", str(p)], p, cwd=cfg.parent))
    lb, url = start_nginx(tmp / f"nginx{n}-{store.kind}", ports)
    try:
        res: dict = {"instances": n, "store": store.kind, "store_label": store.label, "store_nodes": len(store.ports),
                     **lat(url + "/v1/chat/completions", args.n)}
        res["rps"], _ = wrk(url + "/v1/chat/completions", args.seconds, BODY)
        res["served_per_instance"] = served_per_instance(ports)
        rate, took = asyncio.run(burst(url, RATE_KEY, 300, 32))
        res["rate_check"] = {"limit": RPM, "sent": 300, "admitted": rate.get(200, 0), "refused_429": rate.get(429, 0),
                             "seconds": took, "within_one_interval": took < 60 / RPM}
        budget, took = asyncio.run(burst(url, BUDGET_KEY, 3 * BUDGET_REQUESTS, 32))
        res["budget_check"] = {"fits": BUDGET_REQUESTS, "sent": 3 * BUDGET_REQUESTS, "admitted": budget.get(200, 0),
                               "refused": sum(v for k, v in budget.items() if k != 200), "seconds": took}
        res["store_keys"] = store.keys()  # on a cluster: spread over every master
        res["overhead"] = {k: {p: res[k][p] - base[k][p] for p in ("p50", "p99")} for k in ("c1", "c8", "c1_stream")}
        return res
    finally:
        for p in [lb, *gws]:
            p.terminate()
        for p in [lb, *gws]:
            p.wait(30)


def table(direct: dict, lb_direct: dict, fleets: list[dict]) -> str:
    ms = lambda x: f"{x * 1000:.2f}"  # noqa: E731
    rows = ["| through nginx to | req/s (c=64, 2-core bound) | p50 / p99 ms (c=1) | p50 / p99 ms (c=8) | stream p50 ms (c=1) "
            "| gateway overhead p50 / p99 ms (c=1) | (c=8) | rate limit: admitted / limit | budget: admitted / fits |",
            "|" + "---|" * 9]
    for name, r in (("upstream directly (no gateway)", lb_direct),):
        rows.append(f"| {name} | {r['rps']:,.0f} | {ms(r['c1']['p50'])} / {ms(r['c1']['p99'])} | {ms(r['c8']['p50'])} / "
                    f"{ms(r['c8']['p99'])} | {ms(r['c1_stream']['p50'])} | - | - | - | - |")
    for f in fleets:
        o, rc, bc = f["overhead"], f["rate_check"], f["budget_check"]
        rows.append(f"| {f['instances']} gateways, {f['store_label']} | {f['rps']:,.0f} | {ms(f['c1']['p50'])} / {ms(f['c1']['p99'])} | "
                    f"{ms(f['c8']['p50'])} / {ms(f['c8']['p99'])} | {ms(f['c1_stream']['p50'])} | "
                    f"{ms(o['c1']['p50'])} / {ms(o['c1']['p99'])} | {ms(o['c8']['p50'])} / {ms(o['c8']['p99'])} | "
                    f"{rc['admitted']} / {rc['limit']} | {bc['admitted']} / {bc['fits']} |")
    rows.append(f"\nDirect to the canned upstream, no nginx: p50 {ms(direct['c1']['p50'])} ms (c=1).")
    return "\n".join(rows)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--instances", default="2,4")
    ap.add_argument("--store", default="redis", help="redis, cluster (3 masters) or both: redis,cluster")
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    args.n, args.seconds = (200, 3) if args.quick else (1000, 8)
    ensure("nginx", "nginx")
    ensure("wrk", "wrk")
    ensure("redis-server", "redis-server")
    tmp = Path(tempfile.mkdtemp(prefix="gw-fleet-"))
    kinds = args.store.split(",")
    if not set(kinds) <= {"redis", "cluster"}:
        ap.error("--store takes redis, cluster or redis,cluster")
    up_port = free_port()
    procs = [start([PY, "benchmarks/canned_upstream.py", str(up_port)], up_port)]
    stores: list[Store] = []
    upstream = f"http://127.0.0.1:{up_port}"
    try:
        direct = lat(upstream + "/v1/chat/completions", args.n)
        lb, url = start_nginx(tmp / "nginx-direct", [up_port])
        try:
            lb_direct = {**lat(url + "/v1/chat/completions", args.n)}
            lb_direct["rps"], _ = wrk(url + "/v1/chat/completions", args.seconds, BODY)
        finally:
            lb.terminate()
            lb.wait(10)
        fleets = []
        for kind in kinds:
            stores.append(Store(kind, tmp))
            fleets += [run_fleet(int(n), tmp, upstream, stores[-1], lb_direct, args) for n in args.instances.split(",")]
    finally:
        for st in stores:
            st.close()
        for p in procs:
            p.terminate()
            p.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)
    print(table(direct, lb_direct, fleets))
    for f in fleets:
        print(f"{f['instances']} instances, {f['store_label']}: keys per node {f['store_keys']}; served per instance "
              f"{f['served_per_instance']}; rate burst {f['rate_check']}; budget burst {f['budget_check']}")
    nginx_v = subprocess.run([nginx_bin(), "-v"], capture_output=True, text=True).stderr.strip()
    save({"direct": direct, "lb_direct": lb_direct, "fleets": fleets, "nginx": nginx_v, "cpus": NCPU}, "fleet")
    exact = all(f["rate_check"]["admitted"] == RPM and f["budget_check"]["admitted"] == BUDGET_REQUESTS for f in fleets)
    print("limits and budgets exact through the balancer:", exact)
    return 0 if exact else 1


if __name__ == "__main__":
    sys.exit(main())
