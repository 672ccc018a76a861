"""A cheap revocation check for the auth stage: at most one store query per key per `ttl` seconds.

Revocation itself lives in the store (`revoke_key` / `is_revoked`: a Redis set or an in-memory
set), so revoking a key on one gateway reaches every gateway sharing the store within `ttl`.
"""

from __future__ import annotations

import time

from gateway.errors import StoreUnavailable
from gateway.store.base import Store, StoreError


class RevocationCache:
    def __init__(
        self, store: Store, *, ttl: float = 1.0, on_store_error: str = "closed", max_keys: int = 100_000
    ) -> None:
        self._store = store
        self._ttl = ttl
        self._closed = on_store_error == "closed"
        self._max = max_keys
        self._seen: dict[str, tuple[bool, float]] = {}  # key_id -> (revoked, checked at)
        self.fail_open_total = 0

    async def is_revoked(self, key_id: str) -> bool:
        now = time.monotonic()
        hit = self._seen.get(key_id)
        if hit is not None and now - hit[1] < self._ttl:
            return hit[0]
        try:
            revoked = await self._store.is_revoked(key_id)
        except StoreError:
            if self._closed:
                raise StoreUnavailable("the gateway's shared store is unavailable") from None
            self.fail_open_total += 1
            return hit[0] if hit is not None else False
        if len(self._seen) >= self._max:
            self._seen.clear()  # bounded; a refill costs one query per key
        self._seen[key_id] = (revoked, now)
        return revoked

    def forget(self, key_id: str) -> None:
        """Drop the cached answer (after revoking through this gateway)."""
        self._seen.pop(key_id, None)
