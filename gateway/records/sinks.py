"""Where audit records go after the spool: stdout (JSON lines), a Redis stream, a JSON-lines file.

Durable sinks (Redis, file) are fed from the spool with a cursor and must be idempotent: a replay
after a crash re-offers records, and each sink drops any (writer, seq) it already holds. Entries are
(writer, seq, line) with the line's trailing newline removed.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from typing import BinaryIO
from urllib.parse import parse_qs, urlsplit, urlunsplit

import orjson

from gateway.records.chain import Chain, checkpoint_covers, checkpoint_record, new_writer_id
from gateway.records.log_index import SqliteLogIndex
from gateway.records.log_redis import add_to_index, index_key
from gateway.records.spool import cut_torn_tail

log = logging.getLogger(__name__)

Entry = tuple[str, int, bytes]

# Redis-side idempotency: per stream, a hash of writer -> highest seq added. The check, the XADDs and
# the update run atomically in one script, so a crash between XADD and the local cursor write cannot
# duplicate, and a replay only adds what the stream lacks. Stream IDs stay Redis-assigned (`*`), as
# several writers share one stream and explicit IDs would have to be globally increasing. It answers
# (argument index, stream id) of each entry it added, for the request-log index (gateway.records.log_redis),
# after two ids from the per-writer hashes KEYS[3] (the last id XADDed) and KEYS[4] (the last id indexed)
# as they were before this call ('' when unset): when they differ, an index update failed behind an XADD.
_XADD_ONCE = """
local hw = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '-1')
local maxlen = tonumber(ARGV[2])
local added = {redis.call('HGET', KEYS[3], ARGV[1]) or '', redis.call('HGET', KEYS[4], ARGV[1]) or ''}
local last = nil
for i = 3, #ARGV, 2 do
  local seq = tonumber(ARGV[i])
  if seq > hw then
    local id
    if maxlen > 0 then
      id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', maxlen, '*', 'r', ARGV[i + 1])
    else
      id = redis.call('XADD', KEYS[1], '*', 'r', ARGV[i + 1])
    end
    hw = seq
    added[#added + 1] = i
    added[#added + 1] = id
    last = id
  end
end
redis.call('HSET', KEYS[2], ARGV[1], hw)
if last then
  redis.call('HSET', KEYS[3], ARGV[1], last)
end
return added
"""


def _driver_info():
    """redis-py >= 8 looks its own version up (file I/O) for every new connection unless given it."""
    try:
        from redis.driver_info import DriverInfo
        from redis.utils import get_lib_version
    except ImportError:
        return None
    return DriverInfo(name="redis-py", lib_version=get_lib_version())


def hwm_key(stream: str) -> str:
    """The stream's high-water-mark hash, in the stream's own Redis Cluster slot: the script touches
    both keys, and keys of two slots fail with CROSSSLOT. A stream name without a hash tag is hashed
    whole, so `{name}:hwm` lands in its slot; a name with a tag shares it."""
    return stream + ":hwm" if "{" in stream else "{" + stream + "}:hwm"


def split_cluster_url(url: str) -> tuple[str, bool]:
    """(url without the gateway's `cluster` query option, whether it names a Redis Cluster); the
    same `?cluster=1` the store accepts (redis-py would take the option for a connection argument)."""
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    cluster = query.pop("cluster", ["0"])[0].lower() in ("1", "true", "yes", "on")
    rest = "&".join(f"{k}={v}" for k, vs in query.items() for v in vs)
    return urlunsplit(parts._replace(query=rest)), cluster


class StdoutSink:
    """JSON lines on stdout; not durable (fed from memory after the spool write)."""

    name = "stdout"

    def __init__(self, out: BinaryIO | None = None) -> None:
        self._out = out

    def write(self, data: bytes) -> None:  # runs in a thread
        out = self._out or sys.stdout.buffer
        out.write(data)
        out.flush()


class RedisStreamSink:
    name = "redis"
    durable = True

    def __init__(self, url: str, stream: str, *, maxlen: int, batch: int, timeout_s: float = 2.0,
                 index: bool = True) -> None:
        self.url = url
        self.index = index  # keep the request-log index (gateway.records.log_redis) beside the stream
        self.stream = stream
        self.maxlen = maxlen
        self.batch = batch
        self._timeout = timeout_s
        self._client = None
        self._script = None
        self.repaired = 0  # entries indexed late, after an index update had failed behind their XADD

    async def open(self) -> None:
        import redis.asyncio as aioredis  # deferred: importing the package does no I/O or heavy imports

        opts: dict = {"socket_timeout": self._timeout, "socket_connect_timeout": self._timeout}
        info = await asyncio.to_thread(_driver_info)
        if info is not None:
            opts["driver_info"] = info
        url, cluster = split_cluster_url(self.url)
        self._client = (aioredis.RedisCluster if cluster else aioredis.Redis).from_url(url, **opts)
        self._script = self._client.register_script(_XADD_ONCE)

    async def ship(self, entries: list[Entry]) -> int:
        added = 0
        upto = index_key(self.stream, "upto")
        keys = [self.stream, hwm_key(self.stream), index_key(self.stream, "last"), upto]
        i = 0
        while i < len(entries):
            writer = entries[i][0]
            args: list = [writer, self.maxlen]
            j = i
            while j < len(entries) and entries[j][0] == writer and j - i < self.batch:
                args.append(entries[j][1])
                args.append(entries[j][2])
                j += 1
            got = await self._script(keys=keys, args=args)
            last, indexed, got = got[0], got[1], got[2:]
            if self.index:
                if last and last != indexed:  # an earlier round's index update failed after its XADD
                    await self._repair(writer, indexed.decode(), last.decode())
                new = [(got[k + 1].decode(), args[int(got[k])]) for k in range(0, len(got), 2)]
                await add_to_index(self._client, self.stream, new)
                mark = new[-1][0] if new else last
                if mark:
                    await self._client.hset(upto, writer, mark)
            added += len(got) // 2
            i = j
        return added

    async def _repair(self, writer: str, after: str, through: str) -> None:
        """Index this writer's entries in (after, through]: the stream has them, the index may not (its
        members are idempotent, so those it has are only written again)."""
        lo = "(" + after if after else "-"
        n = 0
        while True:
            got = await self._client.xrange(self.stream, lo, through, count=1000)
            mine = []
            for sid, fields in got:
                line = fields[b"r"]
                try:
                    if orjson.loads(line).get("writer") == writer:
                        mine.append((sid.decode(), line))
                except (orjson.JSONDecodeError, AttributeError):
                    continue
            await add_to_index(self._client, self.stream, mine)
            self.repaired += len(mine)
            n += len(mine)
            if len(got) < 1000:
                break
            lo = "(" + got[-1][0].decode()
        log.warning("audit stream %s: %d entries of %s indexed late (an index update had failed)", self.stream, n, writer)

    @property
    def client(self):
        """The sink's Redis client once open (the request log reads the stream and its index with it)."""
        return self._client

    async def put_anchors(self, key: str, fields: dict[str, bytes]) -> None:
        """Publish chain anchors (gateway.records.anchors) beside the stream."""
        await self._client.hset(key, mapping=fields)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


class FileSink:
    """JSON lines in `path`, rotated by size to path.1 .. path.N. Removing the oldest file first writes
    a checkpoint record (its own chain) naming the last removed record of every chain in it."""

    name = "file"
    durable = True

    def __init__(self, path: str, *, max_bytes: int, max_files: int, chain_key: bytes | None,
                 index: bool = True) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.max_files = max_files
        # The request log's index (gateway.records.log_index), kept by this sink's writer thread.
        self.index = SqliteLogIndex(path, max_files) if index else None
        self._ckpt = Chain(new_writer_id("checkpoint"), chain_key)
        self._fh = None
        self._size = 0
        self._hwm: dict[str, int] = {}

    async def open(self) -> None:
        await asyncio.to_thread(self._open)

    def _open(self) -> None:
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        self._fh = open(self.path, "a+b")  # read too: the torn-tail check reads the end
        # A process killed in the middle of writing a batch leaves part of a line; its records are
        # still in the spool (the cursor had not moved) and are shipped again.
        self._size = cut_torn_tail(self.path, self._fh.fileno())
        # Learn what the file already holds, so a replay after a crash does not duplicate.
        for p in reversed(rotated_paths(self.path, self.max_files)):
            self._learn(p)
        if self.index is not None:
            self._indexed(self.index.open)

    def _learn(self, path: str) -> None:
        with open(path, "rb") as fh:
            for line in fh:
                try:
                    rec = orjson.loads(line)
                    w, s = rec["writer"], rec["seq"]
                except (orjson.JSONDecodeError, KeyError, TypeError):
                    continue
                if s > self._hwm.get(w, -1):
                    self._hwm[w] = s

    async def ship(self, entries: list[Entry]) -> int:
        return await asyncio.to_thread(self._write, entries)

    def _write(self, entries: list[Entry]) -> int:
        out = []
        hwm = self._hwm
        for writer, seq, line in entries:
            if seq > hwm.get(writer, -1):
                hwm[writer] = seq
                out.append(line)
        if not out:
            return 0
        data = b"\n".join(out) + b"\n"
        if self._size and self._size + len(data) > self.max_bytes:
            self._rotate()
        start = self._size
        self._fh.write(data)
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._size += len(data)
        if self.index is not None:
            self._indexed(self.index.add, start, out)
        return len(out)

    def _indexed(self, op, *args) -> None:
        """An index update; a failure is logged and mended by the next one (it reads back what it missed)."""
        try:
            op(*args)
        except Exception:  # the record is in the file already: the index must not fail the sink
            log.exception("audit file sink: the request-log index update failed; it catches up on the next write")

    def _rotate(self) -> None:
        oldest = f"{self.path}.{self.max_files}"
        if os.path.exists(oldest):
            with open(oldest, "rb") as fh:
                covers = checkpoint_covers(fh)
            if covers:
                self._fh.write(self._ckpt.seal(checkpoint_record(covers)))
                self._fh.flush()
                os.fsync(self._fh.fileno())
            os.unlink(oldest)
        for k in range(self.max_files - 1, 0, -1):
            if os.path.exists(f"{self.path}.{k}"):
                os.replace(f"{self.path}.{k}", f"{self.path}.{k + 1}")
        self._fh.close()
        os.replace(self.path, f"{self.path}.1")
        self._fh = open(self.path, "ab")
        self._size = 0
        if self.index is not None:
            self._indexed(self.index.rotated)

    async def close(self) -> None:
        if self._fh is not None:
            fh, self._fh = self._fh, None
            await asyncio.to_thread(fh.close)
        if self.index is not None:
            await asyncio.to_thread(self.index.close)


def rotated_paths(path: str, max_files: int = 1000) -> list[str]:
    """Existing files of a file sink, oldest first."""
    out = [f"{path}.{k}" for k in range(max_files, 0, -1) if os.path.exists(f"{path}.{k}")]
    if os.path.exists(path):
        out.append(path)
    return out
