"""Virtual keys: the `[[keys]]` policy tables, and authenticating a request against them.

Secrets are held only as SHA-256 digests. A presented key is hashed once and looked up; the match
is confirmed with a constant-time comparison. A plain `key = "..."` is accepted for the demo only and
warned about at start-up.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import time
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from pydantic import Field, model_validator

from gateway import reasons
from gateway.config.validate import ConfigError, SourcedRule, Strict, validate_rule
from gateway.context import Principal
from gateway.errors import Unauthorized

if TYPE_CHECKING:
    from gateway.managed_keys import ManagedKeys

log = logging.getLogger("gateway.auth")


class KeyRule(Strict):
    id: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:-]+$")
    key_sha256: str | None = Field(None, pattern=r"^[0-9a-f]{64}$")
    key_env: str | None = None
    key: str | None = Field(None, min_length=8)
    team: str | None = None
    user: str | None = None
    models: list[str] = []
    tags: list[str] = []
    expires: datetime | None = None
    description: str | None = None

    @model_validator(mode="after")
    def _one_secret(self) -> "KeyRule":
        given = [n for n in ("key_sha256", "key_env", "key") if getattr(self, n) is not None]
        if len(given) != 1:
            raise ValueError("exactly one of key_sha256, key_env or key")
        return self


def hash_key(secret: str) -> bytes:
    # surrogateescape: aiohttp decodes header bytes that are not UTF-8 into lone surrogates; such a
    # key is simply unknown (401), not an encoding error (500).
    return hashlib.sha256(secret.encode("utf-8", "surrogateescape")).digest()


class KeyTable:
    """The `[[keys]]` of the policy files, then (for a secret none of them has) the keys managed over
    the admin API (`managed`, kept by the process across reloads)."""

    def __init__(self, entries: dict[bytes, Principal], managed: ManagedKeys | None = None) -> None:
        self.managed = managed
        # Indexed by a digest prefix; the full digest is then compared in constant time.
        self._by_prefix: dict[bytes, list[tuple[bytes, Principal]]] = {}
        for digest, principal in entries.items():
            self._by_prefix.setdefault(digest[:8], []).append((digest, principal))
        self._count = len(entries)

    @classmethod
    def compile(cls, rules: list[SourcedRule], aliases: Mapping[str, object],
                managed: ManagedKeys | None = None) -> "KeyTable":
        entries: dict[bytes, Principal] = {}
        ids: set[str] = set()
        for rule in rules:
            k = validate_rule(KeyRule, rule)
            if k.id in ids:
                raise ConfigError(rule.file, f"{rule.key}.id", f"a unique key id ('{k.id}' is used twice)")
            ids.add(k.id)
            for m in k.models:
                if m not in aliases:
                    raise ConfigError(rule.file, f"{rule.key}.models", f"declared model aliases (no '{m}')")
            if k.key_sha256:
                digest = bytes.fromhex(k.key_sha256)
            elif k.key_env:
                secret = os.environ.get(k.key_env)
                if not secret:
                    raise ConfigError(rule.file, f"{rule.key}.key_env", f"the environment variable {k.key_env} to be set")
                digest = hash_key(secret)
            else:
                log.warning("key %s has a plain secret in %s: use key_sha256 or key_env outside a demo", k.id, rule.file)
                digest = hash_key(k.key or "")
            expires = None
            if k.expires is not None:
                exp = k.expires if k.expires.tzinfo else k.expires.replace(tzinfo=timezone.utc)
                expires = exp.timestamp()
            entries[digest] = Principal(key_id=k.id, team=k.team, user=k.user, models=tuple(k.models),
                                        tags=tuple(k.tags), expires_at=expires)
        return cls(entries, managed)

    def __len__(self) -> int:
        return self._count

    def principals(self) -> list[Principal]:
        return [p for entries in self._by_prefix.values() for _, p in entries]

    def authenticate(self, headers: Mapping[str, str]) -> Principal:
        secret = presented_key(headers)
        if not secret:
            raise Unauthorized("missing API key: send it as 'Authorization: Bearer <key>'", reason=reasons.AUTH_MISSING_KEY)
        digest = hash_key(secret)
        principal = None
        for stored, candidate in self._by_prefix.get(digest[:8], ()):
            if hmac.compare_digest(stored, digest):
                principal = candidate
        if principal is None:
            principal = self._managed(digest)
        if principal.expires_at is not None and time.time() >= principal.expires_at:
            raise Unauthorized("this API key has expired", code="expired_api_key", reason=reasons.AUTH_EXPIRED_KEY)
        return principal


    def _managed(self, digest: bytes) -> Principal:
        match = self.managed.lookup(digest) if self.managed is not None else None
        if match is None:
            raise Unauthorized("invalid API key", reason=reasons.AUTH_UNKNOWN_KEY)
        if match.revoked:
            raise Unauthorized("this API key has been revoked", code="revoked_api_key", reason=reasons.AUTH_REVOKED_KEY)
        if match.not_after is not None and time.time() >= match.not_after:
            raise Unauthorized("this API key was replaced by a rotation and its grace period is over",
                               code="expired_api_key", reason=reasons.AUTH_EXPIRED_KEY)
        return match.principal

    def ids(self) -> set[str]:
        return {p.key_id for p in self.principals()}


def presented_key(headers: Mapping[str, str]) -> str | None:
    auth = headers.get("Authorization")
    if auth:
        scheme, _, value = auth.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    return headers.get("x-api-key") or headers.get("api-key")
