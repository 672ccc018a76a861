"""The file sink's request-log index: SQLite (stdlib) beside the JSON-lines file, `<path>.index.sqlite`.

One row per request record: the filter columns (time in microseconds, request id, key, team, alias,
status, reason and its family, guardrail action), the table's row as a small JSON summary, and where the
whole record lies: the file's generation, the byte offset and length, and (writer, seq) to check it.
Generations count rotations: the live file is generation `gen` (kept in `meta`), `path.k` is `gen - k`,
so a location survives the renames of a rotation; rows of the file a rotation deletes are deleted with
it. One B-tree index per filter column, each ending in time, so a filtered page newest first is an
index range walk; a request id lookup is one index probe whatever the log's size.

The sink's writer thread maintains it right after each fsynced batch (`add`); the index keeps the byte
offset it has reached in the live file, so anything it missed (a crash between the file write and the
index commit, a file written before the index existed) is read back from the file first (`catch_up`).
Readers open their own connections (WAL: reads never wait for the writer).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import threading
from collections.abc import Iterable

import orjson

from gateway.records.log_query import LogPage, LogQuery, encode_cursor, reason_family, row_of

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(k TEXT PRIMARY KEY, v INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS rec(
  id INTEGER PRIMARY KEY, t INTEGER NOT NULL, rid TEXT, key TEXT, team TEXT, alias TEXT, status INTEGER,
  reason TEXT, family TEXT, action TEXT, gen INTEGER NOT NULL, off INTEGER NOT NULL, len INTEGER NOT NULL,
  writer TEXT NOT NULL, seq INTEGER NOT NULL, row BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS rec_t ON rec(t, id);
CREATE INDEX IF NOT EXISTS rec_rid ON rec(rid, t, id);
CREATE INDEX IF NOT EXISTS rec_key ON rec(key, t, id);
CREATE INDEX IF NOT EXISTS rec_team ON rec(team, t, id);
CREATE INDEX IF NOT EXISTS rec_alias ON rec(alias, t, id);
CREATE INDEX IF NOT EXISTS rec_status ON rec(status, t, id);
CREATE INDEX IF NOT EXISTS rec_reason ON rec(reason, t, id);
CREATE INDEX IF NOT EXISTS rec_family ON rec(family, t, id);
CREATE INDEX IF NOT EXISTS rec_action ON rec(action, t, id);
"""
_INSERT = "INSERT INTO rec(t,rid,key,team,alias,status,reason,family,action,gen,off,len,writer,seq,row) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
FIRST_GEN = 1_000_000  # rotated files found at first indexing get the generations below it


def index_path(log_path: str) -> str:
    return log_path + ".index.sqlite"


def _connect(path: str) -> sqlite3.Connection:
    db = sqlite3.connect(path, timeout=10.0, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")  # the log file is the durable copy; the index can be rebuilt
    return db


def _row_values(rec: dict, gen: int, off: int, length: int) -> tuple | None:
    if rec.get("type") != "request":
        return None
    t = int(float(rec.get("time") or 0.0) * 1_000_000)
    reason = rec.get("block_reason")
    row = row_of("", rec)
    del row["entry"]
    return (t, rec.get("request_id"), rec.get("key_id"), rec.get("team"), rec.get("alias"), int(rec.get("status") or 0),
            reason, reason_family(reason), rec.get("guardrail_action"), gen, off, length, rec["writer"], rec["seq"],
            orjson.dumps(row))


class SqliteLogIndex:
    """Writer side (one per file sink, used from its thread) and reader side (any thread)."""

    def __init__(self, log_path: str, max_files: int) -> None:
        self.log_path = log_path
        self.path = index_path(log_path)
        self.max_files = max_files
        self._db: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    # -- writer side (the file sink's thread) --
    def open(self) -> None:
        """Open (or create) the index and catch up with the log; an index file SQLite cannot read is
        deleted and rebuilt from the log, which is the durable copy."""
        try:
            self._open()
        except sqlite3.DatabaseError as exc:
            import logging

            logging.getLogger(__name__).warning("request-log index %s unreadable (%s): rebuilding it", self.path, exc)
            self.close()
            for suffix in ("", "-wal", "-shm"):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.path + suffix)
            self._open()

    def _open(self) -> None:
        db = self._db = _connect(self.path)
        db.executescript(_SCHEMA)
        if self._meta("gen") is None:
            self._build()
        else:
            self.catch_up()

    def _gone(self) -> bool:
        """The index file was deleted under the writer (the docs' way to rebuild it): reopen, rebuilding."""
        if os.path.exists(self.path):
            return False
        self.close()
        self.open()
        return True

    def _meta(self, k: str) -> int | None:
        assert self._db is not None
        got = self._db.execute("SELECT v FROM meta WHERE k=?", (k,)).fetchone()
        return None if got is None else int(got[0])

    def _set_meta(self, **kv: int) -> None:
        assert self._db is not None
        self._db.executemany("INSERT OR REPLACE INTO meta(k,v) VALUES (?,?)", list(kv.items()))

    def _build(self) -> None:
        """First open: index every file the sink already holds."""
        from gateway.records.sinks import rotated_paths

        db = self._db
        assert db is not None
        db.execute("BEGIN")
        db.execute("DELETE FROM rec")
        paths = rotated_paths(self.log_path, self.max_files)
        live = os.path.exists(self.log_path)
        for p in paths:
            k = 0 if p == self.log_path else int(p.rsplit(".", 1)[1])
            self._index_file(p, FIRST_GEN - k, 0)
        self._set_meta(gen=FIRST_GEN, off=os.path.getsize(self.log_path) if live else 0)
        db.execute("COMMIT")

    def _index_file(self, path: str, gen: int, start: int) -> int:
        with open(path, "rb") as fh:
            fh.seek(start)
            data = fh.read()
        end = data.rfind(b"\n") + 1  # a torn tail is not a record (yet)
        self._insert(gen, start, data[:end].split(b"\n")[:-1])
        return start + end

    def _insert(self, gen: int, off: int, lines: Iterable[bytes]) -> int:
        assert self._db is not None
        rows = []
        for line in lines:
            n = len(line) + 1
            try:
                rec = orjson.loads(line)
                values = _row_values(rec, gen, off, n - 1) if isinstance(rec, dict) else None
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                values = None  # not a record: `gateway audit verify` is the tool that reports it
            if values is not None:
                rows.append(values)
            off += n
        self._db.executemany(_INSERT, rows)
        return off

    def catch_up(self) -> None:
        """Index what the live file holds past the index's offset (rebuild if the file is shorter)."""
        gen, off = self._meta("gen"), self._meta("off") or 0
        size = os.path.getsize(self.log_path) if os.path.exists(self.log_path) else 0
        if gen is None or size < off:
            self._build()
            return
        if size == off:
            return
        assert self._db is not None
        self._db.execute("BEGIN")
        end = self._index_file(self.log_path, gen, off)
        self._set_meta(off=end)
        self._db.execute("COMMIT")

    def add(self, start: int, lines: list[bytes]) -> None:
        """Lines just written to the live file from byte `start` (called after the write and fsync)."""
        if self._gone():
            return
        if self._meta("off") != start:
            self.catch_up()
            return
        gen = self._meta("gen")
        assert self._db is not None and gen is not None
        self._db.execute("BEGIN")
        end = self._insert(gen, start, lines)
        self._set_meta(off=end)
        self._db.execute("COMMIT")

    def rotated(self) -> None:
        """The live file became path.1: a new generation; rows of files no longer kept go."""
        if self._gone():
            return
        assert self._db is not None
        gen = (self._meta("gen") or FIRST_GEN) + 1
        self._db.execute("BEGIN")
        self._db.execute("DELETE FROM rec WHERE gen < ?", (gen - self.max_files,))
        self._set_meta(gen=gen, off=0)
        self._db.execute("COMMIT")

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    # -- reader side (any thread; one connection per call keeps threads apart) --
    def page(self, q: LogQuery) -> LogPage:
        where, args = [], []
        for col, v in (("rid", q.request_id), ("key", q.key), ("team", q.team), ("alias", q.alias),
                       ("action", q.action)):
            if v is not None:
                where.append(f"{col} = ?")
                args.append(v)
        if q.status is not None:
            if q.status.endswith("xx"):
                lo = int(q.status[0]) * 100
                where.append("status >= ? AND status < ?")
                args += [lo, lo + 100]
            else:
                where.append("status = ?")
                args.append(int(q.status))
        if q.reason is not None:
            where.append("reason = ?" if "." in q.reason else "family = ?")
            args.append(q.reason)
        if q.since is not None:
            where.append("t >= ?")
            args.append(int(q.since * 1_000_000))
        if q.until is not None:
            where.append("t < ?")
            args.append(int(q.until * 1_000_000))
        if q.cursor is not None:
            t, entry = q.cursor
            where.append("(t < ? OR (t = ? AND id < ?))")
            args += [t, t, int(entry) if entry.isdigit() else 0]
        sql = "SELECT id, t, row FROM rec"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY t DESC, id DESC LIMIT ?"
        args.append(q.limit + 1)
        with self._reader() as db:
            got = db.execute(sql, args).fetchall()
        page = LogPage(scanned=len(got))
        for rowid, _, row in got[:q.limit]:
            r = orjson.loads(row)
            page.rows.append({"entry": str(rowid), **r})
        if len(got) > q.limit:
            last = got[q.limit - 1]
            page.next = encode_cursor(last[1], str(last[0]))
        return page

    def record(self, entry: str) -> bytes | None:
        """The record's line as the file holds it; None when the index has no such entry or the file no
        longer holds it (rotated away)."""
        if not entry.isdigit():
            return None
        for _ in range(3):  # a rotation between reading the generation and the file: look again
            with self._reader() as db:
                got = db.execute("SELECT gen, off, len, writer, seq FROM rec WHERE id = ?", (int(entry),)).fetchone()
                cur = db.execute("SELECT v FROM meta WHERE k='gen'").fetchone()
            if got is None or cur is None:
                return None
            gen, off, length, writer, seq = got
            k = int(cur[0]) - gen
            path = self.log_path if k == 0 else f"{self.log_path}.{k}"
            try:
                with open(path, "rb") as fh:
                    fh.seek(off)
                    line = fh.read(length)
                rec = orjson.loads(line)
            except (OSError, orjson.JSONDecodeError):
                continue
            if isinstance(rec, dict) and rec.get("writer") == writer and rec.get("seq") == seq:
                return line
        return None

    def _reader(self) -> contextlib.closing[sqlite3.Connection]:
        return contextlib.closing(sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=10.0))


class FileLog:
    """The index's reads off the event loop, in the shape `RedisLogIndex` has."""

    def __init__(self, index: SqliteLogIndex) -> None:
        self.index = index

    async def page(self, q: LogQuery) -> LogPage:
        return await asyncio.to_thread(self.index.page, q)

    async def record(self, entry: str) -> bytes | None:
        return await asyncio.to_thread(self.index.record, entry)
