"""Canary: a candidate target that an alias tries first for a share of its requests (or for chosen
keys and tags), rolled back for every instance when it does worse than its bounds.

Each instance watches the candidate's attempts it made itself over the last `window_s`: the share
that failed (a connect error, a timeout, 429/5xx, an answer that broke before its first content) and
the 95th percentile of time to first token. Once it saw `min_requests` and a bound is passed, it
rolls back: it stops choosing the candidate at once and sets a flag in the shared store. Every
instance re-reads that flag at most every `check_s` (only while requests for the alias arrive), so
all instances sharing a Redis stop within about `check_s`; with the memory store only the instance
itself knows. The flag is keyed by the alias and the candidate, so configuring another candidate
starts a new canary; it stays until that (or deleting `gw:flag:canary:ALIAS:PROVIDER/MODEL`).

A rollback is logged (WARNING), counted, and shown in `/stats` under `canary.ALIAS` (`rolled_back`
is 1), so an `[[alerts]]` metric rule on `canary.ALIAS.rolled_back` pages whoever owns the alias.
With the store unreachable an instance keeps what it last knew and its own decisions.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from collections import deque
from typing import TYPE_CHECKING

import orjson

from gateway.context import Target
from gateway.store.base import StoreError

if TYPE_CHECKING:
    from gateway.config.schema import CanaryConfig
    from gateway.context import RequestContext
    from gateway.store.base import Store

log = logging.getLogger("gateway.canary")


class Canary:
    __slots__ = ("alias", "target", "share", "keys", "tags", "max_error_rate", "max_p95_s", "window_s",
                 "min_requests", "check_s", "flag", "rolled_back", "reason", "rollbacks", "_checked_at",
                 "_window", "_tasks", "_clock", "_store")

    def __init__(self, alias: str, cfg: CanaryConfig) -> None:
        self.alias = alias
        self.target = Target(alias, cfg.target.provider, cfg.target.model)
        self.share = cfg.share
        self.keys = frozenset(cfg.keys)
        self.tags = frozenset(cfg.tags)
        self.max_error_rate = cfg.max_error_rate
        self.max_p95_s = cfg.max_p95_ms / 1000 if cfg.max_p95_ms is not None else None
        self.window_s = cfg.window_s
        self.min_requests = cfg.min_requests
        self.check_s = cfg.check_s
        self.flag = f"canary:{alias}:{cfg.target.provider}/{cfg.target.model}"
        self.rolled_back = False
        self.reason = ""
        self.rollbacks = 0  # rollbacks this instance decided
        self._checked_at = -math.inf
        self._window: deque[tuple[float, bool, float]] = deque()  # (when, ok, seconds to first token)
        self._tasks: set[asyncio.Task[None]] = set()
        self._clock = time.monotonic
        self._store: Store | None = None  # the process's store, given by the first `live` call

    def chosen(self, ctx: RequestContext, rng: random.Random) -> bool:
        """Does this request go to the candidate first (when the canary is live)?"""
        if ctx.principal is not None and ctx.principal.key_id in self.keys:
            return True
        if self.tags and any(t in self.tags for t in ctx.tags):
            return True
        return bool(self.share) and rng.random() < self.share

    async def live(self, store: Store | None) -> bool:
        """False once rolled back, here or (read from the store every `check_s`) by another instance."""
        if self.rolled_back:
            return False
        self._store = store
        now = self._clock()
        if store is not None and now - self._checked_at >= self.check_s:
            self._checked_at = now
            try:
                flag = await store.get_flag(self.flag)
            except StoreError as err:
                log.warning("canary %s: could not read the shared rollback state: %s", self.alias, err)
                return True
            if flag is not None:
                self.rolled_back = True
                self.reason = _reason_of(flag)
                log.warning("canary %s: rolled back by another instance (%s)", self.alias, self.reason)
                return False
        return True

    def observe(self, ok: bool, seconds: float) -> None:
        """One attempt of the candidate ended; rolls back when a bound is passed."""
        store = self._store
        if self.rolled_back:
            return
        now = self._clock()
        window = self._window
        window.append((now, ok, seconds))
        while window and window[0][0] < now - self.window_s:
            window.popleft()
        if len(window) < self.min_requests:
            return
        failed = sum(1 for _, good, _ in window if not good)
        rate = failed / len(window)
        if self.max_error_rate is not None and rate > self.max_error_rate:
            self._roll_back(f"error rate {rate:.2f} > {self.max_error_rate:g} over {len(window)} requests", store)
            return
        times = sorted(s for _, good, s in window if good)
        if self.max_p95_s is not None and times:
            p95 = times[min(len(times) - 1, math.ceil(0.95 * len(times)) - 1)]
            if p95 > self.max_p95_s:
                self._roll_back(f"p95 time to first token {p95 * 1000:.0f} ms > {self.max_p95_s * 1000:g} ms "
                                f"over {len(times)} requests", store)

    def _roll_back(self, reason: str, store: Store | None) -> None:
        self.rolled_back = True
        self.reason = reason
        self.rollbacks += 1
        log.warning("canary %s: rolled back %s/%s: %s", self.alias, self.target.provider, self.target.model, reason)
        if store is not None:
            task = asyncio.get_running_loop().create_task(self._share(store, reason))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _share(self, store: Store, reason: str) -> None:
        try:
            await store.set_flag(self.flag, orjson.dumps({"reason": reason, "at": time.time()}).decode())
        except StoreError as err:
            log.error("canary %s: rolled back here, but the shared store could not be told: %s", self.alias, err)

    def snapshot(self) -> dict[str, object]:
        """For /stats (`canary.ALIAS`)."""
        window = self._window
        failed = sum(1 for _, good, _ in window if not good)
        return {"target": f"{self.target.provider}/{self.target.model}", "rolled_back": int(self.rolled_back),
                "reason": self.reason or None, "rollbacks": self.rollbacks, "window_requests": len(window),
                "window_error_rate": round(failed / len(window), 4) if window else None}


def _reason_of(flag: str) -> str:
    try:
        reason = orjson.loads(flag).get("reason")
    except (orjson.JSONDecodeError, AttributeError):
        return flag
    return str(reason)
