"""Signed admin sessions for the dashboard's login form: the cookie holds a token, never the admin key.

A token is `v1.<expiry>.<nonce>.<signature>`, the signature an HMAC-SHA256 over the rest with a key
derived from the admin key. Deriving it (rather than a random per-process secret) lets every worker
and every instance that shares the admin key accept the same cookie, and rotating the admin key ends
every session. Tokens are stateless: logging out clears the browser's cookie only.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time

COOKIE = "gateway_admin_session"
TTL_S = 12 * 3600
_PURPOSE = b"llm-gateway admin session v1"


def _signing_key(admin_key: str) -> bytes:
    return hmac.new(admin_key.encode(), _PURPOSE, hashlib.sha256).digest()


def _sign(admin_key: str, payload: str) -> str:
    return hmac.new(_signing_key(admin_key), payload.encode(), hashlib.sha256).hexdigest()


def mint(admin_key: str, now: float | None = None) -> str:
    now = time.time() if now is None else now
    payload = f"v1.{int(now) + TTL_S}.{secrets.token_hex(16)}"
    return f"{payload}.{_sign(admin_key, payload)}"


def valid(token: str, admin_key: str, now: float | None = None) -> bool:
    """True for a token this admin key signed that has not expired; compared in constant time."""
    parts = token.split(".")
    if len(parts) != 4 or parts[0] != "v1" or not parts[1].isdigit():
        return False
    payload, sig = token.rsplit(".", 1)
    if not hmac.compare_digest(sig.encode("utf-8", "replace"), _sign(admin_key, payload).encode()):
        return False
    now = time.time() if now is None else now
    return now < int(parts[1]) <= now + TTL_S + 60
