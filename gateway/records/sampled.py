"""Metrics read from their owners, not counted per request: sampled every second and before a scrape.

Owners keep plain numbers (a breaker its transition counts, the app its reload counts, the notifier
its deliveries, limits and the revocation cache their fail-open counts); `Sampler.refresh` turns the
growth of each total since the last sample into counter increments. Counters therefore live in the
instance's shared files like the per-request ones (monotonic across worker restarts); at most the last
second's growth of a worker killed outright is lost. Gauges are set to the current reading. Process
CPU, memory and open files are read from /proc in a thread; budgets from the store every
`BUDGET_EVERY_S`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from gateway.records.metrics import BREAKER_STATES, Metrics

log = logging.getLogger(__name__)

BUDGET_EVERY_S = 10.0
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


@dataclass(slots=True)
class Sources:
    """Callables the app fills in at start-up; each is read at sample time."""

    in_flight: Callable[[], int] | None = None
    # target -> (state, times opened, times half-opened, times closed)
    breakers: Callable[[], dict[str, tuple[str, int, int, int]]] | None = None
    fail_open: Callable[[], dict[str, int]] | None = None
    reloads: Callable[[], tuple[int, int]] | None = None  # (succeeded, failed)
    notifications: Callable[[], list[dict[str, Any]]] | None = None  # the notifier's per-webhook stats
    budgets: Callable[[], Awaitable[list[dict[str, Any]]]] | None = None  # Limits.budget_report rows
    queue_depth: Callable[[], int] | None = None
    trace_queue: Callable[[], int] | None = None  # spans waiting for export (gateway.tracing)
    trace_dropped: Callable[[], Mapping[str, int]] | None = None  # spans dropped, by reason
    backlog: Callable[[], dict[str, int]] | None = None  # sink -> bytes
    canary: Callable[[], dict[str, dict[str, Any]]] | None = None  # alias -> the canary's state (routing.canary)


def read_process() -> tuple[float, int | None, int | None]:
    """(CPU seconds, resident bytes, open fds) of this process. Blocking (/proc): call it in a thread."""
    t = os.times()
    rss = fds = None
    try:
        with open("/proc/self/statm", "rb") as fh:
            rss = int(fh.read().split()[1]) * _PAGE
        fds = len(os.listdir("/proc/self/fd"))
    except (OSError, ValueError, IndexError):
        pass  # not Linux: CPU only
    return t.user + t.system, rss, fds


class Sampler:
    def __init__(self, metrics: Metrics) -> None:
        self.m = metrics
        self.sources = Sources()
        self._last: dict[tuple, float] = {}
        self._budgets_at = float("-inf")

    def _grow(self, child: Any, key: tuple, total: float) -> None:
        """Add to `child` what `total` grew by since the last sample (a total that went down was reset:
        a breaker replaced by a reload, say, and counts from zero again)."""
        prev = self._last.get(key, 0.0)
        if total < prev:
            prev = 0.0
        if total > prev:
            child.inc(total - prev)
        self._last[key] = total

    def _call(self, name: str, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except Exception:  # a broken source must not stop the others (or a scrape)
            log.exception("metrics source %s failed", name)
            return None

    def sample(self) -> None:
        """The cheap, synchronous readings (on the loop)."""
        m, s = self.m, self.sources
        if s.in_flight is not None:
            m.in_flight.set(self._call("in_flight", s.in_flight) or 0)
        if s.queue_depth is not None:
            m.queue_depth.set(self._call("queue_depth", s.queue_depth) or 0)
        if s.trace_queue is not None:
            m.trace_queue.set(self._call("trace_queue", s.trace_queue) or 0)
        if s.trace_dropped is not None:
            dropped = self._call("trace_dropped", s.trace_dropped) or {}
            for reason in ("queue_full", "export_failed", "build_failed"):
                self._grow(m.trace_dropped.labels(reason), ("trace_dropped", reason), dropped.get(reason, 0))
        if s.backlog is not None:
            for sink, n in (self._call("backlog", s.backlog) or {}).items():
                m.backlog.labels(sink).set(n)
        if s.breakers is not None:
            for target, (state, opened, half, closed) in (self._call("breakers", s.breakers) or {}).items():
                for st in BREAKER_STATES:
                    m.breaker_state.labels(target, st).set(1.0 if state == st else 0.0)
                for st, n in (("open", opened), ("half_open", half), ("closed", closed)):
                    self._grow(m.breaker_transitions.labels(target, st), ("breaker", target, st), n)
        if s.canary is not None:
            for alias, snap in (self._call("canary", s.canary) or {}).items():
                m.canary_rolled_back.labels(alias, str(snap.get("target"))).set(float(snap.get("rolled_back") or 0))
        if s.fail_open is not None:
            for check, n in (self._call("fail_open", s.fail_open) or {}).items():
                self._grow(m.fail_open.labels(check), ("fail_open", check), n)
        if s.reloads is not None:
            got = self._call("reloads", s.reloads)
            if got is not None:
                self._grow(m.reloads.labels("success"), ("reload", "success"), got[0])
                self._grow(m.reloads.labels("failure"), ("reload", "failure"), got[1])
        if s.notifications is not None:
            for ch in self._call("notifications", s.notifications) or ():
                for result in ("delivered", "failed", "dropped"):
                    self._grow(m.alert_notifications.labels(ch["webhook"], result),
                               ("alert", ch["webhook"], ch["format"], result), ch[result])

    async def refresh(self) -> None:
        """Every reading: the synchronous ones, /proc in a thread, budgets when due."""
        self.sample()
        try:
            cpu, rss, fds = await asyncio.to_thread(read_process)
        except Exception:
            log.exception("reading process statistics failed")
        else:
            self._grow(self.m.cpu, ("cpu",), cpu)
            if rss is not None:
                self.m.rss.set(rss)
            if fds is not None:
                self.m.fds.set(fds)
        now = time.monotonic()
        if self.sources.budgets is not None and now - self._budgets_at >= BUDGET_EVERY_S:
            self._budgets_at = now
            await self.sample_budgets()

    async def sample_budgets(self) -> None:
        assert self.sources.budgets is not None
        try:
            rows = await self.sources.budgets()
        except Exception:
            log.exception("reading budgets for metrics failed")
            return
        for r in rows:
            labels = (r["id"], r["subject"], r["unit"])
            self.m.budget_remaining.labels(*labels).set(max(r["limit"] - r["spent"] - r["reserved"], 0.0))
            self.m.budget_limit.labels(*labels).set(r["limit"])
