"""The Redis stream sink's request-log index is repaired after an index update failed behind the XADD:
the entries are in the stream but not in the sorted sets. The next round of the same writer (the shipper's
retry of the batch, or a replay by the next process after a crash) indexes them from the last stream id
it had indexed. A real redis-server; the failure is a key of the wrong type where an index set belongs."""

from __future__ import annotations

import orjson
import pytest
import redis.exceptions

from gateway.records.log_query import LogQuery, decode_cursor
from gateway.records.log_redis import RedisLogIndex, index_key
from gateway.records.sinks import RedisStreamSink
from tests.support.log_writer import line

STREAM = "repair:audit"


async def sink(url: str) -> RedisStreamSink:
    s = RedisStreamSink(url, STREAM, maxlen=0, batch=50)
    await s.open()
    return s


def entries(writer: str, first: int, count: int):
    return [(writer, s, line(writer, s)) for s in range(first, first + count)]


async def all_seqs(s: RedisStreamSink) -> list[tuple[str, int]]:
    ix = RedisLogIndex(s.client, STREAM)
    got = []
    cursor = None
    while True:
        page = await ix.page(LogQuery(limit=500, cursor=cursor))
        for r in page.rows:
            rec = orjson.loads(await ix.record(r["entry"]))
            got.append((rec["writer"], rec["seq"]))
        if page.next is None:
            return sorted(got)
        cursor = decode_cursor(page.next)


async def break_index(s: RedisStreamSink) -> None:
    await s.client.set(index_key(STREAM, "rid"), "not a sorted set")


async def mend_index(s: RedisStreamSink) -> None:
    await s.client.delete(index_key(STREAM, "rid"))


async def test_the_retried_round_indexes_what_the_failed_update_missed(redis_url):
    s = await sink(redis_url)
    assert await s.ship(entries("w1", 0, 10)) == 10
    await s.ship(entries("w2", 0, 5))  # another writer between: its entries are not w1's to repair
    await break_index(s)
    with pytest.raises(redis.exceptions.ResponseError):
        await s.ship(entries("w1", 10, 10))  # XADDed, then the index update failed
    await mend_index(s)
    # the shipper retries the batch: the stream already holds it (nothing added), the index is repaired
    assert await s.ship(entries("w1", 10, 10)) == 0
    want = sorted([("w1", i) for i in range(20)] + [("w2", i) for i in range(5)])
    assert await all_seqs(s) == want
    assert await s.client.xlen(STREAM) == 25
    # every dimension is repaired, not only the one that failed
    assert len((await RedisLogIndex(s.client, STREAM).page(LogQuery(status="4xx", limit=500))).rows) == 5
    rids = (await RedisLogIndex(s.client, STREAM).page(LogQuery(request_id="r15", limit=500))).rows
    assert [r["request_id"] for r in rids] == ["r15"]
    await s.close()


async def test_a_replay_after_a_crash_repairs_the_index(redis_url):
    first = await sink(redis_url)
    await first.ship(entries("w1", 0, 4))
    await break_index(first)
    with pytest.raises(redis.exceptions.ResponseError):
        await first.ship(entries("w1", 4, 6))
    await mend_index(first)
    await first.close()  # the process dies; the spool still holds seqs 4.. (its cursor had not moved)
    second = await sink(redis_url)
    await second.ship(entries("w1", 4, 8))  # the replay, and two records written after it
    assert await all_seqs(second) == [("w1", i) for i in range(12)]
    rids = (await RedisLogIndex(second.client, STREAM).page(LogQuery(request_id="r5", limit=500))).rows
    assert [r["request_id"] for r in rids] == ["r5"]
    assert second.repaired == 6
    await second.close()


async def test_no_failure_no_repair_scan(redis_url):
    s = await sink(redis_url)
    for k in range(5):
        await s.ship(entries("w1", k * 10, 10))
    assert s.repaired == 0
    assert await all_seqs(s) == [("w1", i) for i in range(50)]
    await s.close()
