"""The `[audit]` section of the main config: strict raw schema, validated once at start-up.

Sinks are a tagged array (`[[audit.sinks]] type = "stdout" | "redis" | "file"`), at most one of each.
"""

from __future__ import annotations

import os
from typing import Annotated, Literal, Union

from pydantic import Field

from gateway.config.validate import ConfigError, Strict, validate


class StdoutSink(Strict):
    type: Literal["stdout"]


class RedisSink(Strict):
    type: Literal["redis"]
    # Defaults to [store] url; a memory:// store means no Redis sink can run.
    url: str | None = None
    stream: str = "gateway:audit"
    # Approximate MAXLEN on each XADD; 0 keeps everything. Trimming this way writes no checkpoint, so
    # `gateway audit verify` reports the trimmed head; prefer `gateway audit trim`, which does.
    maxlen: int = Field(0, ge=0)
    batch: int = Field(500, ge=1, le=10_000)


class FileSink(Strict):
    type: Literal["file"]
    path: str
    max_bytes: int = Field(100 * 1024 * 1024, ge=4096)
    # Rotated files kept (path.1 .. path.N); the oldest is deleted after a checkpoint record is written.
    max_files: int = Field(10, ge=1, le=1000)


Sink = Annotated[Union[StdoutSink, RedisSink, FileSink], Field(discriminator="type")]


class AuditConfig(Strict):
    enabled: bool = True
    spool_dir: str = "var/audit/spool"
    spool_segment_bytes: int = Field(64 * 1024 * 1024, ge=4096)
    # How often the spool is fsynced. Each record is written to the spool (page cache) before its
    # response's last byte, so a process kill loses no answered request; an OS crash or power loss
    # can lose the records of the last interval.
    flush_interval_ms: float = Field(5.0, gt=0, le=1000)
    # The shipper's pace: the durable sinks (Redis stream, file) get what the spool holds at most this
    # often, in one batch per pass. Records are already durable in the spool; a shorter interval only
    # makes them visible in the sinks sooner, at a CPU cost per pass (Redis call, fsync, cursor file).
    ship_interval_ms: float = Field(50.0, gt=0, le=60_000)
    # Records held in memory, in order, while spool writes fail (disk full, I/O error), retried every
    # flush; beyond this, new records are dropped and counted in gateway_audit_dropped_total.
    queue_size: int = Field(10_000, ge=1)
    close_timeout_s: float = Field(5.0, ge=0)
    retry_backoff_s: float = Field(0.5, gt=0)
    # How often each process publishes its chains' heads outside the log (gateway.records.anchors):
    # records shipped after the last anchor of a running or killed writer are the tail that can be cut
    # without `gateway audit verify` seeing it. A clean shutdown always publishes a final anchor.
    anchor_interval_ms: float = Field(1000.0, gt=0, le=3_600_000)
    # Where the anchor files go; default <spool_dir>/anchors. Put it where whoever can edit the log
    # cannot (another volume or owner, append-only), and verify against it.
    anchor_dir: str | None = None
    # Name of an env var holding the chain key: HMAC-SHA256 instead of SHA-256 when it is set.
    hmac_key_env: str | None = None
    # Name of an env var holding the key for user hashes; unset: a random key kept in spool_dir.
    user_hash_key_env: str | None = None
    # Opt-in: store prompts and answers in the record, as the upstream and the client saw them (after
    # guardrail redaction), for this fraction of requests.
    log_payloads: bool = False
    payload_sample_rate: float = Field(1.0, ge=0, le=1)
    payload_max_bytes: int = Field(65536, ge=256)
    sinks: list[Sink] = []


def parse_audit(section: dict | None, *, file: str, base_dir: str | None = None) -> AuditConfig:
    """Validate `[audit]`; relative paths (spool, file sink) are taken relative to `base_dir`, the
    config file's folder, so a gateway finds its spool wherever it is started from."""
    cfg = validate(AuditConfig, section or {}, file=file, key="audit")
    if base_dir is not None:
        sinks = [s.model_copy(update={"path": os.path.join(base_dir, s.path)}) if s.type == "file" else s
                 for s in cfg.sinks]
        cfg = cfg.model_copy(update={"spool_dir": os.path.join(base_dir, cfg.spool_dir), "sinks": sinks,
                                     "anchor_dir": cfg.anchor_dir and os.path.join(base_dir, cfg.anchor_dir)})
    if cfg.anchor_dir is None:
        cfg = cfg.model_copy(update={"anchor_dir": os.path.join(cfg.spool_dir, "anchors")})
    kinds = [s.type for s in cfg.sinks]
    for k in set(kinds):
        if kinds.count(k) > 1:
            raise ConfigError(file, "audit.sinks", f"at most one sink of type '{k}'")
    return cfg


def sink_of(cfg: AuditConfig, kind: str):
    return next((s for s in cfg.sinks if s.type == kind), None)
