"""The Redis stream sink's request-log index: sorted sets beside the stream, kept by the writer.

Every member has score 0 and sorts by its bytes (Redis' lexicographic ranges), so one sorted set holds
many values, each a contiguous range ordered by time:

    {stream}:ix:all       <time_us:016d>|<stream id>              every request record
    {stream}:ix:rid       <request id> NUL <time_us>|<stream id>  and likewise per dimension:
    {stream}:ix:key, :team, :alias, :action
    {stream}:ix:status    both the class and the code: "4xx" NUL ... and "429" NUL ...
    {stream}:ix:reason    both the code and its family: "auth.unknown_key" NUL ... and "auth" NUL ...

A filtered page walks the range of the most selective filter newest first (ZREVRANGEBYLEX, O(log N) to
find the start) and reads those entries from the stream (XRANGE id id, pipelined); filters the range
does not narrow down are checked on the record. The keys share the stream's cluster slot (hash tag).
`RedisStreamSink.ship` adds the members right after its XADD script, in the shipper's background task,
never on the request path. Entries trimmed from the stream (MAXLEN, `gateway audit trim`) leave members
behind: a read that meets one removes it.
"""

from __future__ import annotations

import orjson

from gateway.records.log_query import LogPage, LogQuery, encode_cursor, matches, reason_family, row_of

SCAN_BUDGET = 5000  # index entries one page may read; past it the page is returned short, with a cursor
CHUNK = 200
DIMENSIONS = ("rid", "key", "alias", "team", "reason", "action", "status")  # most selective first


def index_key(stream: str, dim: str) -> str:
    base = stream if "{" in stream else "{" + stream + "}"
    return f"{base}:ix:{dim}"


def time_member(t: float, stream_id: str) -> str:
    return f"{int(t * 1_000_000):016d}|{stream_id}"


def index_members(rec: dict, stream_id: str) -> list[tuple[str, str]] | None:
    """(dimension, member) pairs for one record; None for a line that is not a request record."""
    if rec.get("type") != "request":
        return None
    tm = time_member(float(rec.get("time") or 0.0), stream_id)
    out = [("all", tm)]
    status = int(rec.get("status") or 0)
    reason = rec.get("block_reason")
    values = (("rid", rec.get("request_id")), ("key", rec.get("key_id")), ("team", rec.get("team")),
              ("alias", rec.get("alias")), ("action", rec.get("guardrail_action")),
              ("status", f"{status // 100}xx" if status else None), ("status", str(status)),
              ("reason", reason), ("reason", reason_family(reason)))
    for dim, v in values:
        if isinstance(v, str) and v and "\x00" not in v:
            out.append((dim, f"{v}\x00{tm}"))
    return out


async def add_to_index(client, stream: str, added: list[tuple[str, bytes]]) -> None:
    """Index entries the XADD script just added: (stream id, line)."""
    by_dim: dict[str, list[str]] = {}
    for stream_id, line in added:
        try:
            rec = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        members = index_members(rec, stream_id) if isinstance(rec, dict) else None
        for dim, m in members or ():
            by_dim.setdefault(dim, []).append(m)
    if not by_dim:
        return
    pipe = client.pipeline(transaction=False)
    for dim, members in by_dim.items():
        pipe.zadd(index_key(stream, dim), dict.fromkeys(members, 0))
    await pipe.execute()


def _dimension(q: LogQuery) -> tuple[str, str | None]:
    for dim, v in (("rid", q.request_id), ("key", q.key), ("alias", q.alias), ("team", q.team),
                   ("reason", q.reason), ("action", q.action), ("status", q.status)):
        if v is not None:
            return dim, v
    return "all", None


class RedisLogIndex:
    def __init__(self, client, stream: str) -> None:
        self.client = client
        self.stream = stream

    async def page(self, q: LogQuery) -> LogPage:
        dim, value = _dimension(q)
        key = index_key(self.stream, dim)
        prefix = "" if value is None else value + "\x00"
        lo = "[" + prefix + (f"{int(q.since * 1_000_000):016d}" if q.since is not None else "")
        if prefix == "" and q.since is None:
            lo = "-"
        if q.cursor is not None:
            hi = "(" + prefix + f"{q.cursor[0]:016d}|{q.cursor[1]}"
        elif q.until is not None:
            hi = "(" + prefix + f"{int(q.until * 1_000_000):016d}"
        else:
            hi = "+" if prefix == "" else "(" + value + "\x01"
        page = LogPage()
        last: str | None = None
        last_tm = ""
        chunk = q.limit + 1  # enough when the range needs no further filtering; wider chunks after
        while len(page.rows) <= q.limit and page.scanned < SCAN_BUDGET:
            members = await self.client.zrevrangebylex(key, hi, lo, start=0, num=chunk)
            if not members:
                last = None
                break
            page.scanned += len(members)
            pipe = self.client.pipeline(transaction=False)
            tms = [m.decode()[len(prefix):] for m in members]
            for tm in tms:
                sid = tm.split("|", 1)[1]
                pipe.xrange(self.stream, sid, sid, count=1)
            got = await pipe.execute()
            gone = []
            for m, tm, entries in zip(members, tms, got):
                if not entries:
                    gone.append(m)
                    continue
                rec = orjson.loads(entries[0][1][b"r"])
                if isinstance(rec, dict) and matches(rec, q):
                    if len(page.rows) == q.limit:
                        page.next = encode_cursor(*_cursor_of(last_tm))
                        return page
                    page.rows.append(row_of(tm.split("|", 1)[1], rec))
                last_tm = tm
            if gone:
                await self.client.zrem(key, *gone)
            last = tms[-1]
            hi = "(" + prefix + last
            if len(members) < chunk:
                last = None
                break
            chunk = CHUNK
        if last is not None:  # the scan budget ran out: more may follow
            page.next = encode_cursor(*_cursor_of(last))
        return page

    async def record(self, entry: str) -> bytes | None:
        if not _is_stream_id(entry):
            return None
        got = await self.client.xrange(self.stream, entry, entry, count=1)
        return got[0][1][b"r"] if got else None


def _cursor_of(tm: str) -> tuple[int, str]:
    t, sid = tm.split("|", 1)
    return int(t), sid


def _is_stream_id(entry: str) -> bool:
    ms, _, n = entry.partition("-")
    return ms.isdigit() and n.isdigit() and len(entry) < 48
