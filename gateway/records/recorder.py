"""The background recording pipeline: request path -> spool -> sinks (the shipper: `gateway.records.shipper`).

`submit` (on the request path, called just before the response's last byte goes out) builds and
seals the record, counts it in metrics and /stats, and appends the line to the spool with one
os.write on the event loop: once it returns, a kill of the process cannot lose the record. A flusher
task fsyncs the spool every `flush_interval_ms` in the spool's thread (so an OS crash loses at most
that interval) and echoes the synced lines to stdout; a shipper task feeds the durable sinks (Redis
stream, JSON-lines file) from the synced spool with persisted cursors, retrying with backoff while a
sink is down. A spool write that fails (disk full, I/O error) keeps its line, and every later one, in
memory in order (at most `queue_size`) for the flusher to retry.
"""

from __future__ import annotations

import asyncio
import random
import logging
import os
import secrets
import time
from collections.abc import Callable, Mapping

from gateway.context import RequestContext
from gateway.records.anchors import AnchorPublisher, start_publisher
from gateway.records.chain import Chain, new_writer_id
from gateway.records.config import AuditConfig, parse_audit, sink_of
from gateway.records import multiproc
from gateway.records.metrics import CONTENT_TYPE, Metrics
from gateway.config.schema import DriftConfig
from gateway.records.drift import Drift
from gateway.records.feedback import FeedbackStats
from gateway.records.history import History, MemoryHistory, RedisHistory
from gateway.records.log_index import FileLog
from gateway.records.log_redis import RedisLogIndex
from gateway.records.sampled import Sampler
from gateway.records.schema import build_record
from gateway.records.shipper import DurableSink, Shipper
from gateway.records.sinks import FileSink, RedisStreamSink, StdoutSink
from gateway.records.spool import Spool
from gateway.records.stats import RollingStats

log = logging.getLogger(__name__)

SAMPLE_INTERVAL_S = 1.0  # sampled metrics, and this worker's /stats file for the others
PEER_LIVE_S = 3.0  # a worker whose /stats file is older than this is gone: its in-flight count is not added


def env_key(name: str | None) -> bytes | None:
    if not name:
        return None
    value = os.environ.get(name)
    return value.encode() if value else None


class Recorder:
    metrics_content_type = CONTENT_TYPE

    def __init__(self, cfg: AuditConfig) -> None:
        self.cfg = cfg
        self.writer = new_writer_id()
        self._chain_key = env_key(cfg.hmac_key_env)
        self._chain = Chain(self.writer, self._chain_key)
        self._user_key = env_key(cfg.user_hash_key_env) or b""
        self._metrics = Metrics()
        self._stats = RollingStats()
        self._pending: list[bytes] = []  # lines not yet in the spool: before start, or a write failed
        self._echo: list[bytes] = []  # lines in the spool for the stdout sink, echoed after the fsync
        self._spool: Spool | None = None
        self._stdout: StdoutSink | None = StdoutSink() if sink_of(cfg, "stdout") else None
        self._durable: list[DurableSink] = []
        self._tasks: list[asyncio.Task] = []
        self._closing = False
        self._shipper: Shipper | None = None
        self._anchors: AnchorPublisher | None = None
        self.sampler = Sampler(self._metrics)
        self.sampler.sources.queue_depth = lambda: len(self._pending)
        self.sampler.sources.backlog = lambda: {s.name: self._spool.backlog(s.name) for s in self._durable} if self._spool else {}
        self._in_flight: Callable[[], int] = lambda: 0
        self._peers: list[dict] = []  # the other workers' /stats exports (multi-worker instances)
        self._sampling: asyncio.Task | None = None
        # The dashboard's history (gateway.records.history); its store is chosen in `start`.
        self.history = History(MemoryHistory())
        self._observe_history = self.history.observe
        self.feedback = FeedbackStats()  # /stats "feedback" (POST /v1/feedback)
        self._stats.register("feedback", self.feedback.snapshot)
        # Input drift (gateway.records.drift); the app points `drift.config` at the runtime's [drift].
        self.drift = Drift(DriftConfig)
        self._stats.register("drift", self.drift.snapshot)
        self._metrics.add_collector(self.drift)
        self._drift_task: asyncio.Task | None = None

    @classmethod
    def compile(cls, audit_section: dict | None, *, file: str, base_dir: str | None = None) -> Recorder:
        return cls(parse_audit(audit_section, file=file, base_dir=base_dir))

    # -- hooks for other modules --
    def set_in_flight_source(self, source: Callable[[], int]) -> None:
        """The in-flight gauge reads the HTTP layer's own counter when sampled (no per-request call)."""
        self.sampler.sources.in_flight = source
        self._in_flight = source

    def set_breaker_source(self, source: Callable[[], dict[str, str]]) -> None:
        """Breaker states for /stats (the metrics read `sampler.sources.breakers`, with transitions)."""
        self._stats.register("breakers", source)

    def set_canary_source(self, source: Callable[[], dict[str, dict[str, object]]]) -> None:
        """Each alias's canary (gateway.routing.canary): the rollback gauge, and `canary` in /stats."""
        self.sampler.sources.canary = source
        self._stats.register("canary", source)

    def set_fail_open_source(self, source: Callable[[], dict[str, int]]) -> None:
        """Requests served unchecked with the store down, by check ("limits", "revocation")."""
        self.sampler.sources.fail_open = source
        self._stats.register("fail_open_total", lambda: sum(source().values()))
        self._stats.register("fail_open_by_check", source)

    def set_trace_source(self, dropped: Callable[[], Mapping[str, int]], queued: Callable[[], int]) -> None:
        """Spans dropped by reason and spans waiting for export (gateway.tracing), sampled each second
        and before a scrape."""
        self.sampler.sources.trace_dropped = dropped
        self.sampler.sources.trace_queue = queued

    def register_stats_source(self, name: str, source: Callable[[], object]) -> None:
        """A slot in /stats filled at read time, e.g. "budgets" by the budget module."""
        self._stats.register(name, source)

    # -- lifecycle --
    async def start(self, redis_url: str | None) -> None:
        cfg = self.cfg
        if redis_url:
            self.history.store = RedisHistory(await _history_client(redis_url))
        self.history.start()
        self._drift_task = asyncio.create_task(self.drift.run(), name="drift-fold")
        gpu = self._metrics.enable_gpu()
        if gpu is not None:
            self._stats.register("gpu", gpu.snapshot)
        self._metrics.workers.set(1)
        self._sampling = asyncio.create_task(self._sample_loop(), name="metrics-sampler")
        if not cfg.enabled:
            return
        rs = sink_of(cfg, "redis")
        url = (rs.url if rs else None) or redis_url
        if rs is not None:
            if not url or not url.startswith(("redis://", "rediss://", "unix://")):
                raise RuntimeError("the audit Redis sink needs a redis:// URL ([store] url or the sink's url)")
            self._durable.append(RedisStreamSink(url, rs.stream, maxlen=rs.maxlen, batch=rs.batch))
        fs = sink_of(cfg, "file")
        if fs is not None:
            self._durable.append(FileSink(fs.path, max_bytes=fs.max_bytes, max_files=fs.max_files,
                                          chain_key=self._chain_key))
        self._spool = Spool(cfg.spool_dir, self.writer, tuple(s.name for s in self._durable), cfg.spool_segment_bytes)
        await asyncio.get_running_loop().run_in_executor(self._spool.executor, self._spool.open)
        if not self._user_key:
            self._user_key = await asyncio.to_thread(_spool_user_key, cfg.spool_dir)
        for sink in self._durable:
            await sink.open()
        self._anchors = await start_publisher(self.writer, self._chain_key, cfg.anchor_dir,
                                              cfg.anchor_interval_ms / 1000.0, self._spool, self._durable)
        self._shipper = Shipper(self._spool, self._durable, self._anchors, self._metrics,
                                backoff_s=cfg.retry_backoff_s, pace_s=cfg.ship_interval_ms / 1000.0)
        self._tasks = [asyncio.create_task(self._flusher(), name="audit-flusher"),
                       asyncio.create_task(self._shipper.run(), name="audit-shipper")]

    def sample_payload(self) -> bool:
        """Should this request's prompt and answer be stored (`log_payloads`, sampled)?"""
        cfg = self.cfg
        return cfg.log_payloads and cfg.enabled and (cfg.payload_sample_rate >= 1.0 or random.random() < cfg.payload_sample_rate)

    def submit(self, ctx: RequestContext, cost_usd: float) -> None:
        """Record a finished request: one page-cache write to the spool, no fsync; never raises."""
        try:
            rec = build_record(ctx, cost_usd=cost_usd, user_hash_key=self._user_key,
                               payload_max_bytes=self.cfg.payload_max_bytes)
            rt, target, err = ctx.runtime, ctx.target, ctx.error
            self._metrics.observe(
                rec, rt.router.routes if rt is not None else (),
                target.alias if target is not None and target.alias != ctx.alias else None,
                err.reason if err is not None and err.reason is not None else rec["block_reason"])
            self._stats.observe(rec)
            self._observe_history(rec)
            rt = ctx.runtime
            if rt is not None and rt.config.main.drift.enabled and ctx.alias in rt.router.routes:
                self.drift.observe(ctx.alias, rec, ctx.body)
            if not self.cfg.enabled:
                return
            line = self._chain.seal(rec)
        except Exception:
            log.exception("building the request record failed (request %s)", getattr(ctx, "request_id", "?"))
            self._metrics.dropped.inc()
            return
        self._metrics.recorded.inc()
        self._append(line, ctx.request_id)

    def submit_admin(self, rec: dict) -> bool:
        """Record an operator's action (`schema.admin_record`, `schema.build_key_change`) in this
        process's chain; False when auditing is off."""
        if not self.cfg.enabled:
            return False
        self._append(self._chain.seal(rec), rec.get("request_id", "?"))
        return True

    def submit_feedback(self, rec: dict, known_alias: bool) -> bool:
        """Record feedback (`feedback.feedback_record`) in this process's chain and count it in /stats and
        /metrics; False when auditing is off (then nothing is counted either)."""
        if not self.cfg.enabled:
            return False
        self._append(self._chain.seal(rec), rec.get("request_id", "?"))
        self._metrics.observe_feedback(rec, known_alias)
        self.feedback.observe(rec if known_alias else {**rec, "alias": None, "provider": None, "model": None})
        return True

    def submit_shadow(self, rec: dict) -> None:
        """A shadow pair (`schema.shadow_record`): counted in /metrics, sealed into the chain when auditing."""
        self._metrics.observe_shadow(rec)
        if self.cfg.enabled:
            self._append(self._chain.seal(rec), rec.get("request_id", "?"))

    def shadow_dropped(self, alias: str) -> None:
        self._metrics.shadow_dropped.labels(alias).inc()

    def request_log(self) -> RedisLogIndex | FileLog | None:
        """The request log's reader: the Redis stream's index when that sink runs, else the file sink's."""
        for sink in self._durable:
            if isinstance(sink, RedisStreamSink) and sink.index and sink.client is not None:
                return RedisLogIndex(sink.client, sink.stream)
        for sink in self._durable:
            if isinstance(sink, FileSink) and sink.index is not None:
                return FileLog(sink.index)
        return None

    def _append(self, line: bytes, request_id: str) -> None:
        # Sealing and writing in one synchronous step keeps the spool in chain order across
        # concurrent requests; once a write has failed, later lines queue behind it.
        if self._spool is not None and not self._pending:
            try:
                self._spool.append(line)
            except OSError:
                log.exception("audit spool write failed; the flusher retries (request %s)", request_id)
            else:
                if self._stdout is not None:
                    self._echo.append(line)
                return
        if len(self._pending) >= self.cfg.queue_size:
            log.error("audit record of request %s dropped: %d records already wait for the spool",
                      request_id, len(self._pending))
            self._metrics.dropped.inc()
            return
        self._pending.append(line)

    def _write_pending(self) -> None:
        data = b"".join(self._pending)
        try:
            self._spool.append(data)
        except OSError:
            log.exception("audit spool write failed (%d records); retrying", len(self._pending))
            return
        if self._stdout is not None:
            self._echo += self._pending
        self._pending.clear()

    async def _flusher(self) -> None:
        interval = self.cfg.flush_interval_ms / 1000.0
        loop = asyncio.get_running_loop()
        spool = self._spool
        while True:
            closing = self._closing
            if self._pending:
                self._write_pending()
            if spool.unsynced():
                echo, self._echo = self._echo, []
                try:
                    await loop.run_in_executor(spool.executor, spool.sync)
                except OSError:
                    log.exception("audit spool fsync failed; retrying")
                    self._echo[:0] = echo
                else:
                    if self._shipper is not None:
                        self._shipper.flushed.set()
                    if echo:
                        try:
                            await asyncio.to_thread(self._stdout.write, b"".join(echo))
                        except OSError:
                            log.exception("audit stdout sink failed")
            if closing:
                return
            await asyncio.sleep(interval)

    async def _sample_loop(self) -> None:
        while True:
            await asyncio.sleep(SAMPLE_INTERVAL_S)
            try:
                await self.refresh_metrics()
                await self._share_stats()
            except Exception:  # a failed sample must not end sampling for the process's life
                log.exception("sampling metrics failed")

    async def refresh_metrics(self) -> None:
        """Read every sampled metric now (the /metrics handler calls it before answering)."""
        await self.sampler.refresh()

    async def _share_stats(self) -> None:
        """Write this worker's /stats windows for the others and read theirs (multi-worker only)."""
        shared = self._metrics.shared_dir
        if shared is None:
            return
        export = {**self._stats.export(), "at": time.time(), "in_flight": self._in_flight()}
        await asyncio.to_thread(multiproc.write_stats, shared, export)
        await self.read_peers()

    def instance_exports(self) -> list[dict]:
        """This instance's windows (this worker's and the other workers'), for the fleet's alerts."""
        return [self._stats.export(), *self._peers]

    @staticmethod
    def merged_windows(exports: list[dict]) -> dict:
        """`windows` and `usage_1h` of /stats over many instances' exports."""
        snap = RollingStats().snapshot(peers=exports)
        return {"windows": snap["windows"], "usage_1h": snap["usage_1h"]}

    async def read_peers(self) -> None:
        """The other workers' /stats windows, read now (the /stats handler calls it before answering)."""
        if self._metrics.shared_dir is not None:
            self._peers = await asyncio.to_thread(multiproc.read_peer_stats, self._metrics.shared_dir)

    async def close(self) -> None:
        """Drain the queue into the spool, fsync it, and ship what the sinks accept within
        close_timeout_s; what is left stays in the spool for the next start."""
        if self._sampling is not None:
            self._sampling.cancel()
            await asyncio.gather(self._sampling, return_exceptions=True)
            self._sampling = None
            try:  # the last second's counts of a stopping worker (its successor's windows need them)
                await self.refresh_metrics()
                await self._share_stats()
            except Exception:
                log.exception("final metrics sample failed")
        await self.history.close()
        if self._drift_task is not None:
            self._drift_task.cancel()
            await asyncio.gather(self._drift_task, return_exceptions=True)
            self._drift_task = None
        if self._spool is None:
            return
        self._closing = True
        flusher, shipper = self._tasks
        await flusher
        assert self._shipper is not None
        await self._shipper.finish(shipper, self.cfg.close_timeout_s)
        spool, loop = self._spool, asyncio.get_running_loop()
        # Final anchors for the sinks that took everything; the rest is shipped and anchored next start.
        await self._anchors.stop({s.name for s in self._durable if spool.backlog(s.name) == 0})
        spool.active.active = False  # nothing more is written: a fully shipped last segment can go too
        await loop.run_in_executor(spool.executor, spool.collect)
        for sink in self._durable:
            await sink.close()
        await loop.run_in_executor(spool.executor, spool.close)
        await asyncio.to_thread(spool.shutdown)
        self._spool = None

    # -- read side --
    def stats(self) -> dict:
        """This instance's /stats: this worker's windows merged with the other workers' (as last read)."""
        peers = self._peers
        out = self._stats.snapshot(peers=peers)
        now = time.time()
        live = [p for p in peers if now - p.get("at", 0) < PEER_LIVE_S]
        out["workers"] = 1 + len(live)
        out["in_flight"] = self._in_flight() + sum(p.get("in_flight", 0) for p in live)
        out["audit"] = {
            "writer": self.writer,
            "queue_depth": len(self._pending),
            "next_seq": self._chain.seq,
            "backlog_bytes": {s.name: self._spool.backlog(s.name) for s in self._durable} if self._spool else {},
        }
        return out

    def metrics_text(self) -> bytes:
        return self._metrics.text()


async def _history_client(url: str):
    import redis.asyncio as aioredis

    from gateway.records.sinks import _driver_info, split_cluster_url

    opts: dict = {"socket_timeout": 2.0, "socket_connect_timeout": 2.0}
    info = await asyncio.to_thread(_driver_info)
    if info is not None:
        opts["driver_info"] = info
    url, cluster = split_cluster_url(url)
    return (aioredis.RedisCluster if cluster else aioredis.Redis).from_url(url, **opts)


def _spool_user_key(directory: str) -> bytes:
    """A random key kept beside the spool, so user hashes stay stable across restarts."""
    path = os.path.join(directory, "user-hash.key")
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except FileNotFoundError:
        key = secrets.token_bytes(32)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(key)
        return key
