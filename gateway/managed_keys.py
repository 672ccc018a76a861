"""Keys managed over the admin API: their documents in the store, and this process's copy of them.

A document (JSON, one per key id, `KeyDoc`) holds what a `[[keys]]` rule holds, the key's own limits,
whether it is revoked, and the SHA-256 digests of its secrets, each with the time it stops being
accepted (a secret replaced by a rotation keeps working for the grace period the rotation stated).
Never a secret.

Every write bumps the store's version counter. Each process keeps the documents compiled into a
digest -> principal table and polls the version every `POLL_S` (one GET, off the request path); when
it moved, it loads the documents and swaps the table in. Authentication reads a local dict (O(1),
no store round trip), so a change made through one gateway reaches every gateway sharing the store
within `POLL_S` plus one load. On the memory store the documents live in the process: they are lost
at restart, and each worker of `--workers N` has its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, ValidationError

from gateway.config.validate import ConfigError
from gateway.context import Principal
from gateway.limits.key_limits import compile_key_limits
from gateway.store.base import Store, StoreError

log = logging.getLogger("gateway.managed_keys")

POLL_S = 0.25


class SecretDigest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    sha256: str
    created_at: float
    not_after: float | None = None  # unix seconds; None: until rotated or revoked


class KeyDoc(BaseModel):
    """A managed key as the store holds it (unknown fields from a newer gateway are ignored)."""

    model_config = ConfigDict(extra="ignore")

    id: str
    team: str | None = None
    user: str | None = None
    models: list[str] = []
    tags: list[str] = []
    expires_at: float | None = None
    description: str | None = None
    limits: dict[str, Any] | None = None
    revoked: bool = False
    secrets: list[SecretDigest] = []
    created_at: float = 0.0
    updated_at: float = 0.0

    def dump(self) -> bytes:
        return self.model_dump_json().encode()

    def live_secrets(self, now: float) -> list[SecretDigest]:
        return [s for s in self.secrets if s.not_after is None or s.not_after > now]


@dataclass(frozen=True, slots=True)
class Match:
    principal: Principal
    not_after: float | None  # this secret's end (a rotated-out secret), else None
    revoked: bool


class ManagedKeys:
    """This process's table of managed keys, kept in step with the store."""

    def __init__(self) -> None:
        self._by_prefix: dict[bytes, list[tuple[bytes, Match]]] = {}
        self._docs: dict[str, KeyDoc] = {}
        self._principals: dict[str, Principal] = {}
        self._version = -1
        self._store: Store | None = None
        self._task: asyncio.Task[None] | None = None
        self._failing = False
        self._utc: ZoneInfo | None = None

    # -- the request path --------------------------------------------------------------------------

    def lookup(self, digest: bytes) -> Match | None:
        """The key whose secret has this SHA-256 digest (constant-time comparison), or None."""
        found = None
        for stored, match in self._by_prefix.get(digest[:8], ()):
            if hmac.compare_digest(stored, digest):
                found = match
        return found

    # -- reads for the admin API -------------------------------------------------------------------

    def get(self, key_id: str) -> KeyDoc | None:
        return self._docs.get(key_id)

    def docs(self) -> list[KeyDoc]:
        return sorted(self._docs.values(), key=lambda d: d.id)

    def principals(self) -> list[Principal]:
        return list(self._principals.values())

    # -- keeping in step with the store ------------------------------------------------------------

    async def start(self, store: Store, poll_s: float = POLL_S) -> None:
        self._store = store
        # A key's budget compiles to a rule in UTC; ZoneInfo reads its file once, so load it off the loop
        # and hold it (ZoneInfo's cache then answers every later compile without I/O).
        self._utc = await asyncio.to_thread(ZoneInfo, "UTC")
        try:
            await self.refresh()
        except StoreError as exc:
            log.warning("managed keys not loaded at start-up (retrying every %ss): %s", poll_s, exc)
        self._task = asyncio.create_task(self._poll(poll_s), name="managed-keys-poll")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _poll(self, poll_s: float) -> None:
        while True:
            await asyncio.sleep(poll_s)
            try:
                await self.refresh()
            except StoreError as exc:
                if not self._failing:
                    log.warning("managed keys: the store is unavailable, serving the last table: %s", exc)
                self._failing = True
            else:
                if self._failing:
                    log.info("managed keys: the store answers again")
                self._failing = False

    async def refresh(self) -> None:
        """Load the documents when the store's version moved (StoreError when it cannot be read)."""
        store = self._store
        if store is None:
            return
        version = await store.keys_version()
        if version == self._version:
            return
        raw = await store.keys_load()
        self._install(raw)
        self._version = version

    async def write(self, doc: KeyDoc, *, create: bool = False) -> bool:
        """Store a document (False: `create` and the id exists) and take it into this process at once."""
        if self._store is None:
            raise StoreError("the managed keys are not started")
        written = await self._store.key_put(doc.id, doc.dump(), create=create)
        await self.refresh()
        return written

    def _install(self, raw: dict[str, bytes]) -> None:
        docs: dict[str, KeyDoc] = {}
        principals: dict[str, Principal] = {}
        by_prefix: dict[bytes, list[tuple[bytes, Match]]] = {}
        for key_id, blob in raw.items():
            try:
                doc = KeyDoc.model_validate_json(blob)
                principal = principal_of(doc)
            except (ValidationError, ConfigError, ValueError) as exc:
                log.error("managed key %r has a document this gateway cannot read; it is refused: %s", key_id, exc)
                continue
            docs[doc.id] = doc
            principals[doc.id] = principal
            for s in doc.secrets:
                digest = bytes.fromhex(s.sha256)
                by_prefix.setdefault(digest[:8], []).append((digest, Match(principal, s.not_after, doc.revoked)))
        self._docs, self._principals, self._by_prefix = docs, principals, by_prefix


def principal_of(doc: KeyDoc) -> Principal:
    return Principal(key_id=doc.id, team=doc.team, user=doc.user, models=tuple(doc.models), tags=tuple(doc.tags),
                     expires_at=doc.expires_at, limits=compile_key_limits(doc.id, doc.limits))
