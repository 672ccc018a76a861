"""How the Redis store's commands reach Redis: Lua scripts on the multiplexed RESP connection (`resp.py`) when
there is one, else through redis-py (a pipeline, or on a cluster each group's script to its node at once);
plain commands through redis-py. After a NOSCRIPT (a restarted Redis lost its scripts) only the scripts that
did not run are sent again, behind a SCRIPT LOAD. On a cluster the client learns the slot map before its first
command and at most `gate` commands are in flight (the cluster client's pools fail when full instead of
waiting). Every failure comes out as `StoreError`; `round_trips` counts what was sent.
"""

from __future__ import annotations

import asyncio

import hiredis
from redis.exceptions import NoScriptError, RedisClusterException, RedisError

from gateway.store.base import StoreError
from gateway.store.redis_ops import SCRIPTS
from gateway.store.resp import RespClient, RespError

# RedisClusterException (a command the cluster client refuses, no reachable node) is not a RedisError.
ERRORS = (RedisError, RedisClusterException)


class RedisCalls:
    def __init__(self, client, fast: RespClient | None, *, cluster: bool) -> None:
        self.client = client
        self.fast = fast
        self.cluster = cluster
        self.gate: asyncio.Semaphore | None = None
        self.gate_timeout = 1.0
        self._ready: asyncio.Lock | None = None  # cluster: held until the client has learnt the slot map
        self._cluster_ready = False
        self.round_trips = 0

    async def eval(self, sha: str, keys: list[str], args: list[str]):
        if self.fast is not None:
            return (await self._fast_scripts([(sha, keys, args)]))[0]
        if self.gate is not None:
            return await self._gated(self._eval_script, sha, keys, args)
        return await self._eval_script(sha, keys, args)

    async def _gated(self, fn, *args):
        if not self._cluster_ready:
            await self._initialize_cluster()
        try:
            async with asyncio.timeout(self.gate_timeout):
                await self.gate.acquire()
        except TimeoutError:
            raise StoreError("redis: no free cluster connection in time") from None
        try:
            return await fn(*args)
        finally:
            self.gate.release()

    async def _initialize_cluster(self) -> None:
        """Learn the slot map before the first command. redis-py initialises a cluster client lazily,
        and commands sent concurrently on a cold client fail on connections the initialisation closes
        ('Connection closed by server', a closed transport): a burst right after start-up did."""
        if self._ready is None:
            self._ready = asyncio.Lock()
        async with self._ready:
            if self._cluster_ready:
                return
            try:
                await self.client.initialize()
            except ERRORS as exc:
                raise StoreError(f"redis: {exc.__class__.__name__}: {exc}") from None
            self._cluster_ready = True

    async def _eval_script(self, sha: str, keys: list[str], args: list[str]):
        self.round_trips += 1
        try:
            try:
                return await self.client.evalsha(sha, len(keys), *keys, *args)
            except NoScriptError:
                await self.client.script_load(SCRIPTS[sha])
                self.round_trips += 1
                return await self.client.evalsha(sha, len(keys), *keys, *args)
        except ERRORS as exc:
            raise StoreError(f"redis: {exc.__class__.__name__}: {exc}") from None

    async def _fast_scripts(self, calls: list[tuple[str, list[str], list[str]]], *, raise_errors: bool = True) -> list:
        """Scripts in one write on the multiplexed connection; after a NOSCRIPT (a restarted Redis)
        only the calls that did not run are sent again, behind a SCRIPT LOAD in the same write."""
        assert self.fast is not None
        replies: list = [None] * len(calls)
        todo = list(range(len(calls)))
        for attempt in (0, 1):
            self.round_trips += 1
            loads = [("SCRIPT", "LOAD", SCRIPTS[sha]) for sha in {calls[i][0] for i in todo}] if attempt else []
            cmds = loads + [("EVALSHA", calls[i][0], len(calls[i][1]), *calls[i][1], *calls[i][2]) for i in todo]
            try:
                got = (await self.fast.pipeline(cmds))[len(loads):]
            except RespError as exc:
                raise StoreError(f"redis: {exc}") from None
            for i, reply in zip(todo, got):
                replies[i] = reply
            todo = [i for i in todo if isinstance(replies[i], hiredis.ReplyError) and str(replies[i]).startswith("NOSCRIPT")]
            if not todo:
                break
        if raise_errors:
            for reply in replies:
                if isinstance(reply, Exception):
                    raise StoreError(f"redis: {reply}")
        return replies

    async def scripts(self, calls: list[tuple[str, list[str], list[str]]]) -> list:
        """Several scripts in one round trip. Groups are independent, so after a NOSCRIPT (a
        restarted Redis) only the calls that did not run are sent again, once the scripts load."""
        if self.fast is not None:
            return await self._fast_scripts(calls, raise_errors=False)
        if self.cluster:
            return await self._concurrently(calls)
        replies: list = [None] * len(calls)
        todo = list(range(len(calls)))
        for attempt in (0, 1):
            self.round_trips += 1
            try:
                pipe = self.client.pipeline(transaction=False)
                for i in todo:
                    sha, keys, args = calls[i]
                    pipe.evalsha(sha, len(keys), *keys, *args)
                got = await pipe.execute(raise_on_error=False)
                for i, reply in zip(todo, got):
                    replies[i] = reply
                todo = [i for i in todo if isinstance(replies[i], NoScriptError)]
                if not todo or attempt:
                    break
                for sha in {calls[i][0] for i in todo}:
                    await self.client.script_load(SCRIPTS[sha])
            except ERRORS as exc:
                raise StoreError(f"redis: {exc.__class__.__name__}: {exc}") from None
        return replies

    async def _concurrently(self, calls: list[tuple[str, list[str], list[str]]]) -> list:
        """Cluster: redis-py refuses EVALSHA in a cluster pipeline, and the groups live on different
        nodes anyway; each group's script goes to its node at once (one round-trip time). Failures
        come back as values, as from a pipeline with raise_on_error=False."""
        async def one(sha: str, keys: list[str], args: list[str]):
            try:
                return await self.eval(sha, keys, args)
            except StoreError as exc:
                return exc

        return list(await asyncio.gather(*(one(*call) for call in calls)))

    async def call(self, fn, *args):
        if self.gate is not None:
            return await self._gated(self._call_direct, fn, *args)
        return await self._call_direct(fn, *args)

    async def _call_direct(self, fn, *args):
        try:
            return await fn(*args)
        except ERRORS as exc:
            raise StoreError(f"redis: {exc.__class__.__name__}: {exc}") from None
