"""Delivering alert notifications to webhooks, off the request path.

Each destination (URL and payload format) has its own bounded queue and one worker task, so a slow
or failing webhook delays only its own deliveries: `send` never waits, and when a queue is full the
oldest waiting notification is dropped (and counted) rather than anything blocking. An attempt is
bounded by the webhook's `timeout_s`; failures (a connection error, a timeout, a 429 or 5xx) are
retried with exponential backoff up to `max_attempts`; other 4xx answers are not retried.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import aiohttp
import orjson

from gateway.alerts.rules import AlertRule, Webhook

log = logging.getLogger("gateway.alerts")

QUEUE_SIZE = 100
_COLORS = {"firing": {"info": "#439fe0", "warning": "#daa038", "critical": "#d00000"}, "resolved": "#2eb886",
           "no_data": "#a0a0a0"}


def fmt(value: float | None) -> str:
    """A value as people read it: two decimals at most from 1 up, three significant digits below."""
    if value is None:
        return "no data"
    if abs(value) >= 1:
        return ("%.2f" % value).rstrip("0").rstrip(".")
    return f"{value:.3g}"


@dataclass(frozen=True, slots=True)
class Notification:
    """One state change of one rule: what every payload format is built from."""

    rule: AlertRule
    status: str  # "firing" | "resolved" | "no_data" (a firing rule lost its data; it stays firing)
    value: float | None
    at: float  # unix seconds
    since: float  # when the condition started to hold
    instance: str  # host:pid of the gateway that evaluated it
    event: str = ""  # its id in the alerts timeline (gateway.alerts.events), for delivery reports

    def text(self) -> str:
        r = self.rule
        head = f"[{self.status.upper()}] {r.severity}: {r.id}"
        head = head.replace("[NO_DATA]", "[NO DATA]")
        value = fmt(self.value)
        cond = f"{r.what} = {value} ({r.op} {fmt(r.threshold)})"
        if self.status == "resolved":
            cond = f"{r.what} = {value}, back within {r.op} {fmt(r.threshold)}"
        elif self.status == "no_data":
            cond = f"{r.what} has no data; the alert stays firing until a value shows it resolved"
        return f"{head} - {r.summary + ' - ' if r.summary else ''}{cond}"


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def json_payload(n: Notification) -> dict[str, Any]:
    r = n.rule
    return {
        "alert": r.id, "status": n.status, "severity": r.severity, "type": r.kind, "text": n.text(),
        "summary": r.summary, "metric": ".".join(r.path) if r.kind == "metric" else None,
        "budget": r.budget.id if r.budget is not None else None,
        "subject": r.subject if r.kind == "budget" else None,
        "value": round(n.value, 6) if n.value is not None else None, "op": r.op, "threshold": r.threshold, "for_s": r.for_s,
        "started_at": _iso(n.since), "at": _iso(n.at), "runbook": r.runbook, "instance": n.instance,
    }


def slack_payload(n: Notification) -> dict[str, Any]:
    r = n.rule
    color = _COLORS[n.status] if n.status in ("resolved", "no_data") else _COLORS["firing"][r.severity]
    fields = [
        {"title": "value", "value": fmt(n.value), "short": True},
        {"title": "threshold", "value": f"{r.op} {fmt(r.threshold)}", "short": True},
        {"title": "since", "value": _iso(n.since), "short": True},
        {"title": "instance", "value": n.instance, "short": True},
    ]
    if r.runbook:
        fields.append({"title": "runbook", "value": r.runbook, "short": False})
    return {"text": n.text(), "attachments": [{"color": color, "title": r.id, "fields": fields, "ts": int(n.at)}]}


PAYLOADS: dict[str, Callable[[Notification], dict[str, Any]]] = {"json": json_payload, "slack": slack_payload}


@dataclass(slots=True)
class _Channel:
    label: str
    format: str
    queue: asyncio.Queue
    task: asyncio.Task | None = None
    dropped: int = 0
    delivered: int = 0
    failed: int = 0
    last_error: str | None = None


class Notifier:
    def __init__(self, session: Callable[[], aiohttp.ClientSession], queue_size: int = QUEUE_SIZE) -> None:
        self._session = session
        self._queue_size = queue_size
        self._channels: dict[tuple[str, str], _Channel] = {}
        self._closed = False
        # Told each delivery's outcome: (notification, webhook index in its rule, delivered|failed|dropped,
        # last error, unix time); the alerts timeline keeps it.
        self.on_result: Callable[[Notification, int, str, str | None, float], None] | None = None

    def _report(self, webhook: Webhook, n: Notification, status: str, error: str | None) -> None:
        if self.on_result is not None:
            import time

            self.on_result(n, n.rule.webhooks.index(webhook), status, error, time.time())

    def send(self, webhook: Webhook, n: Notification) -> None:
        """Queue a delivery; never waits. A full queue loses its oldest notification."""
        if self._closed:
            return
        ch = self._channels.get(webhook.channel)
        if ch is None:
            ch = self._channels[webhook.channel] = _Channel(webhook.label, webhook.format, asyncio.Queue(self._queue_size))
            ch.task = asyncio.create_task(self._worker(ch), name=f"alert-webhook-{webhook.label}")
        if ch.queue.full():
            old_webhook, old = ch.queue.get_nowait()
            ch.dropped += 1
            self._report(old_webhook, old, "dropped", "queue full")
            log.warning("alert webhook %s is behind; dropped its oldest notification", webhook.label)
        ch.queue.put_nowait((webhook, n))

    def stats(self) -> list[dict[str, Any]]:
        return [{"webhook": ch.label, "format": ch.format, "queued": ch.queue.qsize(), "delivered": ch.delivered,
                 "failed": ch.failed, "dropped": ch.dropped, "last_error": ch.last_error}
                for ch in self._channels.values()]

    async def close(self, drain_s: float = 1.0) -> None:
        """Give queued notifications a moment (a resolve sent at shutdown), then stop the workers."""
        self._closed = True
        pending = [ch.task for ch in self._channels.values() if ch.task is not None]
        if pending and drain_s > 0:
            waits = [asyncio.ensure_future(ch.queue.join()) for ch in self._channels.values()]
            await asyncio.wait(waits, timeout=drain_s)
            for w in waits:
                w.cancel()
        for t in pending:
            t.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    async def _worker(self, ch: _Channel) -> None:
        while True:
            webhook, n = await ch.queue.get()
            try:
                ok = await self._deliver(ch, webhook, n)
                if ok:
                    ch.delivered += 1
                else:
                    ch.failed += 1
                self._report(webhook, n, "delivered" if ok else "failed", None if ok else ch.last_error)
            except asyncio.CancelledError:
                raise
            except Exception:
                ch.failed += 1
                log.exception("alert webhook %s: delivery of %s failed", webhook.label, n.rule.id)
                self._report(webhook, n, "failed", "internal error")
            finally:
                ch.queue.task_done()

    async def _deliver(self, ch: _Channel, w: Webhook, n: Notification) -> bool:
        body = orjson.dumps(PAYLOADS[w.format](n))
        timeout = aiohttp.ClientTimeout(total=w.timeout_s)
        wait = w.backoff_s
        for attempt in range(1, w.max_attempts + 1):
            retry = True
            try:
                async with self._session().post(w.url, data=body, timeout=timeout,
                                                headers={"Content-Type": "application/json"}) as resp:
                    await resp.read()
                    if resp.status < 300:
                        return True
                    retry = resp.status == 429 or resp.status >= 500
                    ch.last_error = f"HTTP {resp.status}"
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                ch.last_error = type(exc).__name__
            if not retry or attempt == w.max_attempts:
                break
            log.info("alert webhook %s: attempt %d for %s failed (%s); retrying in %.1fs",
                     w.label, attempt, n.rule.id, ch.last_error, wait)
            await asyncio.sleep(wait * (0.5 + random.random() / 2))
            wait = min(wait * 2, w.max_backoff_s)
        log.error("alert webhook %s: giving up on %s %s after %d attempts (%s)",
                  w.label, n.status, n.rule.id, attempt, ch.last_error)
        return False

