"""Chain anchors: each writer's shipped head, published outside the log so a cut tail shows.

The hash chain proves every record links to the one before it, but not that the newest records are
still there: cutting a chain's tail, or removing a writer's whole chain, leaves valid links. So every
`anchor_interval_ms` a timer task publishes, per durable sink and per chain, the newest (seq, hash) that
sink has accepted, and a clean shutdown publishes a final anchor. `gateway audit verify` then requires
each anchored head to be in the sink (or trimmed under a checkpoint). Records shipped after a writer's
last anchor (at most one interval's worth while it runs) cannot be checked: that is the stated bound.

Where anchors go, apart from the log:
- an anchor file per process in `anchor_dir` (default `<spool_dir>/anchors`), `<writer>.anchors`,
  rewritten whole (temp file, fsync, rename) with that process's latest anchor of every chain and sink;
- for the Redis sink, also the hash `<stream>:anchors` (field = chain), next to the stream.
Each anchor line is signed like a record: HMAC-SHA256 with the chain key when one is configured (no one
without the key can make an anchor verify accept), plain SHA-256 without one (then anchors only catch
a cut made by someone who cannot also rewrite the anchors).

A process that adopts a dead process's spool segments anchors that dead writer's chain too: the line
before each sink's cursor at adoption, then whatever it ships; so after kill -9 and a restart on the
same spool the dead chain ends anchored (final once everything of it is shipped).

Publishing happens on the timer, never per request: `shipped` only keeps a reference to the last
shipped line of a batch.
"""

from __future__ import annotations

import asyncio
import glob
import hashlib
import hmac
import logging
import os
import re
import time
from collections.abc import Iterable

import orjson

from gateway.records.chain import Anchor
from gateway.records.schema import SCHEMA_VERSION

log = logging.getLogger(__name__)

_SORT = orjson.OPT_SORT_KEYS
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")
SUFFIX = ".anchors"


def anchors_key(stream: str) -> str:
    """The Redis hash of the stream's anchors, in the stream's own Cluster slot (like `hwm_key`)."""
    return stream + ":anchors" if "{" in stream else "{" + stream + "}:anchors"


def _sig(key: bytes | None, body: bytes) -> str:
    if key:
        return hmac.new(key, b"anchor" + body, hashlib.sha256).hexdigest()
    return hashlib.sha256(b"anchor" + body).hexdigest()


def sign(key: bytes | None, sink: str, writer: str, seq: int, h: str, final: bool) -> bytes:
    body = orjson.dumps({"v": SCHEMA_VERSION, "type": "anchor", "sink": sink, "writer": writer, "seq": seq,
                         "hash": h, "final": final, "time": time.time()}, option=_SORT)
    return body[:-1] + b',"sig":"' + _sig(key, body).encode() + b'"}'


def check(key: bytes | None, line: bytes) -> dict | str:
    """The anchor in `line`, or why it is refused (only its canonical bytes with a valid signature pass)."""
    try:
        rec = orjson.loads(line)
        sig = rec.pop("sig")
        body = orjson.dumps(rec, option=_SORT)
        ok = (isinstance(rec["writer"], str) and isinstance(rec["seq"], int) and isinstance(rec["hash"], str)
              and isinstance(rec["sink"], str))
    except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
        return "malformed anchor"
    if not ok or not isinstance(sig, str):
        return "malformed anchor"
    if not hmac.compare_digest(sig, _sig(key, body)) or line != body[:-1] + b',"sig":"' + sig.encode() + b'"}':
        return "anchor signature mismatch (anchor forged or altered, or another key)"
    return rec


def read_anchors(sources: Iterable[tuple[str, bytes]], key: bytes | None, sink: str) -> tuple[dict[str, Anchor], list[str]]:
    """The highest valid anchor per chain for `sink` among (where, line); and the refused lines."""
    out: dict[str, Anchor] = {}
    problems = []
    for where, line in sources:
        rec = check(key, line)
        if isinstance(rec, str):
            problems.append(f"{where}: {rec}")
            continue
        if rec["sink"] != sink:
            continue
        cur = out.get(rec["writer"])
        if cur is None or rec["seq"] > cur.seq or (rec["seq"] == cur.seq and rec.get("final") is True):
            out[rec["writer"]] = Anchor(rec["seq"], rec["hash"], rec.get("final") is True)
    return out, problems


def iter_anchor_files(directory: str) -> Iterable[tuple[str, bytes]]:
    for path in sorted(glob.glob(os.path.join(directory, "*" + SUFFIX))):
        with open(path, "rb") as fh:
            for n, line in enumerate(fh, 1):
                if line.strip():
                    yield f"{path}:{n}", line.rstrip(b"\n")


def last_line_before(fd: int, offset: int, block: int = 65536) -> bytes | None:
    """The line that ends (with its newline) at `offset` in the file open at `fd`; a spool cursor
    always stands at a line boundary."""
    data = b""
    pos = offset
    while pos > 0:
        start = max(0, pos - block)
        data = os.pread(fd, pos - start, start) + data
        pos = start
        if not data.endswith(b"\n"):
            return None
        cut = data.rfind(b"\n", 0, len(data) - 1)
        if cut >= 0 or pos == 0:
            return data[cut + 1:-1] or None
    return None


class AnchorPublisher:
    """Keeps each sink's shipped head per chain (from the shipper) and publishes them on a timer."""

    def __init__(self, writer: str, key: bytes | None, directory: str, interval_s: float) -> None:
        self._key = key
        self._dir = directory
        self._path = os.path.join(directory, _UNSAFE.sub("_", writer) + SUFFIX)
        self._interval = interval_s
        self._heads: dict[tuple[str, str], tuple[int, bytes]] = {}  # (sink, chain) -> (seq, last line)
        self._lines: dict[tuple[str, str], tuple[int, bool, bytes]] = {}  # signed anchors published
        self._redis = None
        self._task: asyncio.Task | None = None

    def use_redis(self, sink) -> None:
        """The Redis sink whose stream's anchor hash gets the "redis" anchors too."""
        self._redis = sink

    def shipped(self, sink: str, entry: tuple[str, int, bytes]) -> None:
        """A sink accepted everything up to `entry` (writer, seq, line) of that writer's chain."""
        writer, seq, line = entry
        cur = self._heads.get((sink, writer))
        if cur is None or seq > cur[0]:
            self._heads[(sink, writer)] = (seq, line)

    def adopt(self, segments, sinks: tuple[str, ...]) -> None:
        """Heads of adopted segments (dead writers) already shipped before this process started."""
        for seg in segments:
            for sink in sinks:
                line = last_line_before(seg.fd, min(seg.cursors.get(sink, 0), seg.size))
                if line is None:
                    continue
                try:
                    rec = orjson.loads(line)
                    self.shipped(sink, (rec["writer"], rec["seq"], line))
                except (orjson.JSONDecodeError, KeyError, TypeError):
                    log.warning("adopted spool %s: unreadable line before the %s cursor", seg.path, sink)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="audit-anchors")

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            await self.publish()

    async def stop(self, final_sinks: set[str]) -> None:
        """Stop the timer and publish once more; chains of `final_sinks` are marked final there."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        await self.publish(final_sinks)

    async def publish(self, final_sinks: set[str] = frozenset()) -> None:
        changed = []
        for (sink, writer), (seq, line) in list(self._heads.items()):
            final = sink in final_sinks
            old = self._lines.get((sink, writer))
            if old is not None and old[0] == seq and old[1] == final:
                continue
            try:
                h = orjson.loads(line)["hash"]
            except (orjson.JSONDecodeError, KeyError, TypeError):
                continue
            signed = sign(self._key, sink, writer, seq, h, final)
            self._lines[(sink, writer)] = (seq, final, signed)
            changed.append((sink, writer, signed))
        if not changed:
            return
        try:
            await asyncio.to_thread(self._write_file)
        except OSError as exc:
            log.warning("audit anchors: writing %s failed, will retry: %s", self._path, exc)
            for sink, writer, _ in changed:
                self._lines.pop((sink, writer), None)
        if self._redis is not None:
            fields = {w: line for s, w, line in changed if s == self._redis.name}
            if fields:
                try:
                    await self._redis.put_anchors(anchors_key(self._redis.stream), fields)
                except Exception as exc:
                    log.warning("audit anchors: Redis failed, will retry: %s", exc)
                    for w in fields:
                        self._lines.pop((self._redis.name, w), None)

    def _write_file(self) -> None:
        os.makedirs(self._dir, exist_ok=True)
        data = b"".join(line + b"\n" for _, _, line in self._lines.values())
        tmp = self._path + ".tmp"
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self._path)


async def start_publisher(writer: str, key: bytes | None, directory: str, interval_s: float, spool,
                          durable: list) -> AnchorPublisher:
    """The recorder's publisher: adopted chains seeded from the spool, the Redis sink attached, timer on."""
    pub = AnchorPublisher(writer, key, directory, interval_s)
    for sink in durable:
        if sink.name == "redis":
            pub.use_redis(sink)
    adopted = [seg for seg in spool.segments if not seg.active]
    await asyncio.to_thread(pub.adopt, adopted, tuple(s.name for s in durable))
    pub.start()
    return pub
