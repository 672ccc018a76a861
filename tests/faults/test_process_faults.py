"""Process faults on real `gateway serve` processes: SIGTERM under load (graceful drain) and a worker
killed under `--workers 2` (the other keeps serving, the supervisor starts a new one)."""

from __future__ import annotations

import os
import signal
import threading
import time

import httpx
import pytest
import redis

from tests.conftest_redis import RedisServer
from tests.faults.procs import LoggedGateway
from tests.faults.wire import AUTH, MSGS, by_request_id, openai_stream, records
from tests.support.fake_upstream import Reply, transcript
from tests.support.gateway import base_config, write_config

STREAMS = 6


def test_sigterm_drains_in_flight_streams_refuses_new_connections_and_records_everything(tmp_path, upstream):
    main = base_config(upstream.url, server="drain_timeout_s = 8\nidle_timeout_s = 3") + """
[audit]
flush_interval_ms = 2
[[audit.sinks]]
type = "file"
path = "audit/records.jsonl"
"""
    cfg = write_config(tmp_path, main)
    gw = LoggedGateway(cfg, tmp_path / "gateway.log")
    try:
        # Warm-up requests finished before the signal are recorded too.
        done_before = [httpx.post(gw.url + "/v1/chat/completions", headers=AUTH, timeout=10,
                                  json={"model": "demo", "messages": MSGS}) for _ in range(3)]
        upstream.push(*[Reply(sse=transcript("openai_stream_text.sse"), event_delay=0.25)] * STREAMS)
        started = threading.Barrier(STREAMS + 1, timeout=15)
        results: list = [None] * STREAMS

        def stream(i: int) -> None:
            body = {"model": "gpt", "messages": MSGS, "stream": True}
            with httpx.stream("POST", gw.url + "/v1/chat/completions", json=body, headers=AUTH, timeout=15) as r:
                it = r.iter_raw()
                first = next(it)
                started.wait()
                results[i] = (r.status_code, r.headers["x-request-id"], first + b"".join(it))

        threads = [threading.Thread(target=stream, args=(i,)) for i in range(STREAMS)]
        for t in threads:
            t.start()
        started.wait()
        t_signal = time.monotonic()
        gw.proc.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        with pytest.raises(httpx.ConnectError):
            httpx.get(gw.url + "/health", timeout=2)
        for t in threads:
            t.join(15)
        assert gw.proc.wait(15) == 0
        assert time.monotonic() - t_signal < 8 + 2, "drained within drain_timeout_s"
        for status, _, raw in results:
            assert status == 200
            _, end = openai_stream(raw)
            assert end == "done", "an in-flight stream was cut by the drain"
        ids = [r.headers["x-request-id"] for r in done_before] + [rid for _, rid, _ in results]
        recs = records(cfg.parent / "audit" / "records.jsonl", len(ids))
        assert by_request_id(recs) == {i: 1 for i in ids}, "every finished request recorded exactly once"
    finally:
        gw.stop()


def test_a_killed_worker_is_replaced_and_the_other_keeps_serving(tmp_path):
    server = RedisServer().start()
    try:
        main = base_config("http://127.0.0.1:9", extra=f"""
[store]
url = "{server.url}"

[audit]
flush_interval_ms = 2
[[audit.sinks]]
type = "redis"
stream = "audit-test"
""")
        cfg = write_config(tmp_path, main)
        gw = LoggedGateway(cfg, tmp_path / "gateway.log", workers=2)
        try:
            deadline = time.time() + 20
            while len(gw.children()) < 2 and time.time() < deadline:
                time.sleep(0.1)
            workers = gw.children()
            assert len(workers) == 2, gw.output()

            def one() -> httpx.Response:
                # A new connection per request, so SO_REUSEPORT spreads them over the live workers.
                with httpx.Client(timeout=10) as c:
                    return c.post(gw.url + "/v1/chat/completions", json={"model": "demo", "messages": MSGS},
                                  headers={**AUTH, "Connection": "close"})

            ids = [one().headers["x-request-id"] for _ in range(10)]
            time.sleep(0.2)  # records of those requests reach the spool (flush every 2 ms)
            os.kill(workers[0], signal.SIGKILL)
            time.sleep(0.2)
            after = [one() for _ in range(30)]
            assert [r.status_code for r in after] == [200] * 30, "the surviving worker serves everything"
            ids += [r.headers["x-request-id"] for r in after]
            deadline = time.time() + 20
            while time.time() < deadline:
                now = gw.children()
                if len(now) == 2 and workers[0] not in now:
                    break
                time.sleep(0.1)
            assert len(gw.children()) == 2 and workers[0] not in gw.children(), gw.output()[-2000:]
            r = redis.Redis.from_url(server.url)
            deadline = time.time() + 15
            while time.time() < deadline:
                recs = [__import__("orjson").loads(v[b"r"]) for _, v in r.xrange("audit-test")]
                counts = by_request_id([x for x in recs if x.get("type") == "request"])
                if all(i in counts for i in ids):
                    break
                time.sleep(0.2)
            assert {i: counts.get(i, 0) for i in ids} == {i: 1 for i in ids}, \
                "records of the killed worker's spool are shipped by its successor, once"
        finally:
            assert gw.stop() == 0
    finally:
        server.close()
