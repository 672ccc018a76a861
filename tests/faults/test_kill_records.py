"""kill -9 under load loses no answered request's record.

"Answered" means the client read the response to its last byte. The record of such a request must
reach the spool (a returned write(2)) before that byte leaves, so a process kill at any moment, with
fsync far off on its timer (`flush_interval_ms = 1000` here), loses none of them; the restarted
process replays the dead one's spool into the file sink and the Redis stream exactly once, and the
HMAC chains verify. The same holds for a worker killed under `--workers 2`.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import time

import aiohttp
import orjson
import pytest
import redis

from tests.conftest_redis import RedisServer
from tests.faults.procs import LoggedGateway
from tests.faults.wire import AUTH, MSGS, audit_verify, by_request_id
from tests.support.gateway import base_config, write_config

CLIENTS = 12
KILLS = 3
STREAM = "audit-kill"
# A new moment to kill at each run; a failure names the seed so that the schedule can be replayed.
SEED = int(os.environ.get("KILL_TEST_SEED") or random.SystemRandom().randrange(1 << 30))


def _config(tmp_path, redis_url: str):
    # The mock provider answers in-process and streams in 3 chunks, so each request is short and a
    # kill lands while many responses are in every phase (headers, chunks, last byte).
    main = base_config("http://127.0.0.1:9", extra=f"""
[providers.chunked]
type = "mock"
chunks = 3
chunk_delay_ms = 2

[models.chunked]
targets = [{{ provider = "chunked", model = "mock-1" }}]

[store]
url = "{redis_url}"

[audit]
flush_interval_ms = 1000
hmac_key_env = "KILL_TEST_AUDIT_KEY"
[[audit.sinks]]
type = "file"
path = "audit/records.jsonl"
[[audit.sinks]]
type = "redis"
stream = "{STREAM}"
""")
    return write_config(tmp_path, main)


async def _drive(url: str, answered: set[str], kill, seed: int) -> None:
    """CLIENTS loops of requests (half streamed) until `kill` has run and the gateway stops
    answering; each fully read response's request id goes into `answered`."""
    rnd = random.Random(seed)
    stop = asyncio.Event()

    async def client(i: int) -> None:
        timeout = aiohttp.ClientTimeout(total=10)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            n = 0
            while not stop.is_set():
                n += 1
                body = {"model": "chunked", "messages": [{"role": "user", "content": f"hello {i} {n}"}],
                        "stream": (i + n) % 2 == 0}
                try:
                    async with session.post(url + "/v1/chat/completions", json=body, headers=AUTH) as r:
                        await r.read()  # returns once the last byte (chunked terminator included) is in
                        answered.add(r.headers["x-request-id"])
                except (aiohttp.ClientError, asyncio.TimeoutError):
                    await asyncio.sleep(0.01)

    tasks = [asyncio.create_task(client(i)) for i in range(CLIENTS)]
    await asyncio.sleep(rnd.uniform(0.3, 1.2))
    kill()
    await asyncio.sleep(0.3)  # in-flight clients see the reset; no answer can arrive after the kill
    stop.set()
    await asyncio.wait_for(asyncio.gather(*tasks), 15)


def _live_workers(gw: LoggedGateway, dead: list[int]) -> list[int]:
    deadline = time.time() + 20
    while time.time() < deadline:
        workers = [w for w in gw.children() if w not in dead]
        if len(workers) == 2:
            return workers
        time.sleep(0.05)
    raise AssertionError("the supervisor did not keep 2 workers: " + gw.output()[-2000:])


def _file_records(path) -> list[dict]:
    lines = path.read_bytes().splitlines() if path.exists() else []
    return [r for r in map(orjson.loads, filter(None, lines)) if r.get("type") == "request"]


def _stream_records(url: str) -> list[dict]:
    client = redis.Redis.from_url(url)
    recs = [orjson.loads(v[b"r"]) for _, v in client.xrange(STREAM)]
    return [r for r in recs if r.get("type") == "request"]


def _check(cfg, redis_url: str, answered: set[str]) -> None:
    assert len(answered) > 100, "the load ran"
    sources = {"file sink": _file_records(cfg.parent / "audit" / "records.jsonl"),
               "redis stream": _stream_records(redis_url)}
    for name, recs in sources.items():
        counts = by_request_id(recs)
        missing = sorted(answered - counts.keys())
        assert not missing, \
            f"{len(missing)} of {len(answered)} answered requests have no record in the {name} (KILL_TEST_SEED={SEED})"
        dup = {k: v for k, v in counts.items() if v > 1}
        assert not dup, f"records duplicated in the {name}: {list(dup.items())[:5]}"
    done = audit_verify(cfg)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture
def audit_key(monkeypatch):
    monkeypatch.setenv("KILL_TEST_AUDIT_KEY", "kill-test-chain-key-0123456789")


def test_kill_9_of_the_gateway_loses_no_answered_record(tmp_path, audit_key):
    server = RedisServer().start()
    try:
        cfg = _config(tmp_path, server.url)
        answered: set[str] = set()
        for k in range(KILLS):
            gw = LoggedGateway(cfg, tmp_path / f"gateway-{k}.log")
            asyncio.run(_drive(gw.url, answered, lambda: gw.proc.send_signal(signal.SIGKILL), seed=SEED + k))
            assert gw.proc.wait(10) == -signal.SIGKILL
            gw.stop()
        # The last start adopts the dead processes' spools; a clean stop ships what is left.
        gw = LoggedGateway(cfg, tmp_path / "gateway-last.log")
        assert gw.stop() == 0, gw.output()[-2000:]
        _check(cfg, server.url, answered)
    finally:
        server.close()


def test_kill_9_of_a_worker_loses_no_answered_record(tmp_path, audit_key):
    server = RedisServer().start()
    try:
        cfg = _config(tmp_path, server.url)
        answered: set[str] = set()
        gw = LoggedGateway(cfg, tmp_path / "gateway.log", workers=2)
        victims: list[int] = []
        try:
            for k in range(KILLS):
                workers = _live_workers(gw, victims)
                gw.wait_ready()
                victims.append(random.Random(SEED + k).choice(workers))
                asyncio.run(_drive(gw.url, answered, lambda: os.kill(victims[-1], signal.SIGKILL), seed=SEED + k))
            _live_workers(gw, victims)  # the supervisor replaced the last one too
        finally:
            assert gw.stop() == 0, gw.output()[-2000:]
        # A replacement adopts a killed worker's spool when it starts; one stopped before it got that
        # far leaves the spool to the next start, as after any kill.
        gw = LoggedGateway(cfg, tmp_path / "gateway-last.log")
        assert gw.stop() == 0, gw.output()[-2000:]
        _check(cfg, server.url, answered)
    finally:
        server.close()
