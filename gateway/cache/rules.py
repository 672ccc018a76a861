"""Compiled `[[cache]]` rules: which rule applies to a request, and whether the request may use it.

The first rule whose scope (keys, teams, aliases) matches decides; the choice is remembered per
(key, team, alias). A request with no rule costs that one lookup and gets no `x-gateway-cache` header.
Under a rule, a request is cached only when it is deterministic enough (`temperature` at most the rule's
`max_temperature`, one choice; embeddings always are) and its API is one the cache serves (Chat
Completions and Messages, replayed from events; Embeddings, kept as the upstream's body); otherwise it is
a `bypass` (Responses: not on the event model yet, and its answers carry upstream-stored ids and state; README
"Response cache" says what a safe cache of them needs). The caller's `Cache-Control: no-store` bypasses the cache entirely;
`no-cache` skips the lookup but stores the fresh answer.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from gateway.config.schema import CacheRule, ResponseCacheConfig
from gateway.config.validate import ConfigError, SourcedRule, validate_rule
from gateway.context import Principal

REPLAYED_APIS = frozenset({"chat", "messages"})  # APIs whose answers are on the event model
WHOLE_BODY_APIS = frozenset({"embeddings"})  # kept as the upstream's body: vectors, no text, never streamed
_SELECTION_LIMIT = 4096
_PROCESS_SECRET = os.urandom(32)


@dataclass(frozen=True, slots=True)
class Access:
    """What the caller's Cache-Control allows: read an entry, write one."""

    read: bool
    write: bool


NO_ACCESS = Access(False, False)
FULL_ACCESS = Access(True, True)


def access(cache_control: str | None) -> Access:
    if not cache_control:
        return FULL_ACCESS
    tokens = {t.strip().lower().split("=", 1)[0] for t in cache_control.split(",")}
    if "no-store" in tokens:
        return NO_ACCESS
    if "no-cache" in tokens or "max-age" in tokens and "max-age=0" in cache_control.replace(" ", "").lower():
        return Access(False, True)
    return FULL_ACCESS


def deterministic(rule: CacheRule, api: str, body: Mapping[str, Any]) -> bool:
    if api in WHOLE_BODY_APIS:
        return True  # nothing is sampled
    temperature = body.get("temperature", 1.0)
    if temperature is None:
        temperature = 1.0
    if not isinstance(temperature, (int, float)) or isinstance(temperature, bool) or temperature > rule.max_temperature:
        return False
    n = body.get("n")
    return n is None or n == 1


class CacheRules:
    def __init__(self, rules: tuple[CacheRule, ...], cfg: ResponseCacheConfig, secret: bytes) -> None:
        self.rules = rules
        self.cfg = cfg
        self.secret = secret
        self._chosen: dict[tuple[str | None, str | None, str | None], CacheRule | None] = {}

    @classmethod
    def compile(cls, rules: Iterable[SourcedRule], cfg: ResponseCacheConfig, *, store_url: str,
                file: str) -> CacheRules | None:
        compiled: list[CacheRule] = []
        seen: dict[str, str] = {}
        shared_ok = store_url.startswith(("redis://", "rediss://"))
        for src in rules:
            rule = validate_rule(CacheRule, src)
            if rule.id in seen:
                raise ConfigError(src.file, f"{src.key}.id", f"a unique id ('{rule.id}' is also {seen[rule.id]})")
            seen[rule.id] = src.key
            if rule.store == "shared" and not shared_ok:
                raise ConfigError(src.file, f"{src.key}.store",
                                  '"memory", or a Redis [store] url for "shared" (the store is memory://)')
            compiled.append(rule)
        if not compiled:
            return None
        secret = _PROCESS_SECRET
        if cfg.secret_env is not None:
            value = os.environ.get(cfg.secret_env)
            if not value or len(value) < 16:
                raise ConfigError(file, "response_cache.secret_env",
                                  f"the environment variable {cfg.secret_env} set to a secret of 16 or more characters")
            secret = value.encode("utf-8")
        return cls(tuple(compiled), cfg, secret)

    def rule_for(self, principal: Principal | None, alias: str | None) -> CacheRule | None:
        key_id, team = (principal.key_id, principal.team) if principal is not None else (None, None)
        sel = (key_id, team, alias)
        try:
            return self._chosen[sel]
        except KeyError:
            pass
        rule = next((r for r in self.rules if _applies(r, key_id, team, alias)), None)
        chosen = rule if rule is not None and rule.enabled else None
        if len(self._chosen) >= _SELECTION_LIMIT:
            self._chosen.clear()
        self._chosen[sel] = chosen
        return chosen


def _applies(rule: CacheRule, key_id: str | None, team: str | None, alias: str | None) -> bool:
    if rule.keys and key_id not in rule.keys:
        return False
    if rule.teams and team not in rule.teams:
        return False
    if rule.models:
        return alias is not None and any(fnmatchcase(alias, m) for m in rule.models)
    return True
