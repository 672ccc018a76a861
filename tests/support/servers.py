"""Run aiohttp apps (the gateway, fake upstreams) on loopback in a background event-loop thread.

The sync SDKs call from the test's thread; the servers run on their own uvloop loop, like a real
deployment. `handler_cancellation=True` matches how `gateway serve` runs the app.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

import uvloop
from aiohttp import web

T = TypeVar("T")


class LoopThread:
    def __init__(self) -> None:
        self.loop = uvloop.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True, name="servers")
        self._thread.start()
        self._runners: list[web.AppRunner] = []

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def serve(self, app: web.Application, host: str = "127.0.0.1", port: int = 0,
              ssl_context: Any = None) -> str:
        async def start() -> str:
            runner = web.AppRunner(app, handler_cancellation=True, access_log=None)
            await runner.setup()
            site = web.TCPSite(runner, host, port, ssl_context=ssl_context)
            await site.start()
            self._runners.append(runner)
            sock = site._server.sockets[0]  # type: ignore[union-attr]
            scheme = "https" if ssl_context is not None else "http"
            return f"{scheme}://{host}:{sock.getsockname()[1]}"

        return self.run(start())

    def stop_app(self, url: str) -> None:
        for runner in list(self._runners):
            for site in runner.sites:
                if url.endswith(f":{site._server.sockets[0].getsockname()[1]}"):  # type: ignore[union-attr]
                    self.run(runner.cleanup())
                    self._runners.remove(runner)
                    return

    def close(self) -> None:
        for runner in self._runners:
            try:
                self.run(runner.cleanup(), timeout=10)
            except Exception:
                pass
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
