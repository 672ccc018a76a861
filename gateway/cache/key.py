"""The cache key of a request.

    sha256( version, caller API, alias, namespace, canonical body after input guardrails,
            HMAC-SHA256(deployment secret, the redacted values) unless the rule shares redacted prompts )

The canonical body is the body as it goes upstream (guardrails already rewrote it: a cached answer never
bypasses redaction), with sorted keys and without the fields that only choose how the answer is sent
(`stream`, `stream_options`), so a streamed and a whole request share an entry. The redacted values are
the original texts of the slots input guardrails changed, read before they ran: two prompts that differ
only in a redacted value get different keys, and the key does not reveal the value without the secret.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import orjson

VERSION = b"gw-cache-1"
_SEND_ONLY = ("stream", "stream_options")


def canonical(body: dict[str, Any]) -> bytes:
    if any(k in body for k in _SEND_ONLY):
        body = {k: v for k, v in body.items() if k not in _SEND_ONLY}
    return orjson.dumps(body, option=orjson.OPT_SORT_KEYS)


def redacted_digest(secret: bytes, before: list[str], after: list[str]) -> bytes:
    """Keyed digest of the texts guardrails changed (`before[i] != after[i]`); b"" when none changed."""
    changed = [b for b, a in zip(before, after) if b != a]
    if len(before) != len(after):  # a rewrite that changed the slots themselves: key on every original
        changed = before
    if not changed:
        return b""
    mac = hmac.new(secret, digestmod=hashlib.sha256)
    for text in changed:
        data = text.encode("utf-8", "surrogatepass")
        mac.update(len(data).to_bytes(8, "big"))
        mac.update(data)
    return mac.digest()


def cache_key(api: str, alias: str, namespace: str, body: dict[str, Any], redacted: bytes) -> str:
    h = hashlib.sha256(VERSION)
    for part in (api.encode(), alias.encode(), namespace.encode(), canonical(body), redacted):
        h.update(len(part).to_bytes(8, "big"))
        h.update(part)
    return h.hexdigest()
