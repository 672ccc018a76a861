"""Request ids and W3C trace context: read from the caller (sanitised), or minted."""

from __future__ import annotations

import os
import re

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


def new_ids(incoming_id: str | None, traceparent: str | None, trust: bool) -> tuple[str, str, str, str | None]:
    """(request id, trace id, our span id, parent span id) with one read of the random source."""
    rnd = os.urandom(36).hex()
    rid = incoming_id if trust and incoming_id and _REQUEST_ID.match(incoming_id) else "req_" + rnd[48:]
    if traceparent:
        m = _TRACEPARENT.match(traceparent.strip().lower())
        if m and m.group(1) != "0" * 32 and m.group(2) != "0" * 16:
            return rid, m.group(1), rnd[32:48], m.group(2)
    return rid, rnd[:32], rnd[32:48], None
