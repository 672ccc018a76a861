"""Request ids and W3C trace context: read from the caller (sanitised), or minted."""

from __future__ import annotations

import os
import re

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


def request_id(incoming: str | None, trust: bool) -> str:
    """The caller's x-request-id when it is safe to log and echo, else a new one."""
    if trust and incoming and _REQUEST_ID.match(incoming):
        return incoming
    return "req_" + os.urandom(12).hex()


def trace(incoming: str | None) -> tuple[str, str, str | None, str]:
    """(trace id, our span id, parent span id, flags) from a traceparent header, or a new trace."""
    span = os.urandom(8).hex()
    if incoming:
        m = _TRACEPARENT.match(incoming.strip().lower())
        if m and m.group(1) != "0" * 32 and m.group(2) != "0" * 16:
            return m.group(1), span, m.group(2), m.group(3)
    return os.urandom(16).hex(), span, None, "01"
