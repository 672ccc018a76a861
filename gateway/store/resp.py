"""A minimal multiplexed RESP client for the hot path's scripts (one connection, pipelined).

redis-py costs about 200 µs of CPU per call on the event loop (pool checkout, command objects,
response callbacks). The limits path sends exactly one pipeline before the upstream call and one
after, so it uses this instead: commands are packed by hand, written to one shared connection, and
answered in order by futures that hiredis's parser resolves. Many requests share the connection at
once (replies come back in the order commands were written), so there is no pool to wait on.

Failure semantics match the store's: a command that may have reached Redis is never resent (a settle
run twice would charge twice). A broken or timed-out connection fails every pending command with
`RespError` and is replaced on the next call (after a short back-off).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from urllib.parse import unquote, urlsplit

import hiredis


class RespError(Exception):
    """The connection failed, timed out, or Redis answered with an error to a setup command."""


def pack(args: tuple) -> bytes:
    """One command in RESP (hiredis packs in C: a third of the pure-Python cost). Arguments are str,
    bytes or int; callers format floats themselves, so the text Redis sees is theirs."""
    return hiredis.pack_command(args)


class _Protocol(asyncio.Protocol):
    def __init__(self, client: RespClient) -> None:
        self.client = client
        self.reader = hiredis.Reader()
        # Futures of commands not answered yet, oldest first, each beside the loop time it was sent at.
        self.pending: deque[asyncio.Future] = deque()
        self.sent_at: deque[float] = deque()
        self.transport: asyncio.Transport | None = None
        self.lost = False
        self.outbox: list[bytes] = []  # commands written in this loop iteration, sent in one write
        self.watchdog: asyncio.TimerHandle | None = None

    def write(self, data: bytes, idle: bool = False) -> None:
        # Coalesce: under load many requests' commands leave in one send() (one syscall, and one
        # loopback delivery) instead of one each. A connection with nothing in flight sends at once:
        # nobody else is likely to join this loop pass, and waiting for the pass's end adds latency.
        if not self.outbox:
            if idle and self.transport is not None and not self.lost:
                self.transport.write(data)
                return
            asyncio.get_running_loop().call_soon(self._flush)
        self.outbox.append(data)

    def _flush(self) -> None:
        data, self.outbox = b"".join(self.outbox), []
        if self.transport is not None and not self.lost:
            self.transport.write(data)

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        reader = self.reader
        reader.feed(data)
        pending = self.pending
        while True:
            try:
                reply = reader.gets()
            except hiredis.ProtocolError as exc:
                self._fail(RespError(f"protocol error: {exc}"))
                if self.transport is not None:
                    self.transport.close()
                return
            if reply is False:
                return
            if pending:
                fut = pending.popleft()
                self.sent_at.popleft()
                if not fut.done():
                    fut.set_result(reply)

    def connection_lost(self, exc) -> None:
        self.lost = True
        if self.watchdog is not None:
            self.watchdog.cancel()
        self._fail(RespError(f"connection lost: {exc or 'closed by server'}"))

    def _fail(self, err: Exception) -> None:
        self.sent_at.clear()
        while self.pending:
            fut = self.pending.popleft()
            if not fut.done():
                fut.set_exception(err)

    def start_watchdog(self, timeout: float) -> None:
        """One timer per connection instead of one per command: replies come back in order, so only
        the oldest unanswered command can be the first to time out. Checked every quarter timeout, so
        a stuck Redis is noticed within 1.25 timeouts."""
        loop = asyncio.get_running_loop()
        period = timeout / 4

        def check() -> None:
            if self.lost:
                return
            if self.sent_at and loop.time() - self.sent_at[0] > timeout:
                # Replies may still arrive and would then answer the wrong commands: drop the connection.
                self._fail(RespError(f"redis did not answer within {timeout:g}s"))
                if self.transport is not None:
                    self.transport.close()
                return
            self.watchdog = loop.call_later(period, check)

        self.watchdog = loop.call_later(period, check)


class RespClient:
    def __init__(self, url: str, *, socket_timeout: float = 0.25, connect_timeout: float = 0.25,
                 on_connect: tuple[tuple, ...] = ()) -> None:
        parts = urlsplit(url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 6379
        self.password = unquote(parts.password) if parts.password else None
        self.username = unquote(parts.username) if parts.username else None
        self.db = int((parts.path or "/0").lstrip("/") or 0)
        self.ssl = parts.scheme == "rediss"
        self.timeout = socket_timeout
        self.connect_timeout = connect_timeout
        self.on_connect = on_connect  # commands sent first on every new connection (e.g. SCRIPT LOAD)
        self._proto: _Protocol | None = None
        self._connecting: asyncio.Future | None = None
        self._retry_at = 0.0

    async def _connection(self) -> _Protocol:
        proto = self._proto
        if proto is not None and not proto.lost:
            return proto
        if self._connecting is not None:
            return await asyncio.shield(self._connecting)
        if time.monotonic() < self._retry_at:
            raise RespError("redis unreachable (retrying shortly)")
        loop = asyncio.get_running_loop()
        self._connecting = loop.create_future()
        try:
            async with asyncio.timeout(self.connect_timeout):
                _, proto = await loop.create_connection(lambda: _Protocol(self), self.host, self.port,
                                                        ssl=self.ssl or None)
                proto.start_watchdog(self.timeout)
                setup: list[tuple] = []
                if self.password is not None:
                    setup.append(("AUTH", self.username, self.password) if self.username else ("AUTH", self.password))
                if self.db:
                    setup.append(("SELECT", self.db))
                setup.extend(self.on_connect)
                for reply in await self._send(proto, setup) if setup else ():
                    if isinstance(reply, hiredis.ReplyError):
                        raise RespError(f"redis refused connection setup: {reply}")
        except (OSError, TimeoutError, RespError) as exc:
            self._retry_at = time.monotonic() + 0.1
            self._connecting.set_exception(RespError(f"cannot connect to redis: {exc}"))
            self._connecting.exception()  # mark retrieved
            self._connecting = None
            raise RespError(f"cannot connect to redis: {exc}") from None
        self._proto = proto
        self._connecting.set_result(proto)
        self._connecting = None
        return proto

    async def _send(self, proto: _Protocol, commands: list[tuple]) -> list:
        """Write the commands and wait for their replies; the connection's watchdog bounds the wait."""
        loop = asyncio.get_running_loop()
        futs = [loop.create_future() for _ in commands]
        idle = not proto.pending
        proto.pending.extend(futs)
        proto.sent_at.extend([loop.time()] * len(futs))
        proto.write(b"".join([pack(c) for c in commands]), idle)
        return [await f for f in futs]

    def send_nowait(self, command: tuple) -> asyncio.Future | None:
        """Write one command now and return the future of its reply, or None when the connection is
        not up (the caller then awaits `pipeline`). Once written, a command runs even if nobody
        waits for the reply; the watchdog still fails the future if Redis stalls."""
        proto = self._proto
        if proto is None or proto.lost:
            return None
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        idle = not proto.pending
        proto.pending.append(fut)
        proto.sent_at.append(loop.time())
        proto.write(pack(command), idle)
        return fut

    async def pipeline(self, commands: list[tuple]) -> list:
        """Send commands in one write; replies in order (hiredis.ReplyError for per-command errors)."""
        proto = self._proto
        if proto is None or proto.lost:
            proto = await self._connection()
        return await self._send(proto, commands)

    async def close(self) -> None:
        proto, self._proto = self._proto, None
        if proto is not None and proto.transport is not None:
            proto.transport.close()
