"""A cheap revocation check for the auth stage: at most one store query per key per `ttl` seconds.

Revocation itself lives in the store (`revoke_key` / `is_revoked`: a Redis set or an in-memory
set), so revoking a key on one gateway reaches every gateway sharing the store within `ttl`.

With the store unreachable, one rule: an outage never un-revokes a key, so a "revoked" answer stands;
a "not revoked" answer stands for `grace_s` after the store gave it; past that, and for a key the store
has not answered for yet, `on_store_error` decides: "closed" refuses with 503 (and Retry-After),
"open" serves the key and counts it in `fail_open_total`.
"""

from __future__ import annotations

import logging
import time

from gateway import reasons
from gateway.errors import StoreUnavailable
from gateway.store.base import Store, StoreError

log = logging.getLogger("gateway.store")


class RevocationCache:
    def __init__(
        self, store: Store, *, ttl: float = 1.0, grace_s: float = 30.0, on_store_error: str = "closed",
        max_keys: int = 100_000,
    ) -> None:
        self._store = store
        self._ttl = ttl
        self._grace = grace_s
        self._closed = on_store_error == "closed"
        self._max = max_keys
        self._seen: dict[str, tuple[bool, float]] = {}  # key_id -> (revoked, when the store said so)
        self.fail_open_total = 0
        self._down = False  # the last query failed: logged once when the outage starts and once when it ends

    async def is_revoked(self, key_id: str) -> bool:
        now = time.monotonic()
        hit = self._seen.get(key_id)
        if hit is not None and now - hit[1] < self._ttl:
            return hit[0]
        try:
            revoked = await self._store.is_revoked(key_id)
        except StoreError as exc:
            if not self._down:
                self._down = True
                log.warning("the shared store is unavailable: %s", exc, extra={"event": "store_unavailable",
                                                                              "reason": str(exc)})
            if hit is not None and (hit[0] or now - hit[1] < self._grace):
                return hit[0]
            if self._closed:
                raise StoreUnavailable("the gateway's shared store is unavailable, so the key's revocation "
                                       "cannot be checked", reason=reasons.STORE_UNAVAILABLE) from None
            self.fail_open_total += 1
            return False
        if self._down:
            self._down = False
            log.info("the shared store answers again", extra={"event": "store_recovered"})
        if len(self._seen) >= self._max:
            self._seen.clear()  # bounded; a refill costs one query per key
        self._seen[key_id] = (revoked, now)
        return revoked

    def forget(self, key_id: str) -> None:
        """Drop the cached answer (after revoking through this gateway)."""
        self._seen.pop(key_id, None)
