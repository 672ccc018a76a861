"""The request log's query: its filters, their parsing (a clear error per bad value), the cursor, and the
row each index serves for the log table.

Both indexes (`log_index.SqliteLogIndex` for the file sink, `log_redis.RedisLogIndex` for the Redis
stream) take a `LogQuery` and answer a `LogPage`: rows newest first (by the record's own `time`, ties by
entry), and an opaque cursor for the next page. Request ids come from callers and are not unique: a
`request_id` filter returns every record with that id.
"""

from __future__ import annotations

import base64
import binascii
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

MAX_LIMIT = 500
DEFAULT_LIMIT = 50
MAX_VALUE = 256
ACTIONS = ("allow", "flag", "redact", "mask", "hash", "pseudonymize", "refuse", "block")
_STATUS = re.compile(r"^(?:[1-5]xx|0|[1-5]\d\d)$")
_REASON = re.compile(r"^[a-z_]+(?:\.[a-z_]+)?$")
_AGE = {"s": 1, "m": 60, "h": 3600, "d": 86400}
STATUS_PATTERN = _STATUS  # what a status filter may be (the CLI's --status checks with it too)


class BadFilter(ValueError):
    """A filter value the log cannot use; `param` names it (the 400's `param`)."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(message)
        self.param = param


@dataclass(frozen=True, slots=True)
class LogQuery:
    since: float | None = None  # unix seconds, inclusive
    until: float | None = None  # unix seconds, exclusive
    request_id: str | None = None
    key: str | None = None
    team: str | None = None
    alias: str | None = None
    status: str | None = None  # "4xx", "429" or "0" (no response sent)
    reason: str | None = None  # a reason code, or its family ("auth" matches "auth.unknown_key")
    action: str | None = None  # guardrail action
    limit: int = DEFAULT_LIMIT
    cursor: tuple[int, str] | None = None  # (time in microseconds, entry) of the last row already served


@dataclass(slots=True)
class LogPage:
    rows: list[dict] = field(default_factory=list)
    next: str | None = None  # the cursor of the next page; None at the end
    scanned: int = 0  # index entries read to build the page (the benchmark reports it)


def status_matches(status: int, wanted: str) -> bool:
    if wanted.endswith("xx"):
        return status // 100 == int(wanted[0])
    return status == int(wanted)


def reason_matches(reason: str | None, wanted: str) -> bool:
    return reason is not None and (reason == wanted or reason.startswith(wanted + "."))


def reason_family(reason: str | None) -> str | None:
    return reason.split(".", 1)[0] if reason else None


def matches(rec: Mapping, q: LogQuery) -> bool:
    """The whole filter over a parsed record (what an index could not narrow down itself)."""
    if rec.get("type") != "request":
        return False
    t = rec.get("time", 0.0)
    if q.since is not None and t < q.since:
        return False
    if q.until is not None and t >= q.until:
        return False
    for name, attr in (("request_id", "request_id"), ("key_id", "key"), ("team", "team"), ("alias", "alias"),
                       ("guardrail_action", "action")):
        wanted = getattr(q, attr)
        if wanted is not None and rec.get(name) != wanted:
            return False
    if q.status is not None and not status_matches(int(rec.get("status") or 0), q.status):
        return False
    return q.reason is None or reason_matches(rec.get("block_reason"), q.reason)


def row_of(entry: str, rec: Mapping) -> dict:
    """What the log table shows for one record (the detail endpoint serves the whole record)."""
    return {
        "entry": entry, "time": rec.get("time"), "request_id": rec.get("request_id"), "key_id": rec.get("key_id"),
        "team": rec.get("team"), "alias": rec.get("alias"), "provider": rec.get("provider"),
        "model": rec.get("model"), "route": rec.get("route"), "stream": rec.get("stream"),
        "status": rec.get("status"), "error_code": rec.get("error_code"), "reason": rec.get("block_reason"),
        "guardrail_action": rec.get("guardrail_action"), "entities": rec.get("entities") or {},
        "input_tokens": rec.get("input_tokens"), "output_tokens": rec.get("output_tokens"),
        "cost_usd": rec.get("cost_usd"), "latency_ms": rec.get("latency_ms"), "ttft_ms": rec.get("ttft_ms"),
        "payload": "payload" in rec,
    }


def encode_cursor(t_us: int, entry: str) -> str:
    return base64.urlsafe_b64encode(f"{t_us}|{entry}".encode()).decode().rstrip("=")


def decode_cursor(text: str) -> tuple[int, str]:
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
        t, entry = raw.split("|", 1)
        if not t.isdigit() or not entry or len(entry) > MAX_VALUE:
            raise ValueError
        return int(t), entry
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise BadFilter("cursor", "'cursor' is not a cursor this endpoint returned") from None


def _time(param: str, text: str, now: float) -> float:
    """Unix seconds, ISO 8601, or an age (30s, 15m, 2h, 7d)."""
    if text[-1:] in _AGE and text[:-1].isdigit():
        return now - int(text[:-1]) * _AGE[text[-1]]
    try:
        return float(text)
    except ValueError:
        pass
    import datetime as dt

    try:
        t = dt.datetime.fromisoformat(text)
    except ValueError:
        raise BadFilter(param, f"'{param}' must be unix seconds, an ISO 8601 time or an age such as 15m, 24h, 7d") from None
    return (t if t.tzinfo else t.replace(tzinfo=dt.timezone.utc)).timestamp()


KNOWN = ("since", "until", "request_id", "key", "team", "alias", "status", "reason", "action", "limit", "cursor")


def parse_query(params: Mapping[str, str], now: float | None = None) -> LogQuery:
    """A `LogQuery` from URL query parameters; `BadFilter` names the first one that cannot be used."""
    now = time.time() if now is None else now
    for name in params:
        if name not in KNOWN:
            raise BadFilter(name, f"unknown filter '{name}'; known: {', '.join(KNOWN)}")
    values: dict = {}
    for name in ("request_id", "key", "team", "alias"):
        v = params.get(name)
        if v is not None:
            if not v or len(v) > MAX_VALUE:
                raise BadFilter(name, f"'{name}' must be 1 to {MAX_VALUE} characters")
            values[name] = v
    for name in ("since", "until"):
        v = params.get(name)
        if v is not None:
            values[name] = _time(name, v.strip(), now)
    status = params.get("status")
    if status is not None:
        if not _STATUS.match(status):
            raise BadFilter("status", "'status' must be a class (2xx, 4xx, 5xx), a code such as 429, or 0")
        values["status"] = status
    reason = params.get("reason")
    if reason is not None:
        if not _REASON.match(reason):
            raise BadFilter("reason", "'reason' must be a reason code (rate_limit.requests) or its family (rate_limit)")
        values["reason"] = reason
    action = params.get("action")
    if action is not None:
        if action not in ACTIONS:
            raise BadFilter("action", f"'action' must be one of {', '.join(ACTIONS)}")
        values["action"] = action
    limit = params.get("limit")
    if limit is not None:
        if not limit.isdigit() or not 1 <= int(limit) <= MAX_LIMIT:
            raise BadFilter("limit", f"'limit' must be a whole number from 1 to {MAX_LIMIT}")
        values["limit"] = int(limit)
    cursor = params.get("cursor")
    if cursor is not None:
        values["cursor"] = decode_cursor(cursor)
    return LogQuery(**values)
