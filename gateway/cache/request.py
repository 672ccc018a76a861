"""One request's cache work, in the flow's order:

    begin(...)        before input guardrails: the rule, Cache-Control, determinism; the original
                      texts of the slots guardrails may rewrite (for the keyed digest)
    await lookup()    after input guardrails: the key; a hit (an `Entry`), or a miss whose answer the
                      `CacheFill` filter collects; identical concurrent misses wait for one leader
    await complete()  the answer finished well, right before its last byte goes out: store it, redacted at
                      rest, and hand it to the waiters (a caller that has the answer finds it cached)
    release()         in the flow's finally: waiters of a leader that stored nothing ask for themselves

The outcome (`hit`, `miss`, `bypass`) goes in `ctx.cache` (the request record) and the
`x-gateway-cache` response header; a hit's `ctx.cache_saved_usd` is what its answer cost when it was fetched.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from gateway.apis.registry import APIS
from gateway.cache import entry as entries_format
from gateway.cache.entry import Entry, NotStorable
from gateway.cache.flight import Flights, wait
from gateway.cache.key import cache_key, redacted_digest
from gateway.cache.rules import REPLAYED_APIS, WHOLE_BODY_APIS, CacheRules, access, deterministic
from gateway.cache.stores import Entries, MemoryEntries, SharedEntries
from gateway.config.schema import CacheRule
from gateway.context import RequestContext
from gateway.events import Event
from gateway.filters.cache_fill import CacheFill

if TYPE_CHECKING:
    from gateway.store.base import Store

log = logging.getLogger(__name__)

HEADER = "x-gateway-cache"
_POLL_S = 0.02


@dataclass(slots=True)
class CacheServices:
    """Process-wide: the memory entries, the shared entries (with a Redis store) and the open flights."""

    memory: MemoryEntries = field(default_factory=lambda: MemoryEntries(10_000, 64 * 1024 * 1024))
    shared: SharedEntries | None = None
    flights: Flights = field(default_factory=Flights)
    writes: set[asyncio.Task[None]] = field(default_factory=set)

    def bind(self, rules: CacheRules | None, store: Store) -> None:
        """At start-up and after each reload: the bounds of the memory entries, the shared store."""
        if rules is not None:
            self.memory.max_entries, self.memory.max_bytes = rules.cfg.max_entries, rules.cfg.max_bytes
        # Only a Redis store can be shared, and it is one only once its module was imported (by `open_store`):
        # a memory-only gateway never imports the Redis client.
        redis_store = sys.modules.get("gateway.store.redis_store")
        if self.shared is None and redis_store is not None and isinstance(store, redis_store.RedisStore):
            self.shared = SharedEntries(store)


def begin(rules: CacheRules, services: CacheServices, ctx: RequestContext,
          headers: Mapping[str, str], guarded: bool) -> CachedRequest | None:
    rule = rules.rule_for(ctx.principal, ctx.alias)
    if rule is None:
        return None
    req = CachedRequest(rules, services, rule)
    body = ctx.body or {}
    allowed = access(headers.get("cache-control"))
    served = ctx.api in REPLAYED_APIS or ctx.api in WHOLE_BODY_APIS
    if not served or not allowed.write or not deterministic(rule, ctx.api, body):
        req.outcome(ctx, "bypass")
        return None
    req.read = allowed.read
    if guarded and not rule.share_redacted:
        req.before = [s.text for s in APIS[ctx.api].input_texts(body).slots]
    return req


class CachedRequest:
    __slots__ = ("rules", "services", "rule", "read", "before", "key", "entries", "leader", "locked", "fill",
                 "missed", "done")

    def __init__(self, rules: CacheRules, services: CacheServices, rule: CacheRule) -> None:
        self.rules = rules
        self.services = services
        self.rule = rule
        self.read = True
        self.before: list[str] | None = None
        self.key = ""
        self.entries: Entries = services.shared if rule.store == "shared" and services.shared else services.memory
        self.leader = False
        self.locked = False
        self.fill: CacheFill | None = None
        self.missed = False  # looked up and not found: the answer is to be stored
        self.done = False

    @staticmethod
    def outcome(ctx: RequestContext, outcome: str) -> None:
        ctx.cache = outcome
        ctx.response_headers[HEADER] = outcome

    async def lookup(self, ctx: RequestContext) -> Entry | None:
        body = ctx.body or {}
        redacted = b""
        if self.before is not None:
            after = [s.text for s in APIS[ctx.api].input_texts(body).slots]
            redacted = redacted_digest(self.rules.secret, self.before, after)
        principal = ctx.principal
        namespace = ("ns:" + self.rule.namespace if self.rule.namespace is not None
                     else "key:" + (principal.key_id if principal is not None else ""))
        self.key = key = cache_key(ctx.api, ctx.alias or "", namespace, body, redacted)
        if self.read:
            found = await self._get(key)
            if found is not None:
                return self._hit(ctx, found)
            waiting = self.services.flights.join(key)
            if waiting is not None:
                found = entries_format.loads(await wait(waiting, self.rules.cfg.wait_s) or b"")
                if found is not None:
                    return self._hit(ctx, found)
            else:
                self.leader = True
                # Its first lookup may have been answered just before another leader stored its entry and
                # landed (a store read yields): look once more now that this request leads.
                found = await self._get(key)
                if found is not None:
                    return self._hit(ctx, found)
                if self.entries.shared:
                    found = await self._wait_for_other_gateway(key)
                    if found is not None:
                        return self._hit(ctx, found)
        self.outcome(ctx, "miss" if self.read else "bypass")
        self.missed = True
        if ctx.api in REPLAYED_APIS:
            self.fill = ctx.cache_fill = CacheFill(self.rule.max_entry_bytes)
        return None

    async def _get(self, key: str) -> Entry | None:
        raw = await self.entries.get(key)
        return entries_format.loads(raw) if raw is not None else None

    async def _wait_for_other_gateway(self, key: str) -> Entry | None:
        """With the shared store: the first gateway to lock the key asks; the others poll for its entry."""
        lock_s = self.rules.cfg.lock_s
        if await self.entries.lock(key, lock_s):
            self.locked = True
            return None
        deadline = asyncio.get_running_loop().time() + lock_s
        while asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(_POLL_S)
            found = await self._get(key)
            if found is not None:
                return found
        return None

    def _hit(self, ctx: RequestContext, found: Entry) -> Entry:
        self.outcome(ctx, "hit")
        ctx.cache_saved_usd = found.cost_usd
        if self.leader:  # a leader that found another gateway's entry: its waiters have it too
            self.services.flights.land(self.key, entries_format.dumps(found))
            self.leader = False
        return found

    async def complete(self, ctx: RequestContext, scrub: Callable[[str], str], body: bytes = b"") -> None:
        """The answer reached the caller whole: keep it (redacted at rest by `scrub`) and hand it to the
        waiters. `body`: the caller's body of a whole-body API (embeddings: vectors, nothing to redact)."""
        if not self.missed or ctx.error is not None or ctx.client_disconnected or ctx.status != 200:
            return
        target = ctx.target
        fill = self.fill
        events: list[Event] = []
        if fill is not None:
            if fill.over:
                return
            events = entries_format.compact(fill.events)
            try:
                entries_format.redact_at_rest(events, scrub)
            except NotStorable:
                return
        elif ctx.api not in WHOLE_BODY_APIS or not body:
            return
        value = entries_format.dumps(Entry(target.model if target else "", target.provider if target else "",
                                           ctx.usage, ctx.runtime.cost_usd(ctx), events,
                                           body if fill is None else None))
        if len(value) > self.rule.max_entry_bytes:
            return
        self.done = True
        try:
            # Stored before the flight lands: a request arriving in between finds the entry, never an
            # empty key with no flight open (which would make it a second leader and a second upstream call).
            await self.entries.put(self.key, value, self.rule.ttl_s)
        finally:
            if self.leader:
                self.services.flights.land(self.key, value)
                self.leader = False
        if self.locked:
            self.locked = False
            await self.entries.unlock(self.key)

    def release(self) -> None:
        if self.leader:
            self.leader = False
            self.services.flights.land(self.key, None)
        if self.locked:  # a leader that stored nothing: let the other gateways ask now
            self.locked = False
            task = asyncio.ensure_future(self.entries.unlock(self.key))
            self.services.writes.add(task)
            task.add_done_callback(self.services.writes.discard)
