"""The request log's indexes at size: lookup by request id and a filtered page, among N records.

    PYTHONPATH=. python benchmarks/request_log.py [--records 1000000] [--quick] [--redis redis://127.0.0.1:6379/0]

Writes N sealed request records through the real sinks (FileSink with its SQLite index; with --redis,
RedisStreamSink with its sorted-set index, on a stream of its own that is deleted afterwards), then
times, median of many calls: a request-id lookup (two records share each looked-up id), the newest page
filtered by key and status class (limit 50), the same filter 20 pages deep, and a filtered page that
matches rarely. The reference row is what the log had before an index: a scan of the whole file for
one id (`gateway audit query --request-id`), timed once. `--quick`: 100,000 records.
"""

from __future__ import annotations

import argparse
import dataclasses
import asyncio
import os
import statistics
import tempfile
import time

import orjson

from gateway.records.chain import Chain
from gateway.records.log_query import LogQuery
from gateway.records.sinks import FileSink, RedisStreamSink


def records(n: int, now: float):
    chain = Chain("bench-host:1:bench")
    for i in range(n):
        status = (200, 200, 200, 429, 502)[i % 5]
        rid = f"dup-{i // 1000}" if i % 1000 < 2 else f"r-{i}"  # every 1000th id is shared by two records
        rec = {"v": 1, "type": "request", "request_id": rid, "time": now - n * 0.01 + i * 0.01,
               "key_id": f"key-{i % 200}", "team": f"team-{i % 20}", "alias": ("gpt", "claude", "embed")[i % 3],
               "provider": "up", "model": "m", "status": status, "error_code": None, "route": "chat",
               "stream": False, "input_tokens": 100, "output_tokens": 20, "cost_usd": 0.001,
               "latency_ms": 300.0, "ttft_ms": 120.0, "guardrail_action": "redact" if i % 97 == 0 else "allow",
               "entities": {}, "block_reason": "rate_limit.requests" if status == 429 else None, "decisions": []}
        yield chain.seq, chain.seal(rec).rstrip(b"\n")


def timed(fn, n: int) -> float:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return statistics.median(out) * 1000


async def atimed(fn, n: int) -> float:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        await fn()
        out.append(time.perf_counter() - t)
    return statistics.median(out) * 1000


def deep(page_fn, q: LogQuery, pages: int):
    cur = None
    for _ in range(pages):
        p = page_fn(dataclasses.replace(q, cursor=cur) if cur else q)
        if p.next is None:
            break
        from gateway.records.log_query import decode_cursor
        cur = decode_cursor(p.next)
    return cur


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--redis", default=None)
    args = ap.parse_args()
    n = 100_000 if args.quick else args.records
    now = time.time()
    batch = 5000
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "records.jsonl")
        sink = FileSink(path, max_bytes=1 << 40, max_files=2, chain_key=None)
        await sink.open()
        t = time.perf_counter()
        buf = []
        for seq, line in records(n, now):
            buf.append(("bench-host:1:bench", seq, line))
            if len(buf) == batch:
                await sink.ship(buf)
                buf = []
        if buf:
            await sink.ship(buf)
        write_s = time.perf_counter() - t
        size = os.path.getsize(path)
        ix = sink.index
        print(f"file sink: {n:,} records, {size / 1e6:.0f} MB log, {os.path.getsize(ix.path) / 1e6:.0f} MB index; "
              f"written and indexed in {write_s:.1f} s ({write_s / n * 1e6:.1f} us per record, in the sink's thread)")

        def scan():
            with open(path, "rb") as fh:
                return [line for line in fh if b'"dup-50"' in line and orjson.loads(line)["request_id"] == "dup-50"]
        ref = timed(scan, 1)
        rows = []
        q_id = LogQuery(request_id="dup-50")
        assert len(ix.page(q_id).rows) == 2
        rows.append(("lookup by request id (2 matches)", timed(lambda: ix.page(q_id), 200)))
        q_f = LogQuery(key="key-9", status="5xx", limit=50)
        assert len(ix.page(q_f).rows) == 50
        rows.append(("page: key + status class, newest 50", timed(lambda: ix.page(q_f), 100)))
        cur = deep(ix.page, q_f, 20)
        q_deep = LogQuery(key="key-9", status="5xx", limit=50, cursor=cur)
        rows.append(("same filter, 20 pages deep (cursor)", timed(lambda: ix.page(q_deep), 100)))
        q_rare = LogQuery(action="redact", reason="rate_limit", limit=50)
        rows.append(("page: rare match (redact + rate_limit)", timed(lambda: ix.page(q_rare), 20)))
        rows.append(("unfiltered newest 50", timed(lambda: ix.page(LogQuery()), 100)))
        line = ix.record(ix.page(q_id).rows[0]["entry"])
        assert line is not None and b"dup-50" in line
        entry = ix.page(q_id).rows[0]["entry"]
        rows.append(("detail: one whole record", timed(lambda: ix.record(entry), 200)))
        print(f"  reference: scan of the whole file for one id: {ref:.1f} ms")
        for name, ms in rows:
            print(f"  {name:42s} {ms:8.3f} ms   ({ref / ms:,.0f}x faster than the scan)")
        await sink.close()

    if args.redis:
        stream = f"bench:log:{os.getpid()}"
        rs = RedisStreamSink(args.redis, stream, maxlen=0, batch=500)
        await rs.open()
        try:
            m = min(n, 200_000)
            t = time.perf_counter()
            buf = []
            for seq, line in records(m, now):
                buf.append(("bench-host:1:bench", seq, line))
                if len(buf) == batch:
                    await rs.ship(buf)
                    buf = []
            if buf:
                await rs.ship(buf)
            write_s = time.perf_counter() - t
            print(f"redis stream sink: {m:,} records shipped and indexed in {write_s:.1f} s "
                  f"({write_s / m * 1e6:.1f} us per record, shipper task)")
            from gateway.records.log_redis import RedisLogIndex
            rix = RedisLogIndex(rs.client, stream)
            assert len((await rix.page(q_id)).rows) == 2
            for name, q, k in (("lookup by request id (2 matches)", q_id, 200),
                               ("page: key + status class, newest 50", q_f, 50),
                               ("unfiltered newest 50", LogQuery(), 50)):
                ms = await atimed(lambda q=q: rix.page(q), k)
                print(f"  {name:42s} {ms:8.3f} ms")
        finally:
            keys = [k async for k in rs.client.scan_iter(match="*bench:log:*")]
            if keys:
                await rs.client.delete(*keys)
            await rs.close()


if __name__ == "__main__":
    asyncio.run(main())
