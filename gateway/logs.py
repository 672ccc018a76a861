"""Logging set-up for the `gateway` command and its workers: the gateway's operational log on stderr.

Format: one JSON object per line (docs/operations.md, "Logs", lists the keys), or plain text lines
when stderr is a terminal. `GATEWAY_LOG_FORMAT` (`json`, `text`, `auto`; `gateway serve --log-format`
sets it, so workers inherit it) wins over the config's `[logs] format`. Levels: the gateway's own
loggers at GATEWAY_LOG_LEVEL (default INFO), third-party libraries at WARNING unless that level is
DEBUG (Presidio alone logs every recognizer it loads at INFO, once per analyzer, on every start).
"""

from __future__ import annotations

import logging
import os
import sys
from datetime import datetime, timezone

import orjson

# Attributes every LogRecord has: anything else on a record came from `extra=` and is a field of the line.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "taskName"}
# Libraries that log at INFO on start-up or per request; kept at WARNING (DEBUG shows them).
_QUIET = ("aiohttp", "aiohttp.access", "presidio-analyzer", "presidio_analyzer", "spacy", "urllib3", "asyncio",
          "opentelemetry", "redis", "tldextract", "filelock", "httpx")


class JsonFormatter(logging.Formatter):
    """`{"time", "level", "logger", "message", "pid"}`, the record's `extra` fields, and `exception`
    (the traceback) when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and key not in out:
                out[key] = value
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            out["exception"] = record.exc_text
        return orjson.dumps(out, default=str).decode()


def log_format(configured: str = "auto") -> str:
    """"json" or "text": the environment's choice, else the config's, else by whether stderr is a terminal."""
    fmt = os.environ.get("GATEWAY_LOG_FORMAT", "").lower() or configured
    if fmt not in ("json", "text"):
        fmt = "text" if sys.stderr.isatty() else "json"
    return fmt


def setup_logging(configured: str = "auto") -> None:
    level = os.environ.get("GATEWAY_LOG_LEVEL", "INFO").upper()
    handler = logging.StreamHandler(sys.stderr)
    if log_format(configured) == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.WARNING if level != "DEBUG" else logging.DEBUG)
    logging.getLogger("gateway").setLevel(level)
    if level != "DEBUG":
        for name in _QUIET:
            logging.getLogger(name).setLevel(logging.WARNING)
