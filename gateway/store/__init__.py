"""Shared state for limits, budgets and key revocation, behind one protocol (`base.Store`).

`open_store(url)` builds the store named by a URL at start-up: `memory://` (one process) or
`redis://` / `rediss://` (many processes; `?cluster=1` for Redis Cluster). Importing this package
does no I/O and imports no Redis client.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit, urlunsplit

from gateway.store.base import OpResult, Store, StoreError
from gateway.store.memory import MemoryStore
from gateway.store.revocation import RevocationCache

__all__ = ["MemoryStore", "OpResult", "RevocationCache", "Store", "StoreError", "open_store"]

_TRUE = {"1", "true", "yes", "on"}


def open_store(url: str, **opts) -> Store:
    """The store for `url`. Options for Redis: socket_timeout, connect_timeout, max_connections,
    cluster, split_by_slot (also accepted as `?cluster=1` in the URL)."""
    parts = urlsplit(url)
    if parts.scheme == "memory":
        return MemoryStore()
    if parts.scheme in ("redis", "rediss"):
        from gateway.store.redis_store import RedisStore

        query = parse_qs(parts.query)
        if "cluster" in query:
            opts.setdefault("cluster", query.pop("cluster")[0].lower() in _TRUE)
            rest = "&".join(f"{k}={v}" for k, vs in query.items() for v in vs)
            url = urlunsplit(parts._replace(query=rest))
        return RedisStore.from_url(url, **opts)
    raise ValueError(f"unknown store URL scheme {parts.scheme!r}: expected memory://, redis:// or rediss://")
