"""The recording pipeline end to end: spool, file sink, Redis stream, outages, replay, close."""

import asyncio
import os
import shutil
import subprocess
import time

import orjson
import pytest
import redis

from gateway.context import Principal, RequestContext, Target, Timings, Usage
from gateway.records.audit_cli import iter_file, iter_stream, verify
from gateway.records.recorder import Recorder
from gateway.records.spool import Spool

STREAM = "test:audit"


def _free_port() -> int:
    from tests.support.processes import free_port
    return free_port()


class RedisProc:
    def __init__(self, directory: str) -> None:
        self.dir = directory
        self.port = _free_port()
        self.proc = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [shutil.which("redis-server") or "/usr/bin/redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
             "--dir", self.dir, "--appendonly", "yes", "--appendfsync", "always", "--save", ""],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(200):
            try:
                redis.Redis(port=self.port).ping()
                return
            except redis.ConnectionError:
                time.sleep(0.02)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


@pytest.fixture
def redis_proc(tmp_path):
    d = tmp_path / "redis"
    d.mkdir()
    r = RedisProc(str(d))
    r.start()
    yield r
    if r.proc.poll() is None:
        r.stop()


def make_ctx(i: int) -> RequestContext:
    return RequestContext(
        request_id=f"req-{i}", api="chat", shape="openai", runtime=None, received_at=time.time(),
        trace_id="t" * 32, span_id="s" * 16, principal=Principal("key-a", team="team-x"), alias="fast",
        target=Target("fast", "openai", "gpt-4o-mini"), attempts=1, status=200, usage=Usage(10, 5),
        timings=Timings(start=1.0, first_token=1.05, end=1.2, upstream_wait=0.19))


def audit_section(tmp_path, *, redis_on=True, file_on=True, **extra) -> dict:
    sinks = []
    if redis_on:
        sinks.append({"type": "redis", "stream": STREAM})
    if file_on:
        sinks.append({"type": "file", "path": str(tmp_path / "audit.jsonl")})
    return {"spool_dir": str(tmp_path / "spool"), "flush_interval_ms": 2, "retry_backoff_s": 0.05,
            "sinks": sinks, **extra}


async def stream_ids(r: RedisProc) -> list[tuple[str, int]]:
    return await asyncio.to_thread(_stream_ids, r)


def _stream_ids(r: RedisProc) -> list[tuple[str, int]]:
    client = redis.Redis(port=r.port)
    return [(orjson.loads(line)["writer"], orjson.loads(line)["seq"]) for _, line in iter_stream(client, STREAM)]


async def wait_shipped(rec: Recorder, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        st = rec.stats()["audit"]
        if st["queue_depth"] == 0 and not any(st["backlog_bytes"].values()):
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"not shipped: {rec.stats()['audit']}")


async def test_close_drains_everything_to_file_and_redis(tmp_path, redis_proc):
    rec = Recorder.compile(audit_section(tmp_path), file="t.toml")
    await rec.start(redis_proc.url)
    for i in range(1000):
        rec.submit(make_ctx(i), 0.001)
    await rec.close()
    ids = await stream_ids(redis_proc)
    assert ids == [(rec.writer, i) for i in range(1000)]
    file_lines = await asyncio.to_thread(lambda: list(iter_file(str(tmp_path / "audit.jsonl"))))
    assert len(file_lines) == 1000
    assert verify(iter(file_lines), None) == (1000, None)
    assert not [p for p in os.listdir(tmp_path / "spool") if p.endswith(".spool")]  # all shipped, collected


async def test_redis_outage_loses_nothing_and_duplicates_nothing(tmp_path, redis_proc):
    rec = Recorder.compile(audit_section(tmp_path, file_on=False), file="t.toml")
    await rec.start(redis_proc.url)
    for i in range(100):
        rec.submit(make_ctx(i), 0.0)
    await wait_shipped(rec)
    await asyncio.to_thread(redis_proc.stop)
    for i in range(100, 400):
        rec.submit(make_ctx(i), 0.0)
        if i % 50 == 0:
            await asyncio.sleep(0.03)  # let the shipper try and fail
    await asyncio.sleep(0.2)
    assert rec.stats()["audit"]["backlog_bytes"]["redis"] > 0
    await asyncio.to_thread(redis_proc.start)
    await wait_shipped(rec)
    await rec.close()
    ids = await stream_ids(redis_proc)
    assert ids == [(rec.writer, i) for i in range(400)]
    client = redis.Redis(port=redis_proc.port)
    assert await asyncio.to_thread(lambda: verify(iter_stream(client, STREAM), None)) == (400, None)


async def test_replay_after_crash_between_xadd_and_cursor_does_not_duplicate(tmp_path, redis_proc):
    section = audit_section(tmp_path, file_on=False)
    a = Recorder.compile(section, file="t.toml")
    await a.start(redis_proc.url)
    for i in range(200):
        a.submit(make_ctx(i), 0.0)
    await wait_shipped(a)
    # "Crash": stop the tasks, forget the cursors, release the segment locks without cleaning up.
    for t in a._tasks:
        t.cancel()
    await asyncio.gather(*a._tasks, return_exceptions=True)
    for seg in a._spool.segments:
        os.unlink(seg.path + ".cursor")
    a._spool.close()
    b = Recorder.compile(section, file="t.toml")
    await b.start(redis_proc.url)  # adopts a's segment and replays it from offset 0
    b.submit(make_ctx(999), 0.0)
    await wait_shipped(b)
    await b.close()
    ids = await stream_ids(redis_proc)
    assert ids == [(a.writer, i) for i in range(200)] + [(b.writer, 0)]
    assert not [p for p in os.listdir(tmp_path / "spool") if p.endswith(".spool")]


def spool_lines(tmp_path) -> list[bytes]:
    return [line for p in sorted((tmp_path / "spool").glob("*.spool")) for line in p.read_bytes().splitlines()]


async def test_submit_writes_the_record_to_the_spool_before_it_returns(tmp_path):
    # fsync a second away: the write itself must not wait for the flush cycle.
    rec = Recorder.compile(audit_section(tmp_path, redis_on=False, flush_interval_ms=1000), file="t.toml")
    await rec.start(None)
    await asyncio.sleep(0.05)  # the flusher's first pass is done; the next is a second away
    for i in range(500):  # no await in between: nothing but submit itself can write
        rec.submit(make_ctx(i), 0.0)
        assert len(await asyncio.to_thread(spool_lines, tmp_path)) == i + 1 if i % 100 == 0 else True
    lines = await asyncio.to_thread(spool_lines, tmp_path)
    assert [orjson.loads(x)["seq"] for x in lines] == list(range(500))
    assert rec.stats()["audit"]["queue_depth"] == 0
    await rec.close()
    lines = await asyncio.to_thread(lambda: list(iter_file(str(tmp_path / "audit.jsonl"))))
    assert verify(iter(lines), None) == (500, None)


async def test_a_failing_spool_write_keeps_the_records_in_order_and_bounded(tmp_path):
    """Disk full (writes to /dev/full fail with ENOSPC): records wait in memory, in chain order, up
    to queue_size, and reach the spool once it takes writes again; beyond queue_size they are
    counted as dropped."""
    rec = Recorder.compile(audit_section(tmp_path, redis_on=False, queue_size=30), file="t.toml")
    await rec.start(None)
    rec.submit(make_ctx(0), 0.0)
    await asyncio.sleep(0.05)  # written and synced
    fd = rec._spool.active.fd
    saved = os.dup(fd)
    full = os.open("/dev/full", os.O_WRONLY)
    os.dup2(full, fd)
    for i in range(1, 30):
        rec.submit(make_ctx(i), 0.0)
    await asyncio.sleep(0.05)  # the flusher retries and fails too
    assert rec.stats()["audit"]["queue_depth"] == 29
    os.dup2(saved, fd)
    os.close(saved)
    os.close(full)
    rec.submit(make_ctx(30), 0.0)  # the spool works again, but this one waits behind the others
    for i in range(31, 36):
        rec.submit(make_ctx(i), 0.0)  # queue_size records wait: dropped
    assert b"gateway_audit_dropped_total 5.0" in rec.metrics_text()
    await wait_shipped(rec)
    rec.submit(make_ctx(36), 0.0)
    await rec.close()
    lines = await asyncio.to_thread(lambda: list(iter_file(str(tmp_path / "audit.jsonl"))))
    assert [orjson.loads(x)["request_id"] for _, x in lines] == [f"req-{i}" for i in [*range(0, 31), 36]]
    assert [orjson.loads(x)["seq"] for _, x in lines] == [*range(0, 31), 36]  # the chain shows the loss


async def test_a_torn_last_line_in_an_adopted_segment_is_cut_and_the_rest_shipped(tmp_path):
    """SIGKILL can interrupt a spool write between pages: the dead process's segment then ends in
    part of a line, whose request was never answered. The adopter ships the whole lines and does
    not stall on the fragment."""
    from gateway.records.chain import Chain
    from gateway.records.schema import build_record

    chain = Chain("dead:1:abcd")
    sealed = [chain.seal(build_record(make_ctx(i), cost_usd=0.0, user_hash_key=b"k")) for i in range(4)]
    (tmp_path / "spool").mkdir()
    (tmp_path / "spool" / "dead_1_abcd.000001.spool").write_bytes(b"".join(sealed[:3]) + sealed[3][:57])
    rec = Recorder.compile(audit_section(tmp_path, redis_on=False), file="t.toml")
    await rec.start(None)
    await wait_shipped(rec, timeout=5)
    await rec.close()
    lines = await asyncio.to_thread(lambda: list(iter_file(str(tmp_path / "audit.jsonl"))))
    assert [orjson.loads(x)["seq"] for _, x in lines] == [0, 1, 2]
    assert not [p for p in os.listdir(tmp_path / "spool") if p.endswith(".spool")]


async def test_a_torn_last_line_in_the_file_sink_is_cut_before_appending(tmp_path):
    """A process killed while writing a batch to the file sink leaves part of a line; the next
    process must not glue its first record to it (the records are shipped again from the spool)."""
    rec = Recorder.compile(audit_section(tmp_path, redis_on=False), file="t.toml")
    await rec.start(None)
    for i in range(3):
        rec.submit(make_ctx(i), 0.0)
    await rec.close()
    path = tmp_path / "audit.jsonl"
    whole = path.read_bytes()
    path.write_bytes(whole + whole.splitlines(keepends=True)[0][:40])
    rec = Recorder.compile(audit_section(tmp_path, redis_on=False), file="t.toml")
    await rec.start(None)
    for i in range(3, 5):
        rec.submit(make_ctx(i), 0.0)
    await rec.close()
    lines = await asyncio.to_thread(lambda: list(iter_file(str(path))))
    assert [orjson.loads(x)["request_id"] for _, x in lines] == [f"req-{i}" for i in range(5)]


async def test_redis_down_at_close_leaves_records_spooled_for_next_start(tmp_path, redis_proc):
    section = audit_section(tmp_path, file_on=False, close_timeout_s=1)
    a = Recorder.compile(section, file="t.toml")
    await a.start(redis_proc.url)
    await asyncio.to_thread(redis_proc.stop)
    for i in range(50):
        a.submit(make_ctx(i), 0.0)
    await a.close()
    assert [p for p in os.listdir(tmp_path / "spool") if p.endswith(".spool")]
    await asyncio.to_thread(redis_proc.start)
    b = Recorder.compile(section, file="t.toml")
    await b.start(redis_proc.url)
    await wait_shipped(b)
    await b.close()
    assert await stream_ids(redis_proc) == [(a.writer, i) for i in range(50)]


def test_spool_cursor_file_roundtrip(tmp_path):
    s = Spool(str(tmp_path), "w:1", ("redis",), 4096)
    s.open()
    s.append(b'{"a":1}\n{"a":2}\n')
    assert s.sync()
    seg = s.active
    lines, off = Spool.read(seg, "redis", 1 << 20)
    assert lines == [b'{"a":1}', b'{"a":2}'] and off == 16
    Spool.save_cursor(seg, {"redis": off})
    s.close()
    t = Spool(str(tmp_path), "w:2", ("redis",), 4096)
    t.open()
    adopted = [x for x in t.segments if not x.active]
    assert len(adopted) == 1 and adopted[0].cursors == {"redis": 16}
    t.close()


def test_bad_audit_config_names_the_key():
    from gateway.config.validate import ConfigError
    with pytest.raises(ConfigError, match="audit.sinks.0.redis.colour: unknown key"):
        Recorder.compile({"sinks": [{"type": "redis", "colour": "red"}]}, file="main.toml")
    with pytest.raises(ConfigError, match="at most one"):
        Recorder.compile({"sinks": [{"type": "stdout"}, {"type": "stdout"}]}, file="main.toml")
    with pytest.raises(ConfigError, match="audit.payload_sample_rate"):
        Recorder.compile({"log_payloads": True, "payload_sample_rate": 2}, file="main.toml")
