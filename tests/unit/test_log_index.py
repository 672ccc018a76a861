"""The file sink's SQLite request-log index (gateway/records/log_index.py): rotation drops the rows of the
files it deletes and keeps every other record reachable; a lost or corrupted index file, or one deleted
while the sink runs, is rebuilt from the log; a log written before the index existed is indexed."""

from __future__ import annotations

import asyncio
import os

import pytest

from gateway.records.log_index import index_path
from gateway.records.log_query import LogQuery
from gateway.records.sinks import FileSink, rotated_paths
from tests.support.log_index_check import assert_index_complete, index_files
from tests.support.log_writer import line

MAX_BYTES = 8192  # about 25 records a file
MAX_FILES = 3


# The sink's file and index work runs in its threads; the checks read files, so they run outside a loop.
def ship(sink: FileSink, writer: str, first: int, count: int, batch: int = 5) -> None:
    async def go() -> None:
        for s in range(first, first + count, batch):
            await sink.ship([(writer, q, line(writer, q)) for q in range(s, min(s + batch, first + count))])

    asyncio.run(go())


def opened(path: str, index: bool = True) -> FileSink:
    sink = FileSink(path, max_bytes=MAX_BYTES, max_files=MAX_FILES, chain_key=None, index=index)
    asyncio.run(sink.open())
    return sink


def close(sink: FileSink) -> None:
    asyncio.run(sink.close())


def test_rotation_keeps_every_kept_record_and_drops_deleted_files(tmp_path):
    path = str(tmp_path / "records.jsonl")

    sink = opened(path)
    ship(sink, "w1", 0, 400)  # ~16 files' worth: many rotations, most files deleted
    assert len(rotated_paths(path, MAX_FILES)) == MAX_FILES + 1
    n = assert_index_complete(path, MAX_FILES)
    assert 50 < n < 400
    # the oldest kept record is found by its own request id, the deleted ones are not
    assert sink.index is not None
    assert sink.index.page(LogQuery(request_id="r0", limit=500)).rows  # seq 388 is r0 (388 % 97)
    close(sink)


@pytest.mark.parametrize("damage", ["deleted", "corrupted", "truncated"])
def test_index_file_lost_or_corrupted_is_rebuilt_from_the_log(tmp_path, damage):
    path = str(tmp_path / "records.jsonl")

    sink = opened(path)
    ship(sink, "w1", 0, 120)
    close(sink)
    if damage == "deleted":
        for p in index_files(path):
            os.unlink(p)
    elif damage == "corrupted":
        for p in index_files(path):
            os.unlink(p)
        with open(index_path(path), "wb") as fh:
            fh.write(b"this is not a database" * 300)
    else:
        with open(index_path(path), "r+b") as fh:
            fh.truncate(1000)
    sink = opened(path)
    assert_index_complete(path, MAX_FILES)
    ship(sink, "w1", 120, 60)  # and it keeps up afterwards
    assert_index_complete(path, MAX_FILES)
    close(sink)


def test_index_deleted_while_the_sink_runs_is_rebuilt_on_the_next_write(tmp_path):
    path = str(tmp_path / "records.jsonl")

    sink = opened(path)
    ship(sink, "w1", 0, 60)
    for p in index_files(path):
        os.unlink(p)
    ship(sink, "w1", 60, 5)
    assert_index_complete(path, MAX_FILES)
    close(sink)


def test_a_log_written_without_the_index_is_indexed_at_open(tmp_path):
    path = str(tmp_path / "records.jsonl")

    sink = opened(path, index=False)
    ship(sink, "w1", 0, 150)
    close(sink)
    assert not index_files(path)
    sink = opened(path)
    assert_index_complete(path, MAX_FILES)
    ship(sink, "w2", 0, 90)  # rotations after the first build keep the generations right
    assert_index_complete(path, MAX_FILES)
    close(sink)


def test_records_written_past_the_index_are_caught_up(tmp_path):
    """A crash between the file write and the index commit: the file has lines the index lacks."""
    path = str(tmp_path / "records.jsonl")

    sink = opened(path)
    ship(sink, "w1", 0, 10)
    close(sink)
    with open(path, "ab") as fh:  # what the dead writer had written, and a torn last line
        fh.write(b"\n".join(line("w1", s) for s in range(10, 14)) + b"\n" + line("w1", 14)[:40])
    sink = opened(path)
    assert_index_complete(path, MAX_FILES)
    ship(sink, "w1", 14, 3)  # the torn record is shipped again (the spool still holds it)
    assert_index_complete(path, MAX_FILES)
    close(sink)

