"""`gateway audit query` through the request log's index (the SQLite file beside the file sink, or the
sorted sets beside the Redis stream) instead of a scan of every record, when the sink has one.

The index holds request records only, so it serves a query that can match request records only (one with
--request-id, --status, --reason, --alias or --action) and no --model (matched against model or alias,
which the index does not hold); anything else, a sink without an index, or --no-index, scans.
Records come out oldest first, as a scan prints them.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from dataclasses import dataclass

from gateway.records.config import AuditConfig, sink_of
from gateway.records.log_index import SqliteLogIndex, index_path
from gateway.records.log_query import LogQuery, decode_cursor
from gateway.records.sinks import split_cluster_url

PAGE = 500


@dataclass(frozen=True, slots=True)
class IndexedQuery:
    source: str  # "file" or "redis"
    query: LogQuery


def plan(cfg: AuditConfig, store_url: str | None, args) -> IndexedQuery | None:
    """The indexed query for these arguments, or None when it must scan."""
    if getattr(args, "no_index", False) or args.model or getattr(args, "follow", False):
        return None
    if not (args.request_id or args.status is not None or args.reason or args.alias or args.action):
        return None
    q = LogQuery(since=args.since, request_id=args.request_id, key=args.key, team=args.team, alias=args.alias,
                 status=args.status, reason=args.reason, action=args.action, limit=PAGE)
    rs, fs = sink_of(cfg, "redis"), sink_of(cfg, "file")
    if rs is not None and args.source != "file":
        return IndexedQuery("redis", q)
    if fs is not None and args.source != "redis" and os.path.exists(index_path(fs.path)):
        return IndexedQuery("file", q)
    return None


def file_lines(cfg: AuditConfig, q: LogQuery) -> Iterator[bytes]:
    fs = sink_of(cfg, "file")
    assert fs is not None
    ix = SqliteLogIndex(fs.path, fs.max_files)
    entries: list[str] = []
    page = ix.page(q)
    while True:
        entries += [r["entry"] for r in page.rows]
        if page.next is None:
            break
        page = ix.page(_next(q, page.next))
    for entry in reversed(entries):
        line = ix.record(entry)
        if line is not None:  # rotated away since the page was read
            yield line


def redis_lines(cfg: AuditConfig, store_url: str | None, q: LogQuery) -> list[bytes] | None:
    """The matching records from the stream's index; None when the stream has no index (a scan then)."""
    rs = sink_of(cfg, "redis")
    assert rs is not None
    url, cluster = split_cluster_url(rs.url or store_url or "")
    return asyncio.run(_redis_lines(url, cluster, rs.stream, q))


async def _redis_lines(url: str, cluster: bool, stream: str, q: LogQuery) -> list[bytes] | None:
    import redis.asyncio as aioredis

    from gateway.records.log_redis import RedisLogIndex, index_key

    client = (aioredis.RedisCluster if cluster else aioredis.Redis).from_url(url)
    try:
        if not await client.exists(index_key(stream, "all")):
            return None
        ix = RedisLogIndex(client, stream)
        entries: list[str] = []
        page = await ix.page(q)
        while True:
            entries += [r["entry"] for r in page.rows]
            if page.next is None:
                break
            page = await ix.page(_next(q, page.next))
        out = []
        for entry in reversed(entries):
            line = await ix.record(entry)
            if line is not None:
                out.append(line)
        return out
    finally:
        await client.aclose()


def _next(q: LogQuery, cursor: str) -> LogQuery:
    from dataclasses import replace

    return replace(q, cursor=decode_cursor(cursor))
