"""RedisStore: the Store protocol shared by many gateway processes through Redis.

Check-and-reserve and settle are each one Lua script call (`gateway.store.lua`, with the keys and
arguments `gateway.store.redis_ops` encodes), so one request costs one round trip before the upstream
call and one after. On Redis Cluster (or with
`split_by_slot=True`) the ops are grouped by hash tag, every key of a group shares one slot, and
the groups run as separate atomic scripts in one pipeline (on a cluster: sent to their nodes
concurrently, as redis-py refuses scripts in a cluster pipeline); when a group refuses, the groups
that reserved are released with a second round trip (only on refusal).

Scripts and commands reach Redis through `redis_calls.RedisCalls`; failures surface as `StoreError`. The
client reconnects on its own (redis-py's pool replaces broken connections, with one quick retry on
connection errors); socket timeouts are short so a hung Redis costs a request at most `socket_timeout`,
not a hung event loop task. The checks a request makes
before its upstream call (`is_revoked`, `reserve`) share one view of Redis's health: once one fails,
they all fail at once for `retry_after_s`, so a request waits at most one socket timeout, not one per
check.
"""

from __future__ import annotations

import asyncio
import logging
import time

import hiredis

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

from gateway.store.base import OpResult, ReserveOp, SettleOp, StoreError, release_ops
from gateway.store.redis_calls import ERRORS, RedisCalls
from gateway.store.redis_ops import (
    RESERVE_SHA,
    SCRIPTS,
    SETTLE_SHA,
    decode_results,
    encode_reserve,
    encode_settle,
    group_by_slot,
)
from gateway.store.resp import RespClient

log = logging.getLogger(__name__)

_background: set[asyncio.Task] = set()  # settles re-sent after a NOSCRIPT, kept until they finish


def _settle_retry_done(task: asyncio.Task) -> None:
    _background.discard(task)
    if not task.cancelled() and task.exception() is not None:
        log.warning("settling limits failed (reservations expire by TTL): %s", task.exception())


_LEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then redis.call('pexpire', KEYS[1], ARGV[2]) return 1 end
if redis.call('set', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
return 0
"""


class RedisStore:
    REVOKED = "gw:revoked"
    # One hash tag, so the document and the version change in one transaction on a cluster too.
    KEYS = "gw:{keys}:docs"
    KEYS_VERSION = "gw:{keys}:version"
    FLAGS = "gw:flag:"
    fleet = True  # shared by every gateway using it: alerts run once per fleet (gateway.alerts)

    def __init__(self, client, *, split_by_slot: bool = False, fast: RespClient | None = None) -> None:
        self._r = client
        self._fast = fast  # the hot path's scripts go through this multiplexed connection when set
        self._split = split_by_slot
        self._calls = RedisCalls(client, fast, cluster=isinstance(client, aioredis.RedisCluster))
        self.retry_after_s = 0.5
        self._down_until = 0.0  # monotonic: until then the per-request checks fail without waiting

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        socket_timeout: float = 0.25,
        connect_timeout: float = 0.25,
        max_connections: int = 64,
        pool_timeout: float = 1.0,
        cluster: bool = False,
        split_by_slot: bool | None = None,
    ) -> RedisStore:
        # One quick retry on connection errors only: a timed-out script may have run, and running
        # a settle twice would charge a budget twice.
        opts: dict = dict(
            socket_timeout=socket_timeout,
            socket_connect_timeout=connect_timeout,
            # supported_errors named: Retry's default also retries timeouts, which made a paused Redis
            # cost two socket timeouts per command (and could run a timed-out script twice).
            retry=Retry(ExponentialBackoff(cap=0.05, base=0.005), 1, supported_errors=(RedisConnectionError,)),
            retry_on_error=[RedisConnectionError],
        )
        try:  # redis-py >= 8 looks its own version up (file I/O) per new connection unless given it
            from redis.driver_info import DriverInfo
            from redis.utils import get_lib_version

            opts["driver_info"] = DriverInfo(name="redis-py", lib_version=get_lib_version())
        except ImportError:
            pass
        if cluster:
            client = aioredis.RedisCluster.from_url(url, max_connections=max_connections, **opts)
        else:
            # A blocking pool: a burst above max_connections waits (up to pool_timeout) for a free
            # connection instead of failing requests with "Too many connections".
            pool = aioredis.BlockingConnectionPool.from_url(
                url, max_connections=max_connections, timeout=pool_timeout, **opts
            )
            client = aioredis.Redis(connection_pool=pool)
        # Scripts are loaded on every new connection: a Redis that restarted (and so lost them) always
        # comes back on a new connection, so the hot path rarely meets NOSCRIPT.
        fast = None if cluster else RespClient(url, socket_timeout=socket_timeout, connect_timeout=connect_timeout,
                                               on_connect=tuple(("SCRIPT", "LOAD", src) for src in SCRIPTS.values()))
        store = cls(client, split_by_slot=cluster if split_by_slot is None else split_by_slot, fast=fast)
        if cluster:
            # The cluster client's per-node pools raise MaxConnectionsError when full instead of waiting;
            # at most max_connections commands in flight makes a burst wait, as the blocking pool does.
            store._calls.gate = asyncio.Semaphore(max_connections)
            store._calls.gate_timeout = pool_timeout
        return store

    @property
    def round_trips(self) -> int:
        """Script calls and pipelines sent; the benchmark reads it."""
        return self._calls.round_trips

    async def _checked(self, fn, *args):
        if time.monotonic() < self._down_until:
            raise StoreError(f"redis: unavailable (a call failed in the last {self.retry_after_s:g}s)")
        try:
            return await fn(*args)
        except StoreError:
            self._down_until = time.monotonic() + self.retry_after_s
            raise

    async def reserve(self, ops: list[ReserveOp], now_ms: float) -> list[OpResult]:
        return await self._checked(self._reserve, ops, now_ms)

    async def _reserve(self, ops: list[ReserveOp], now_ms: float) -> list[OpResult]:
        if not self._split:
            keys, args = encode_reserve(ops, now_ms)
            return decode_results(await self._calls.eval(RESERVE_SHA, keys, args))
        groups = group_by_slot(ops)
        calls = [(RESERVE_SHA, *encode_reserve([ops[i] for i in g], now_ms)) for g in groups]
        replies = await self._calls.scripts(calls)
        results: list[OpResult | None] = [None] * len(ops)
        reserved: list[ReserveOp] = []
        refused = False
        error: object = None
        for g, reply in zip(groups, replies):
            if isinstance(reply, Exception):
                error = reply
                continue
            decoded = decode_results(reply)
            group_ok = all(r.ok for r in decoded)
            refused = refused or not group_ok
            for i, r in zip(g, decoded):
                results[i] = r
                if group_ok:
                    reserved.append(ops[i])
        if (refused or error is not None) and reserved:
            await self._release(reserved, now_ms)
        if error is not None:
            raise StoreError(f"redis: {error}")
        return results  # type: ignore[return-value]

    async def _release(self, ops: list[ReserveOp], now_ms: float) -> None:
        if ops:
            await self.settle(release_ops(ops), now_ms)

    async def settle(self, ops: list[SettleOp], now_ms: float) -> None:
        if not ops:
            return
        if not self._split:
            keys, args = encode_settle(ops, now_ms)
            await self._calls.eval(SETTLE_SHA, keys, args)
            return
        calls = [(SETTLE_SHA, *encode_settle([ops[i] for i in g], now_ms)) for g in group_by_slot(ops)]
        replies = await self._calls.scripts(calls)
        for reply in replies:
            if isinstance(reply, Exception):
                raise StoreError(f"redis: {reply}")

    def settle_soon(self, ops: list[SettleOp], now_ms: float) -> bool:
        """Write the settle on the multiplexed connection now and check its reply in a callback: no
        task and no await on the request's way out. False when that path is not available (no
        fast connection, a cluster, or the connection is down): the caller awaits `settle`."""
        if self._fast is None or self._split or not ops:
            return False
        keys, args = encode_settle(ops, now_ms)
        fut = self._fast.send_nowait(("EVALSHA", SETTLE_SHA, len(keys), *keys, *args))
        if fut is None:
            return False
        self._calls.round_trips += 1
        fut.add_done_callback(lambda f: self._settled(f, ops, now_ms))
        return True

    def _settled(self, fut: asyncio.Future, ops: list[SettleOp], now_ms: float) -> None:
        if fut.cancelled():
            return
        exc = fut.exception()
        reply = exc if exc is not None else fut.result()
        if isinstance(reply, hiredis.ReplyError) and str(reply).startswith("NOSCRIPT"):
            # A restarted Redis lost its scripts: the settle did not run, so sending it again is safe.
            task = asyncio.ensure_future(self.settle(ops, now_ms))
            _background.add(task)
            task.add_done_callback(_settle_retry_done)
        elif isinstance(reply, Exception):
            log.warning("settling limits failed (reservations expire by TTL): %s", reply)

    async def budget_usage(self, key: str, roll_ms: float, now_ms: float) -> tuple[float, float]:
        """(spent, reserved) of a budget key, for tests and the admin API (not the hot path)."""
        try:
            fields = await self._r.hgetall(key + ":h")
        except ERRORS as exc:
            raise StoreError(str(exc)) from None
        spent = reserved = 0.0
        size = max(roll_ms / 60, 1000.0) if roll_ms else 0.0
        for k, v in fields.items():
            k = k.decode() if isinstance(k, bytes) else k
            if k == "reserved":
                reserved = float(v)
            elif roll_ms and k.startswith("b:") and int(k[2:]) >= int(now_ms // size) - 60:
                spent += float(v)
            elif not roll_ms and k == "spent":
                spent = float(v)
        return spent, reserved

    async def add_refused(self, key: str, amount: float, ttl_ms: float, now_ms: float) -> None:
        k = key + ":refused"  # same hash tag as the budget's counter
        await self._calls.call(self._r.incrbyfloat, k, amount)
        await self._calls.call(self._r.pexpire, k, max(int(ttl_ms), 1))

    async def budget_refused(self, key: str, now_ms: float) -> float:
        v = await self._calls.call(self._r.get, key + ":refused")
        return float(v) if v is not None else 0.0

    async def lease(self, name: str, holder: str, ttl_ms: int) -> bool:
        return bool(await self._calls.call(self._r.eval, _LEASE, 1, f"gw:lease:{name}", holder, str(int(ttl_ms))))

    async def publish(self, name: str, member: str, data: bytes) -> None:
        key = f"gw:fleet:{name}"
        await self._calls.call(self._r.hset, key, member, data)
        await self._calls.call(self._r.pexpire, key, 60_000)

    async def collect(self, name: str) -> dict[str, bytes]:
        got = await self._calls.call(self._r.hgetall, f"gw:fleet:{name}")
        return {(k.decode() if isinstance(k, bytes) else k): v for k, v in got.items()}

    async def revoke_key(self, key_id: str) -> None:
        await self._calls.call(self._r.sadd, self.REVOKED, key_id)

    async def unrevoke_key(self, key_id: str) -> None:
        await self._calls.call(self._r.srem, self.REVOKED, key_id)

    async def is_revoked(self, key_id: str) -> bool:
        return bool(await self._checked(self._calls.call, self._r.sismember, self.REVOKED, key_id))

    async def keys_version(self) -> int:
        raw = await self._calls.call(self._r.get, self.KEYS_VERSION)
        return int(raw) if raw is not None else 0

    async def keys_load(self) -> dict[str, bytes]:
        raw = await self._calls.call(self._r.hgetall, self.KEYS)
        return {(k.decode() if isinstance(k, bytes) else str(k)): (v if isinstance(v, bytes) else str(v).encode())
                for k, v in raw.items()}

    async def key_put(self, key_id: str, doc: bytes, *, create: bool = False) -> bool:
        async def run() -> bool:
            async with self._r.pipeline(transaction=True) as pipe:
                if create:
                    pipe.hsetnx(self.KEYS, key_id, doc)
                else:
                    pipe.hset(self.KEYS, key_id, doc)
                pipe.incr(self.KEYS_VERSION)
                written, _ = await pipe.execute()
            return bool(written) or not create

        return bool(await self._calls.call(run))
    async def set_flag(self, key: str, value: str) -> bool:
        return bool(await self._calls.call(self._r.set, self.FLAGS + key, value, None, None, True))  # NX

    async def get_flag(self, key: str) -> str | None:
        got = await self._checked(self._calls.call, self._r.get, self.FLAGS + key)
        return got.decode() if isinstance(got, bytes) else got

    async def ping(self) -> None:
        await self._calls.call(self._r.ping)

    # -- the response cache's entries (gateway.cache.stores): plain values with a TTL ------------------

    async def cache_get(self, key: str) -> bytes | None:
        value = await self._calls.call(self._r.get, key)
        return value if isinstance(value, bytes) else None

    async def cache_set(self, key: str, value: bytes, ttl_ms: int) -> None:
        await self._calls.call(self._r.set, key, value, None, max(int(ttl_ms), 1))

    async def cache_lock(self, key: str, ttl_ms: int) -> bool:
        """SET NX with an expiry: True for the one caller that took it."""
        return bool(await self._calls.call(self._r.set, key, b"1", None, max(int(ttl_ms), 1), True))

    async def cache_unlock(self, key: str) -> None:
        await self._calls.call(self._r.delete, key)

    async def close(self) -> None:
        if self._fast is not None:
            await self._fast.close()
        await self._r.aclose()
