"""One truthful /metrics and /stats per instance under `gateway serve --workers 2` (real processes, a
real redis-server as the shared store): every scrape, whichever worker answers it, counts every
request sent; counters stay where they were when a worker is killed and replaced; and the metrics
operators ask for (per target, retries, fallbacks, breakers, refusals by alias, error codes, reloads,
alert deliveries, budgets, build and process) are there after the traffic that makes them."""

from __future__ import annotations

import os
import signal
import time
from collections import defaultdict

import httpx
import orjson
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest_redis import RedisServer
from tests.faults.procs import LoggedGateway
from tests.faults.wire import AUTH, MSGS
from tests.support.gateway import base_config, write_config
from tests.support.processes import free_port

SCRAPES = 8


def one(gw: LoggedGateway, method: str, path: str, **kw) -> httpx.Response:
    # A new connection each time, so SO_REUSEPORT spreads requests and scrapes over the workers.
    with httpx.Client(timeout=10) as c:
        return c.request(method, gw.url + path, headers={**AUTH, "Connection": "close"}, **kw)


def chat(gw: LoggedGateway, model: str = "demo") -> httpx.Response:
    return one(gw, "POST", "/v1/chat/completions", json={"model": model, "messages": MSGS})


def scrape(gw: LoggedGateway) -> dict[str, dict[tuple, float]]:
    out: dict[str, dict[tuple, float]] = defaultdict(dict)
    for fam in text_string_to_metric_families(one(gw, "GET", "/metrics").text):
        for s in fam.samples:
            out[s.name][tuple(sorted(s.labels.items()))] = s.value
    return out


def total(series: dict[tuple, float], **match: str) -> float:
    return sum(v for labels, v in series.items() if all((k, val) in labels for k, val in match.items()))


def stats(gw: LoggedGateway) -> dict:
    return orjson.loads(one(gw, "GET", "/stats").content)


def wait_published(gw: LoggedGateway, shared: str, since: float) -> None:
    """Each live worker has rewritten its /stats windows file after `since` (every second, so
    another worker's /stats read is at most that old): the documented freshness, waited for."""
    deadline = time.time() + 30
    rounds = 0  # twice: a snapshot taken before `since` may be written just after it
    while time.time() < deadline:
        paths = [os.path.join(shared, f"stats-{pid}.json") for pid in gw.children()]
        try:
            fresh = bool(paths) and all(os.stat(p).st_mtime > since for p in paths)
        except FileNotFoundError:
            fresh = False
        if fresh:
            rounds += 1
            if rounds == 2:
                return
            since = time.time()
        time.sleep(0.1)
    raise AssertionError("a worker did not publish its /stats windows within 30 s")


def wait_children(gw: LoggedGateway, n: int, without: int | None = None) -> list[int]:
    deadline = time.time() + 90
    while time.time() < deadline:
        kids = gw.children()
        if len(kids) == n and without not in kids:
            return kids
        time.sleep(0.1)
    raise AssertionError(gw.output()[-3000:])


def test_scrapes_under_two_workers_count_every_request_and_survive_a_worker_kill(tmp_path):
    server = RedisServer().start()
    dead = free_port()
    try:
        main = base_config(f"http://127.0.0.1:{dead}", extra=f"""
[pricing."*"]
input = 1.0
output = 2.0

[store]
url = "{server.url}"

[models.flaky]
targets = [{{ provider = "up", model = "gpt-4o-mini" }}]
fallbacks = ["demo"]
max_attempts = 2
retry_base_s = 0
breaker_failures = 1
""")
        cfg = write_config(tmp_path, main, policies={"limits.toml": f"""
[[rate_limits]]
id = "other-tiny"
scope = "key"
keys = ["other"]
rpm = 1

[[budgets]]
id = "monthly"
scope = "global"
usd = 100
window = "month"

[[alerts]]
id = "any-traffic"
metric = "windows.1m.requests"
op = ">="
threshold = 1
every = "0.2s"
webhooks = [{{ url = "http://127.0.0.1:{dead}/hook", max_attempts = 1 }}]
"""})
        gw = LoggedGateway(cfg, tmp_path / "gateway.log", workers=2, wait=False)
        try:
            gw.wait_ready(timeout=90)  # two workers importing everything on shared CI cores
            workers = wait_children(gw, 2)
            env = dict(e.split(b"=", 1) for e in open(f"/proc/{workers[0]}/environ", "rb").read().split(b"\0") if b"=" in e)
            shared = env[b"PROMETHEUS_MULTIPROC_DIR"].decode()
            assert os.path.isdir(shared)
            sent = 30
            assert [chat(gw).status_code for _ in range(sent)] == [200] * sent
            runs = [scrape(gw) for _ in range(SCRAPES)]
            counts = [total(r["gateway_requests_total"], route="chat") for r in runs]
            assert counts == [sent] * SCRAPES, counts  # before: 25, 35, 25, ... (one worker per scrape)
            assert all(r["gateway_workers"][()] == 2 for r in runs)
            assert [total(r["gateway_request_duration_seconds_count"], route="chat") for r in runs] == [sent] * SCRAPES

            # /stats: the other worker's windows are at most a second old; once both have written
            # theirs after the last request, every read agrees.
            wait_published(gw, shared, time.time())
            reads = [stats(gw) for _ in range(SCRAPES)]
            assert [s["windows"]["1m"]["requests"] for s in reads] == [sent] * SCRAPES
            assert all(s["workers"] == 2 and s["windows"]["1m"]["latency_ms"]["p50"] is not None for s in reads)

            # A worker killed outright: its counts stay (monotonic), its successor adds to them.
            time.sleep(1.2)  # its /stats file has every request it served
            os.kill(workers[0], signal.SIGKILL)
            wait_children(gw, 2, without=workers[0])
            after = [total(scrape(gw)["gateway_requests_total"], route="chat") for _ in range(SCRAPES)]
            assert after == [sent] * SCRAPES, after
            more = 10
            assert [chat(gw).status_code for _ in range(more)] == [200] * more
            deadline = time.time() + 90  # the successor is up once it has built its app (seconds on busy cores)
            while scrape(gw)["gateway_workers"][()] != 2 and time.time() < deadline:
                time.sleep(0.5)
            final = [scrape(gw) for _ in range(SCRAPES)]
            assert [total(r["gateway_requests_total"], route="chat") for r in final] == [sent + more] * SCRAPES
            assert [r["gateway_workers"][()] for r in final] == [2] * SCRAPES, "the dead worker's gauges are gone"
            wait_published(gw, shared, time.time())
            assert [stats(gw)["windows"]["1m"]["requests"] for _ in range(4)] == [sent + more] * 4

            # The metrics people ask for, after the traffic that makes each.
            assert chat(gw, "flaky").status_code == 200  # both attempts fail, the fallback answers
            other = {"Authorization": "Bearer sk-other-0123456789"}
            with httpx.Client(timeout=10) as c:
                codes = [c.post(gw.url + "/v1/chat/completions", headers={**other, "Connection": "close"},
                                json={"model": "demo", "messages": MSGS}).status_code for _ in range(3)]
            assert 429 in codes
            gw.signal(signal.SIGHUP)  # forwarded to both workers: two reloads
            time.sleep(2.5)  # sampled each second; the alert rule has fired and its delivery failed
            m = scrape(gw)
            assert total(m["gateway_fallbacks_total"], alias="flaky", fallback="demo") == 1
            assert total(m["gateway_retries_total"], alias="flaky") == 1  # two attempts, one retry
            assert total(m["gateway_request_duration_seconds_count"], alias="flaky", provider="mock",
                         model="mock-1") == 1
            assert total(m["gateway_time_to_first_token_seconds_count"], alias="demo") >= 0
            assert total(m["gateway_circuit_breaker_transitions_total"], target="up/gpt-4o-mini", state="open") == 1
            assert total(m["gateway_circuit_breaker_state"], target="up/gpt-4o-mini", state="open") == 1
            assert total(m["gateway_circuit_breaker_state"], target="up/gpt-4o-mini", state="closed") == 1
            refused = codes.count(429)
            assert total(m["gateway_requests_total"], alias="demo", status="429") == refused  # not alias="-"
            assert total(m["gateway_request_errors_total"], alias="demo", code="rate_limit.requests") == refused
            assert total(m["gateway_config_reloads_total"], result="success") == 2
            assert total(m["gateway_alert_notifications_total"], result="failed") >= 1
            assert total(m["gateway_budget_limit"], rule="monthly", subject="*", unit="usd") == 100
            assert 0 < total(m["gateway_budget_remaining"], rule="monthly", subject="*", unit="usd") <= 100
            assert len(m["gateway_build_info"]) == 1
            assert m["gateway_process_cpu_seconds_total"][()] > 0
            assert m["gateway_process_resident_memory_bytes"][()] > 20e6  # two Python workers
            assert m["gateway_process_open_fds"][()] > 10
        finally:
            assert gw.stop() == 0
        assert not os.path.exists(shared), "the supervisor removes the instance directory"
    finally:
        server.close()


class _Hook:
    """A webhook receiver on loopback (a thread), recording each JSON notification."""

    def __init__(self) -> None:
        import http.server
        import threading

        got = self.got = []

        class H(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (the stdlib's name)
                got.append(orjson.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def test_two_instances_sharing_redis_alert_once_on_the_fleets_numbers(tmp_path):
    """Neither instance alone reaches the threshold; the fleet does: one notification, with the fleet's
    value, from one instance (before: each instance evaluated its own /stats, and never fired here)."""
    server = RedisServer().start()
    hook = _Hook()
    try:
        main = base_config("http://127.0.0.1:9", extra=f'[store]\nurl = "{server.url}"\n')
        cfg = write_config(tmp_path, main, policies={"alerts.toml": f"""
[[alerts]]
id = "fleet-traffic"
metric = "windows.5m.requests"
op = ">="
threshold = 10
every = "0.2s"
webhooks = [{{ url = "{hook.url}" }}]
"""})
        gws = [LoggedGateway(cfg, tmp_path / f"gw{i}.log", wait=False) for i in range(2)]
        try:
            for gw in gws:
                gw.wait_ready(timeout=90)
            for gw in gws:
                assert [chat(gw).status_code for _ in range(6)] == [200] * 6
            assert all(stats(gw)["windows"]["5m"]["requests"] == 6 for gw in gws)  # below 10 each
            deadline = time.time() + 15
            while not hook.got and time.time() < deadline:
                time.sleep(0.1)
            time.sleep(1.5)  # a second notification, if any, would come within a few ticks
            # Fired once, on a value neither instance has alone (it fires as the fleet crosses 10).
            assert [(n["alert"], n["status"]) for n in hook.got] == [("fleet-traffic", "firing")], hook.got
            assert 10 <= hook.got[0]["value"] <= 12
        finally:
            for gw in gws:
                gw.stop()
    finally:
        hook.server.shutdown()
        server.close()
