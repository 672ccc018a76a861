"""The audit shipper: synced spool -> durable sinks (Redis stream, JSON-lines file), with persisted cursors.

Each pass ships, for every durable sink, what the spool has synced past that sink's cursor, then saves the
cursor; a sink that fails is retried after `backoff_s` while the others go on, so one sink down never holds
back the rest and nothing is lost (the spool keeps every line until all sinks have it). A pass starts after
a flush (`flushed`, set by the recorder's flusher) and at most once per `pace_s`: under load one pass carries
many flushes' records in one sink call, instead of one call and cursor write per 5 ms flush. `finish` makes
one last pass over everything flushed, within a time bound.
"""

from __future__ import annotations

import asyncio
import logging

import orjson

from gateway.records.anchors import AnchorPublisher
from gateway.records.metrics import Metrics
from gateway.records.sinks import FileSink, RedisStreamSink
from gateway.records.spool import Segment, Spool

log = logging.getLogger(__name__)

READ_BYTES = 1 << 20
DurableSink = RedisStreamSink | FileSink
Entries = list[tuple[str, int, bytes]]


class Shipper:
    def __init__(self, spool: Spool, sinks: list[DurableSink], anchors: AnchorPublisher, metrics: Metrics, *,
                 backoff_s: float, pace_s: float) -> None:
        self.flushed = asyncio.Event()
        self._spool = spool
        self._sinks = sinks
        self._anchors = anchors
        self._metrics = metrics
        self._backoff_s = backoff_s
        self._pace_s = pace_s
        self._final = False
        # (segment, start, entries, offset) of the last read: sinks usually stand at the same offset.
        self._last_read: tuple[Segment, int, Entries, int] | None = None

    async def run(self) -> None:
        """Ship until `finish` asks for the last pass."""
        retry_at: dict[str, float] = {}
        loop = asyncio.get_running_loop()
        while True:
            final = self._final
            if not final:
                try:
                    await asyncio.wait_for(self.flushed.wait(), self._backoff_s)
                except TimeoutError:
                    pass
                if not self._final:
                    await asyncio.sleep(self._pace_s)
                self.flushed.clear()
            try:
                for sink in self._sinks:
                    if final or loop.time() >= retry_at.get(sink.name, 0.0):
                        if not await self._ship_once(sink):
                            retry_at[sink.name] = loop.time() + self._backoff_s
                if any(not seg.active for seg in self._spool.segments):
                    await loop.run_in_executor(self._spool.executor, self._spool.collect)
            except OSError:
                log.exception("audit shipper: spool I/O failed; retrying")
            if final:
                return

    async def finish(self, task: asyncio.Task[None], timeout_s: float) -> None:
        """The running pass ends, then one last pass over everything flushed; past `timeout_s` the task is
        cancelled and what is left stays in the spool for the next start."""
        self._final = True
        self.flushed.set()
        done, _ = await asyncio.wait({task}, timeout=timeout_s)
        if not done:
            log.warning("audit close: sinks did not take everything in time; the rest stays spooled")
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _ship_once(self, sink: DurableSink) -> bool:
        """Ship everything synced for one sink; False when the sink failed."""
        for seg in list(self._spool.segments):
            while seg.pending(sink.name) > 0:
                start = seg.cursors.get(sink.name, 0)
                last = self._last_read
                if last is not None and last[0] is seg and last[1] == start:
                    entries, offset = last[2], last[3]      # the previous sink's read and parse serve
                else:
                    entries, offset = await asyncio.to_thread(_read_entries, seg, sink.name)
                    self._last_read = (seg, start, entries, offset)
                if entries:
                    try:
                        await sink.ship(entries)
                    except Exception as exc:
                        self._metrics.sink_errors.labels(sink.name).inc()
                        log.warning("audit sink %s failed, will retry: %s", sink.name, exc)
                        return False
                    self._anchors.shipped(sink.name, entries[-1])  # one segment: one chain
                await asyncio.to_thread(Spool.save_cursor, seg, {**seg.cursors, sink.name: offset})
                seg.cursors[sink.name] = offset
        return True


def _read_entries(seg: Segment, sink: str) -> tuple[Entries, int]:
    """(writer, seq, line) of the synced lines from the sink's cursor, and the offset after them."""
    lines, offset = Spool.read(seg, sink, READ_BYTES)
    entries = []
    for line in lines:
        try:
            rec = orjson.loads(line)
            entries.append((rec["writer"], rec["seq"], line))
        except (orjson.JSONDecodeError, KeyError, TypeError):
            log.error("unreadable spool line in %s skipped: %r", seg.path, line[:200])
    return entries, offset
