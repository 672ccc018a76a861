"""Single flight: of identical concurrent misses in one process, one (the leader) asks the upstream and
the others wait for its entry. A leader that ends without an entry (an error, a refusal, an answer too
big to keep) releases the waiters, who then ask the upstream themselves."""

from __future__ import annotations

import asyncio


class Flights:
    def __init__(self) -> None:
        self._open: dict[str, asyncio.Future[bytes | None]] = {}

    def __len__(self) -> int:
        return len(self._open)

    def join(self, key: str) -> asyncio.Future[bytes | None] | None:
        """None: the caller leads (and must `land` the key); else the leader's future to wait on."""
        fut = self._open.get(key)
        if fut is not None:
            return fut
        self._open[key] = asyncio.get_running_loop().create_future()
        return None

    def land(self, key: str, value: bytes | None) -> None:
        fut = self._open.pop(key, None)
        if fut is not None and not fut.done():
            fut.set_result(value)


async def wait(fut: asyncio.Future[bytes | None], timeout: float) -> bytes | None:
    """The leader's entry, or None when it had none or took longer than `timeout`."""
    try:
        return await asyncio.wait_for(asyncio.shield(fut), timeout)
    except TimeoutError:
        return None
