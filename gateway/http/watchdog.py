"""Time bounds on the client side of a request, kept by one timer per process.

Two things a client controls could otherwise hold a request (and its slots) forever: sending its body
(`[server] body_timeout_s`) and reading the answer (`send_timeout_s`: the relay waits while the
client's socket buffer is full, which is backpressure, not a hang, until it lasts that long). A timer
per request would cost several microseconds on the hot path; instead a request adds a dict entry and
one tick every `TICK_S`, running only while entries exist, checks them all. Bounds are thus kept
within `TICK_S`.
"""

from __future__ import annotations

import asyncio
from aiohttp import web

from gateway import reasons
from gateway.context import Decision, RequestContext

TICK_S = 0.1


class ClientWatchdog:
    def __init__(self) -> None:
        self._reading: dict[asyncio.Task, float] = {}  # task -> deadline (loop time)
        self._expired: set[asyncio.Task] = set()
        # id(request) -> [request, ctx, timeout_s, blocked since (loop time) or None]; a plain list,
        # since an entry is made for every request served
        self._sending: dict[int, list] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._handle: asyncio.TimerHandle | None = None

    def _arm(self) -> None:
        if self._handle is None:
            self._loop = asyncio.get_running_loop()
            self._handle = self._loop.call_later(TICK_S, self._tick)

    def start_reading(self, task: asyncio.Task, timeout_s: float) -> None:
        """Cancel `task` if it is still reading after `timeout_s`; `stop_reading` says whether it was."""
        self._reading[task] = asyncio.get_running_loop().time() + timeout_s
        self._arm()

    def stop_reading(self, task: asyncio.Task) -> bool:
        self._reading.pop(task, None)
        if task in self._expired:
            self._expired.discard(task)
            return True
        return False

    def watch_sending(self, request: web.Request, ctx: RequestContext, timeout_s: float) -> None:
        """Close the connection once its writes have been blocked (client not reading) for `timeout_s`."""
        self._sending[id(request)] = [request, ctx, timeout_s, None]
        if self._handle is None:
            self._arm()

    def stop_sending(self, request: web.Request) -> None:
        self._sending.pop(id(request), None)

    def _tick(self) -> None:
        self._handle = None
        now = self._loop.time()
        if self._reading:
            for task, deadline in list(self._reading.items()):
                if now >= deadline:
                    del self._reading[task]
                    self._expired.add(task)
                    task.cancel()
        for key, w in list(self._sending.items()):
            request, ctx, timeout_s, blocked_since = w
            proto = request.protocol
            if proto is None or not proto.writing_paused:
                w[3] = None
            elif blocked_since is None:
                w[3] = now
            elif now - blocked_since >= timeout_s:
                del self._sending[key]
                ctx.decisions.append(Decision("client", "client", "abort", reasons.CLIENT_SEND_TIMEOUT,
                                              direction="output"))
                if request.transport is not None:
                    request.transport.abort()  # the handler sees the disconnect and ends; its finally runs
        if self._reading or self._sending:
            self._arm()
