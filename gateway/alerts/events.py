"""The alerts panel's timeline: every firing and resolution of a rule, and each webhook's delivery of it.

The evaluator appends an event when it notifies (`AlertEvents.record`); each webhook's worker then sets
that webhook's delivery on the event (queued -> delivered, failed or dropped, with the last error). Events
live in the shared Redis store when the gateway has one (a list, newest first, at most KEEP, and one hash
of deliveries per event, both expiring after RETENTION_S), so every instance's dashboard shows the fleet's
alerts, each event naming the instance that evaluated it; in process memory otherwise, until restart.
Writes run in background tasks; a store that is down loses the event's line in the panel, never an alert.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
from typing import Any

import orjson

from gateway.alerts.webhooks import Notification

log = logging.getLogger("gateway.alerts")

KEEP = 500
RETENTION_S = 8 * 86400
PREFIX = "gateway:alerts"


class MemoryAlertEvents:
    shared = False

    def __init__(self) -> None:
        self.events: collections.deque[dict[str, Any]] = collections.deque(maxlen=KEEP)
        self.deliveries: dict[str, dict[str, dict]] = {}

    async def append(self, event: dict[str, Any]) -> None:
        if len(self.events) == KEEP:
            self.deliveries.pop(self.events[-1]["id"], None)
        self.events.appendleft(event)

    async def delivery(self, event_id: str, index: str, state: dict) -> None:
        self.deliveries.setdefault(event_id, {})[index] = state

    async def recent(self, limit: int) -> list[dict[str, Any]]:
        return [_merged(e, self.deliveries.get(e["id"], {})) for e in list(self.events)[:limit]]

    async def close(self) -> None:
        pass


class RedisAlertEvents:
    shared = True

    def __init__(self, client: Any, prefix: str = PREFIX) -> None:
        self.client = client
        self.list_key = prefix + ":events"
        self.prefix = prefix

    def _dkey(self, event_id: str) -> str:
        return f"{self.prefix}:delivery:{event_id}"

    async def append(self, event: dict[str, Any]) -> None:
        pipe = self.client.pipeline(transaction=False)
        pipe.lpush(self.list_key, orjson.dumps(event))
        pipe.ltrim(self.list_key, 0, KEEP - 1)
        pipe.expire(self.list_key, RETENTION_S)
        await pipe.execute()

    async def delivery(self, event_id: str, index: str, state: dict) -> None:
        pipe = self.client.pipeline(transaction=False)
        pipe.hset(self._dkey(event_id), index, orjson.dumps(state))
        pipe.expire(self._dkey(event_id), RETENTION_S)
        await pipe.execute()

    async def recent(self, limit: int) -> list[dict[str, Any]]:
        events = [orjson.loads(x) for x in await self.client.lrange(self.list_key, 0, limit - 1)]
        pipe = self.client.pipeline(transaction=False)
        for e in events:
            pipe.hgetall(self._dkey(e["id"]))
        got = await pipe.execute() if events else []
        return [_merged(e, {k.decode(): orjson.loads(v) for k, v in d.items()}) for e, d in zip(events, got)]

    async def close(self) -> None:
        await self.client.aclose()


def _merged(event: dict[str, Any], deliveries: dict[str, dict]) -> dict[str, Any]:
    hooks = [dict(h) for h in event["webhooks"]]
    for i, h in enumerate(hooks):
        h.update(deliveries.get(str(i), {}))
    return {**event, "webhooks": hooks}


class AlertEvents:
    """The evaluator's and the notifier's fire-and-forget writes; the admin endpoint's reads."""

    def __init__(self) -> None:
        self.store: MemoryAlertEvents | RedisAlertEvents = MemoryAlertEvents()
        self._tasks: set[asyncio.Task] = set()

    async def use_redis(self, url: str) -> None:
        from gateway.records.recorder import _history_client

        self.store = RedisAlertEvents(await _history_client(url))

    def record(self, n: Notification) -> str:
        """An event for this notification; its id (the notifier reports deliveries against it)."""
        event_id = f"{int(n.at * 1000)}-{os.urandom(5).hex()}"
        r = n.rule
        event = {"id": event_id, "alert": r.id, "status": n.status, "severity": r.severity, "summary": r.summary,
                 "value": n.value, "at": n.at, "since": n.since, "instance": n.instance,
                 "webhooks": [{"webhook": w.label, "format": w.format, "status": "queued"} for w in r.webhooks]}
        self._spawn(self.store.append(event))
        return event_id

    def delivered(self, n: Notification, index: int, status: str, error: str | None, at: float) -> None:
        if n.event:
            self._spawn(self.store.delivery(n.event, str(index), {"status": status, "error": error, "done_at": at}))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(self._guard(coro))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @staticmethod
    async def _guard(coro: Any) -> None:
        try:
            await coro
        except Exception as exc:  # the store is down: the panel misses a line; the alert itself went out
            log.warning("alert events: the store did not take an event: %s", exc)

    async def recent(self, limit: int) -> list[dict[str, Any]]:
        return await self.store.recent(limit)

    async def close(self) -> None:
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        await self.store.close()
