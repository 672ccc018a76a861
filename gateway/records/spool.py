"""The local append-only spool: where every audit record lands before any sink sees it.

A directory of segment files `<writer>.<n>.spool`, each held by its writing process with an exclusive
flock. Each segment has a cursor file (`.cursor`, JSON {sink: byte offset}) per durable sink. Appends
happen on the event loop, one os.write per record to an O_APPEND fd (the page cache: a returned write
survives a kill of the process, not an OS crash), so a record is in the spool before its response's
last byte goes out; fsync, reads and collection run in a thread. A segment left by a dead process (its
lock is free) is adopted at start-up, cut back to its last whole line (a kill can tear a write that
never returned), and shipped from its cursors. Durable sinks are idempotent, so a cursor persisted
late only means re-offering records, never loss.
"""

from __future__ import annotations

import fcntl
import glob
import logging
from concurrent.futures import ThreadPoolExecutor
import os
import re
import threading

import orjson

log = logging.getLogger(__name__)

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


class Segment:
    __slots__ = ("path", "fd", "size", "synced", "cursors", "active", "_dirty")

    def __init__(self, path: str, fd: int, size: int, cursors: dict[str, int], active: bool) -> None:
        self.path = path
        self.fd = fd
        self.size = size
        self.synced = size
        self.cursors = cursors
        self.active = active
        self._dirty = False

    def pending(self, sink: str) -> int:
        return self.synced - self.cursors.get(sink, 0)


def _read_cursors(path: str) -> dict[str, int]:
    try:
        with open(path + ".cursor", "rb") as fh:
            data = orjson.loads(fh.read())
        return {k: int(v) for k, v in data.items()}
    except (FileNotFoundError, orjson.JSONDecodeError, ValueError, AttributeError):
        return {}


class Spool:
    def __init__(self, directory: str, writer: str, sinks: tuple[str, ...], segment_bytes: int) -> None:
        self.directory = directory
        self.sinks = sinks
        self.segment_bytes = segment_bytes
        self._prefix = _UNSAFE.sub("_", writer)
        self._n = 0
        self.segments: list[Segment] = []
        self.active: Segment | None = None
        # `append` (event loop) adds segments while `collect` (executor) drops them.
        self._lock = threading.Lock()
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="audit-spool")

    def open(self) -> None:  # runs on `executor`
        os.makedirs(self.directory, exist_ok=True)
        for path in sorted(glob.glob(os.path.join(self.directory, "*.spool"))):
            fd = os.open(path, os.O_RDWR | os.O_APPEND)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:  # a live process owns it
                os.close(fd)
                continue
            size = cut_torn_tail(path, fd)
            self.segments.append(Segment(path, fd, size, _read_cursors(path), active=False))
        self._new_segment()

    def _new_segment(self) -> None:
        self._n += 1
        path = os.path.join(self.directory, f"{self._prefix}.{self._n:06d}.spool")
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        seg = Segment(path, fd, 0, {}, active=True)
        with self._lock:
            self.segments.append(seg)
        old, self.active = self.active, seg
        if old is not None:
            old.active = False  # only now: `collect` must not take a segment still being written

    def append(self, data: bytes) -> None:
        """Write whole lines to the page cache (no fsync); called on the event loop, the only writer,
        so lines land in chain order. Rotates when the active segment is full. A failed write leaves
        no torn line behind: what it wrote of `data` is cut off again before the error is raised."""
        seg = self.active
        if seg.size >= self.segment_bytes:
            self._new_segment()
            seg = self.active
        view = memoryview(data)
        try:
            while view:
                n = os.write(seg.fd, view)
                view = view[n:]
        except OSError:
            if len(view) < len(data):
                os.ftruncate(seg.fd, seg.size)
            raise
        seg.size += len(data)

    def sync(self) -> bool:  # runs on `executor`
        """fsync every segment written since its last sync; True when one was."""
        synced = False
        for seg in list(self.segments):
            if seg.synced < seg.size:
                size = seg.size
                os.fsync(seg.fd)
                seg.synced = size
                synced = True
        return synced

    def unsynced(self) -> bool:
        return any(s.synced < s.size for s in self.segments)

    def backlog(self, sink: str) -> int:
        return sum(s.size - s.cursors.get(sink, 0) for s in self.segments)

    @staticmethod
    def read(seg: Segment, sink: str, max_bytes: int) -> tuple[list[bytes], int]:
        """Whole lines from the sink's cursor up to the synced size; returns (lines, new offset)."""
        start = seg.cursors.get(sink, 0)
        end = min(seg.synced, start + max_bytes)
        if end <= start:
            return [], start
        data = os.pread(seg.fd, end - start, start)
        cut = data.rfind(b"\n") + 1
        if cut == 0:  # one line longer than max_bytes: read it whole
            data = os.pread(seg.fd, seg.synced - start, start)
            cut = data.rfind(b"\n") + 1
        return data[:cut].splitlines(), start + cut

    @staticmethod
    def save_cursor(seg: Segment, cursors: dict[str, int]) -> None:
        """Persist `cursors` for `seg`; the caller moves `seg.cursors` only once this returned, so an
        offset counted as shipped (backlog, collection) is always one a restart would also see."""
        tmp = seg.path + ".cursor.tmp"
        with open(tmp, "wb") as fh:
            fh.write(orjson.dumps(cursors))
        os.replace(tmp, seg.path + ".cursor")

    def collect(self) -> int:
        """Delete the segments every durable sink has shipped, except the active one."""
        done, keep = [], []
        with self._lock:
            for seg in self.segments:
                shipped = not seg.active and seg.synced == seg.size and all(
                    seg.cursors.get(s, 0) >= seg.size for s in self.sinks)
                (done if shipped else keep).append(seg)
            self.segments = keep
        for seg in done:
            for p in (seg.path, seg.path + ".cursor"):
                try:
                    os.unlink(p)
                except FileNotFoundError:
                    pass
            os.close(seg.fd)
        return len(done)

    def close(self) -> None:
        for seg in self.segments:
            os.close(seg.fd)
        self.segments = []
        self.active = None

    def shutdown(self) -> None:
        self.executor.shutdown(wait=True)


def cut_torn_tail(path: str, fd: int) -> int:
    """Size of a JSON-lines file after cutting bytes past its last newline: the start of a write its
    dead writer never saw return (SIGKILL can interrupt a write between pages). In a spool segment that
    record was never answered and would stall the shipper; in a sink file the next line would be glued
    to it. Only for files no live process writes (an adopted segment, a sink file being opened)."""
    size = os.fstat(fd).st_size
    end = size
    while end > 0:
        start = max(0, end - 65536)
        cut = os.pread(fd, end - start, start).rfind(b"\n")
        if cut >= 0:
            end = start + cut + 1
            break
        end = start
    if end < size:
        log.warning("audit file %s: cut %d bytes of an unfinished record at its end", path, size - end)
        os.ftruncate(fd, end)
    return end
