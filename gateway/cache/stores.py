"""Where cache entries live, behind one small interface (`Entries`): the process's memory (a bounded
LRU with per-entry expiry) or the shared Redis store (each entry a key with a TTL).

Values are the bytes of `gateway.cache.entry.dumps`: answers redacted at rest, never a raw answer.
A store that fails is a miss (lookups) or a lost entry (writes), logged, never a failed request.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from gateway.store.base import StoreError

if TYPE_CHECKING:
    from gateway.store.redis_store import RedisStore

log = logging.getLogger(__name__)

KEY_PREFIX = "gw:cache:"
LOCK_PREFIX = "gw:cache-lock:"


class Entries(Protocol):
    shared: bool

    async def get(self, key: str) -> bytes | None: ...

    async def put(self, key: str, value: bytes, ttl_s: float) -> None: ...

    async def lock(self, key: str, ttl_s: float) -> bool:
        """Across processes: True when this caller may ask the upstream (always True for memory)."""

    async def unlock(self, key: str) -> None: ...


class MemoryEntries:
    """Least recently used first out, bounded in entries and in bytes; an expired entry is a miss."""

    shared = False

    def __init__(self, max_entries: int, max_bytes: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._clock = clock
        self._data: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self.bytes = 0
        self.evictions = 0

    def __len__(self) -> int:
        return len(self._data)

    async def get(self, key: str) -> bytes | None:
        item = self._data.get(key)
        if item is None:
            return None
        if item[0] <= self._clock():
            self._drop(key)
            return None
        self._data.move_to_end(key)
        return item[1]

    async def put(self, key: str, value: bytes, ttl_s: float) -> None:
        if len(value) > self.max_bytes:
            return
        if key in self._data:
            self._drop(key)
        self._data[key] = (self._clock() + ttl_s, value)
        self.bytes += len(value)
        while len(self._data) > self.max_entries or self.bytes > self.max_bytes:
            oldest = next(iter(self._data))
            self._drop(oldest)
            self.evictions += 1

    async def lock(self, key: str, ttl_s: float) -> bool:
        return True

    async def unlock(self, key: str) -> None:
        pass

    def _drop(self, key: str) -> None:
        _, value = self._data.pop(key)
        self.bytes -= len(value)


class SharedEntries:
    """Entries in the Redis store, each with the rule's TTL; a short lock per key across gateways."""

    shared = True

    def __init__(self, store: RedisStore) -> None:
        self.store = store

    async def get(self, key: str) -> bytes | None:
        try:
            return await self.store.cache_get(KEY_PREFIX + key)
        except StoreError as exc:
            log.warning("response cache: lookup failed, serving as a miss: %s", exc)
            return None

    async def put(self, key: str, value: bytes, ttl_s: float) -> None:
        try:
            await self.store.cache_set(KEY_PREFIX + key, value, int(ttl_s * 1000))
        except StoreError as exc:
            log.warning("response cache: storing an entry failed: %s", exc)

    async def lock(self, key: str, ttl_s: float) -> bool:
        try:
            return await self.store.cache_lock(LOCK_PREFIX + key, int(ttl_s * 1000))
        except StoreError:
            return True  # no lock to be had: ask the upstream rather than wait on nothing

    async def unlock(self, key: str) -> None:
        try:
            await self.store.cache_unlock(LOCK_PREFIX + key)
        except StoreError:
            pass  # it expires
