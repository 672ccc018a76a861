"""The background task that evaluates `[[alerts]]` rules and hands state changes to the notifier.

Each rule is a small state machine: ok -> pending (the condition holds, for less than `for`) ->
firing (notify) -> ok (the condition no longer holds; notify "resolved"). A rule that fired does
not fire again within its `cooldown`. The rules are read from the current runtime at every tick, so
a reload takes effect at the next evaluation and a rule kept under the same id keeps its state.

Metric rules read one `/stats` snapshot per tick (the same JSON operators see: the whole instance,
every worker's windows merged); budget rules read the budget's counter in the store, so instances
sharing a Redis agree on the spend. A budget's value is its spend plus the demand it refused in the
window, in percent of its limit: spend alone stalls just under the limit once every further request
is refused, so a 100% rule could never fire on it. A value that is missing (no requests yet: no
percentile) is "no data": it never fires, and a firing rule that loses its data says so once
("no_data") and stays firing until a value shows the condition no longer holds.

Under `--workers N` one worker per instance evaluates (`lead`, the instance directory's lock;
another worker takes over within a tick when it dies). With a store the fleet shares (Redis), each
instance publishes its windows there every tick and one instance of the fleet (a lease in the store,
taken over within a few ticks when its holder stops) evaluates every rule over the fleet's merged
windows (`windows.*`, `usage_1h.*`; other paths read that instance's /stats): each state change is
notified once per fleet, and `windows.1m.requests` is the fleet's.
"""

from __future__ import annotations

import asyncio
import logging

import orjson
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gateway.alerts.events import AlertEvents
from gateway.alerts.rules import AlertRule, Alerts
from gateway.alerts.webhooks import Notification, Notifier, fmt

log = logging.getLogger("gateway.alerts")

FLEET_STALE_S = 10.0


@dataclass(slots=True)
class RuleState:
    pending_since: float | None = None
    firing: bool = False
    fired_at: float = float("-inf")
    next_due: float = 0.0
    value: float | None = None
    no_data: bool = False


def read_path(data: Any, path: tuple[str, ...]) -> float | None:
    """The number at `path` in a JSON-like tree, or None when absent or not a number."""
    for part in path:
        if not isinstance(data, dict) or part not in data:
            return None
        data = data[part]
    if isinstance(data, bool) or not isinstance(data, (int, float)):
        return None
    return float(data)


def drift_psi(stats: dict, rule: AlertRule) -> float | None:
    """The largest PSI the rule watches in /stats "drift" (None: no alias has enough traffic yet)."""
    rows = (stats.get("drift") or {}).get("by_alias") or {}
    values = []
    for alias, row in rows.items():
        if rule.alias is not None and alias != rule.alias:
            continue
        psi = row.get("psi") or {}
        picked = [psi.get(rule.feature)] if rule.feature is not None else list(psi.values())
        values += [v for v in picked if isinstance(v, (int, float))]
    return max(values) if values else None


async def budget_percent(rule: AlertRule, store: Any, now: float) -> float | None:
    """Settled spend plus refused demand of the budget's current window, in percent of its limit."""
    b = rule.budget
    if b is None or store is None or not hasattr(store, "budget_usage"):
        return None
    now_ms = now * 1000
    wid, _ = b.window_at(now_ms)
    key = b.counter_key(rule.subject, wid)
    spent, _reserved = await store.budget_usage(key, b.roll_ms, now_ms)
    if hasattr(store, "budget_refused"):
        spent += await store.budget_refused(key, now_ms)
    if b.limit <= 0:
        return 100.0 if spent > 0 else 0.0
    return spent / b.limit * 100.0


class AlertEvaluator:
    def __init__(self, alerts: Callable[[], Alerts | None], stats: Callable[[], dict], store: Callable[[], Any],
                 notifier: Notifier, clock: Callable[[], float] = time.time,
                 lead: Callable[[], bool] | None = None,
                 fleet: tuple[Callable[[], list[dict]], Callable[[list[dict]], dict]] | None = None) -> None:
        self._alerts = alerts
        self._lead = lead  # None: this process is the instance (one worker)
        # (this instance's window exports, merge of exports into /stats windows), for a shared store
        self._fleet = fleet
        self._stats = stats
        self._store = store
        self.notifier = notifier
        self._clock = clock
        self.states: dict[str, RuleState] = {}
        self._task: asyncio.Task | None = None
        self.instance = f"{socket.gethostname()}:{os.getpid()}"
        self.events = AlertEvents()  # the dashboard's timeline; the app moves it to Redis when shared
        notifier.on_result = self.events.delivered

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="alert-evaluator")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self.notifier.close()
        await self.events.close()

    async def _run(self) -> None:
        while True:
            alerts = self._alerts()
            try:
                if (self._lead is None or self._lead()) and await self._fleet_turn(alerts):
                    await self.evaluate(alerts)
            except Exception:  # a broken evaluation must not end alerting for the process's life
                log.exception("alert evaluation failed")
            await asyncio.sleep(alerts.tick_s if alerts is not None and alerts.rules else 1.0)

    def _fleet_store(self) -> Any:
        store = self._store()
        return store if self._fleet is not None and getattr(store, "fleet", False) else None

    async def _fleet_turn(self, alerts: Alerts | None) -> bool:
        """Publish this instance's windows to the shared store; True when this instance evaluates."""
        store = self._fleet_store()
        if store is None or alerts is None or not alerts.rules:
            return True
        assert self._fleet is not None
        doc = {"at": self._clock(), "exports": self._fleet[0]()}
        try:
            await store.publish("alert-stats", self.instance, orjson.dumps(doc, option=orjson.OPT_NON_STR_KEYS))
            return bool(await store.lease("alerts", self.instance, int(max(alerts.tick_s * 3, 2.0) * 1000)))
        except Exception as exc:  # store down: evaluate this instance alone rather than not at all
            log.warning("alerts: the shared store is unavailable (%s); evaluating this instance alone", exc)
            return True

    async def _snapshot(self, now: float) -> dict:
        """/stats for metric rules: this instance's, with the fleet's windows where a shared store has them."""
        snapshot = self._stats()
        store = self._fleet_store()
        if store is None:
            return snapshot
        assert self._fleet is not None
        try:
            rows = await store.collect("alert-stats")
        except Exception as exc:
            log.warning("alerts: reading the fleet's windows failed (%s); this instance's only", exc)
            return snapshot
        exports = []
        for raw in rows.values():
            doc = orjson.loads(raw)
            if now - doc.get("at", 0) < FLEET_STALE_S:  # an instance gone quiet no longer counts
                exports += doc["exports"]
        if exports:
            snapshot = {**snapshot, **self._fleet[1](exports)}
        return snapshot

    async def evaluate(self, alerts: Alerts | None, now: float | None = None) -> None:
        """Evaluate every rule that is due at `now` (one tick)."""
        now = self._clock() if now is None else now
        rules = alerts.rules if alerts is not None else ()
        for gone in self.states.keys() - {r.id for r in rules}:
            del self.states[gone]
        snapshot: dict | None = None
        for rule in rules:
            st = self.states.setdefault(rule.id, RuleState())
            if now < st.next_due:
                continue
            st.next_due = now + rule.every_s
            if rule.kind == "budget":
                try:
                    value = await budget_percent(rule, self._store(), now)
                except Exception as exc:  # store down: no data this tick, say so once per tick
                    log.warning("alert %s: reading budget '%s' failed: %s", rule.id, rule.budget.id, exc)  # type: ignore[union-attr]
                    value = None
            elif rule.kind == "drift":
                if snapshot is None:
                    snapshot = self._stats()
                value = drift_psi(snapshot, rule)
            else:
                if snapshot is None:
                    snapshot = await self._snapshot(now)
                value = read_path(snapshot, rule.path)
                if rule.min_requests and rule.window is not None:
                    seen = read_path(snapshot, ("windows", rule.window, "requests")) or 0
                    if seen < rule.min_requests:
                        value = None
            self.step(rule, st, value, now)

    def step(self, rule: AlertRule, st: RuleState, value: float | None, now: float) -> None:
        st.value = value
        if value is None:
            st.pending_since = None
            if st.firing and not st.no_data:
                self._notify(rule, "no_data", None, now, now)
            st.no_data = True
            return
        st.no_data = False
        if rule.holds(value):
            if st.firing:
                return
            if st.pending_since is None:
                st.pending_since = now
            if now - st.pending_since >= rule.for_s and now - st.fired_at >= rule.cooldown_s:
                st.firing = True
                st.fired_at = now
                self._notify(rule, "firing", value, st.pending_since, now)
            return
        since = st.pending_since
        st.pending_since = None
        if st.firing:
            st.firing = False
            if rule.send_resolved:
                self._notify(rule, "resolved", value, since if since is not None else now, now)

    def _notify(self, rule: AlertRule, status: str, value: float | None, since: float, now: float) -> None:
        log.warning("alert %s %s: %s = %s", rule.id, status, rule.what, fmt(value))
        n = Notification(rule, status, value, now, since, self.instance)
        n = Notification(rule, status, value, now, since, self.instance, self.events.record(n))
        for w in rule.webhooks:
            self.notifier.send(w, n)

    def snapshot(self) -> dict[str, Any]:
        """Per-rule state and per-webhook delivery counts (for /admin/config and tests)."""
        return {
            "rules": {rid: {"firing": s.firing, "pending": s.pending_since is not None, "value": s.value,
                            "no_data": s.no_data}
                      for rid, s in self.states.items()},
            "webhooks": self.notifier.stats(),
        }
