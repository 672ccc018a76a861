"""The local append-only spool: where every audit record lands before any sink sees it.

A directory of segment files `<writer>.<n>.spool`, each held by its writing process with an exclusive
flock. Each segment has a cursor file (`.cursor`, JSON {sink: byte offset}) per durable sink. Writes
happen on the event loop (os.write to the page cache, O_APPEND); fsync and reads run in a thread. A
segment left by a dead process (its lock is free) is adopted at start-up and shipped from its cursors.
Durable sinks are idempotent, so a cursor persisted late only means re-offering records, never loss.
"""

from __future__ import annotations

import fcntl
import glob
from concurrent.futures import ThreadPoolExecutor
import os
import re

import orjson

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
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="audit-spool")

    # -- everything below that writes runs on `executor` --
    def open(self) -> None:
        os.makedirs(self.directory, exist_ok=True)
        for path in sorted(glob.glob(os.path.join(self.directory, "*.spool"))):
            fd = os.open(path, os.O_RDWR | os.O_APPEND)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:  # a live process owns it
                os.close(fd)
                continue
            size = os.fstat(fd).st_size
            self.segments.append(Segment(path, fd, size, _read_cursors(path), active=False))
        self._new_segment()

    def _new_segment(self) -> None:
        self._n += 1
        path = os.path.join(self.directory, f"{self._prefix}.{self._n:06d}.spool")
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        if self.active is not None:
            self.active.active = False
        self.active = Segment(path, fd, 0, {}, active=True)
        self.segments.append(self.active)

    def append(self, data: bytes) -> None:
        """Write to the page cache (no fsync). Rotates when the active segment is full."""
        seg = self.active
        if seg.size >= self.segment_bytes:
            self._new_segment()
            seg = self.active
        view = memoryview(data)
        while view:
            n = os.write(seg.fd, view)
            view = view[n:]
        seg.size += len(data)

    def append_and_sync(self, data: bytes) -> None:
        if data:
            self.append(data)
        for seg in list(self.segments):
            if seg.synced < seg.size:
                size = seg.size
                os.fsync(seg.fd)
                seg.synced = size

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
    def save_cursor(seg: Segment) -> None:
        tmp = seg.path + ".cursor.tmp"
        with open(tmp, "wb") as fh:
            fh.write(orjson.dumps(seg.cursors))
        os.replace(tmp, seg.path + ".cursor")

    def collect(self) -> int:
        """Delete the segments every durable sink has shipped, except the active one."""
        done, keep = [], []
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
