"""What a file sink's request-log index must hold: exactly the request records of the files that exist."""

from __future__ import annotations

import os
import sqlite3

import orjson

from gateway.records.log_index import SqliteLogIndex, index_path
from gateway.records.log_query import LogQuery
from gateway.records.sinks import rotated_paths


def records_in_files(path: str, max_files: int) -> set[tuple[str, int]]:
    out = set()
    for p in rotated_paths(path, max_files):
        with open(p, "rb") as fh:
            for line in fh.read().splitlines():
                rec = orjson.loads(line)
                if rec.get("type") == "request":
                    out.add((rec["writer"], rec["seq"]))
    return out


def assert_index_complete(path: str, max_files: int) -> int:
    """Every request record the files hold is found through the index (pages and details), once; no row
    points at a file that is gone. Returns the number of records."""
    want = records_in_files(path, max_files)
    db = sqlite3.connect(index_path(path))
    try:
        gen = db.execute("SELECT v FROM meta WHERE k='gen'").fetchone()[0]
        stale = db.execute("SELECT COUNT(*) FROM rec WHERE gen <= ?", (gen - max_files - 1,)).fetchone()[0]
        rows = db.execute("SELECT writer, seq FROM rec").fetchall()
    finally:
        db.close()
    assert stale == 0, f"{stale} rows of deleted files remain"
    assert len(rows) == len(set(rows)), "a record is indexed twice"
    assert set(rows) == want
    ix = SqliteLogIndex(path, max_files)
    seen: list[tuple[str, int]] = []
    cursor = None
    while True:
        page = ix.page(LogQuery(limit=500, cursor=cursor))
        for row in page.rows:
            line = ix.record(row["entry"])
            assert line is not None, f"entry {row['entry']} does not lead to its record"
            rec = orjson.loads(line)
            seen.append((rec["writer"], rec["seq"]))
        if page.next is None:
            break
        from gateway.records.log_query import decode_cursor

        cursor = decode_cursor(page.next)
    assert sorted(seen) == sorted(want)
    return len(want)


def index_files(path: str) -> list[str]:
    base = index_path(path)
    return [p for p in (base, base + "-wal", base + "-shm") if os.path.exists(p)]
