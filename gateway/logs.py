"""Logging set-up for the `gateway` command and its workers: the gateway's own loggers at
GATEWAY_LOG_LEVEL (default INFO), third-party libraries at WARNING unless that level is DEBUG (Presidio
alone logs every recognizer it loads at INFO, once per analyzer, on every start)."""

from __future__ import annotations

import logging
import os
import sys


def setup_logging() -> None:
    level = os.environ.get("GATEWAY_LOG_LEVEL", "INFO").upper()
    logging.basicConfig(level=logging.WARNING if level != "DEBUG" else logging.DEBUG, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("gateway").setLevel(level)
