"""MemoryStore: the Store protocol for one process.

Same algorithms as the Redis store's Lua scripts (see `gateway.store.base`), run in Python. Each
call completes without awaiting, so on one event loop every `reserve` and `settle` is atomic.
Expired state is swept every few thousand operations so memory stays bounded by live keys.
"""

from __future__ import annotations

import math

from gateway.store.base import (
    NEVER,
    ROLLING_BUCKETS,
    BudgetOp,
    BudgetSettle,
    OpResult,
    RateAdjust,
    RateOp,
    ReserveOp,
    SettleOp,
    SlotOp,
    SlotRelease,
)

EPS = 1e-6  # ms; float slack so `limit` reservations of 1 fit in exactly `period_ms`
_SWEEP_EVERY = 4096
_DAY_MS = 86_400_000.0


class _Budget:
    __slots__ = ("spent", "buckets", "reserved", "res", "expire_at")

    def __init__(self, expire_at: float) -> None:
        self.spent = 0.0
        self.buckets: dict[int, float] = {}
        self.reserved = 0.0
        self.res: dict[str, tuple[float, float]] = {}  # rid -> (amount, expires at)
        self.expire_at = expire_at


def _bucket_ms(roll_ms: float) -> float:
    return max(roll_ms / ROLLING_BUCKETS, 1000.0)


class MemoryStore:
    def __init__(self) -> None:
        self._tat: dict[str, float] = {}
        self._slots: dict[str, dict[str, float]] = {}
        self._budgets: dict[str, _Budget] = {}
        self._revoked: set[str] = set()
        self._keys: dict[str, bytes] = {}  # managed keys' documents (gateway.managed_keys)
        self._keys_version = 0
        self._flags: dict[str, str] = {}
        self._refused: dict[str, tuple[float, float]] = {}
        self._tables: dict[str, dict[str, bytes]] = {}  # budget key -> (refused demand, expires at ms)
        self._ops = 0

    # -- limits -------------------------------------------------------------------------------

    async def reserve(self, ops: list[ReserveOp], now_ms: float) -> list[OpResult]:
        return self.reserve_now(ops, now_ms)

    async def settle(self, ops: list[SettleOp], now_ms: float) -> None:
        self.settle_now(ops, now_ms)

    def reserve_now(self, ops: list[ReserveOp], now: float) -> list[OpResult]:
        """Synchronous `reserve` (also the per-process fallback limiter of `gateway.limits`)."""
        self._ops += 1
        if self._ops % _SWEEP_EVERY == 0:
            self._sweep(now)
        results = []
        ok_all = True
        for op in ops:
            if type(op) is RateOp:
                r = self._check_rate(op, now)
            elif type(op) is SlotOp:
                r = self._check_slot(op, now)
            else:
                r = self._check_budget(op, now)
            ok_all = ok_all and r.ok
            results.append(r)
        if ok_all:
            for op in ops:
                if type(op) is RateOp:
                    tat = self._tat.get(op.key, now)
                    self._tat[op.key] = (tat if tat > now else now) + op.cost * op.period_ms / op.limit
                elif type(op) is SlotOp:
                    self._slots.setdefault(op.key, {})[op.rid] = now + op.ttl_ms
                else:
                    b = self._budget(op.key, op.expire_at_ms, op.roll_ms, now)
                    b.res[op.rid] = (op.amount, now + op.ttl_ms)
                    b.reserved += op.amount
        return results

    def settle_soon(self, ops: list[SettleOp], now_ms: float) -> bool:
        self.settle_now(ops, now_ms)
        return True

    def settle_now(self, ops: list[SettleOp], now: float) -> None:
        for op in ops:
            if type(op) is RateAdjust:
                self._adjust_rate(op, now)
            elif type(op) is SlotRelease:
                slots = self._slots.get(op.key)
                if slots is not None:
                    slots.pop(op.rid, None)
            else:
                self._settle_budget(op, now)

    def _check_rate(self, op: RateOp, now: float) -> OpResult:
        if op.limit <= 0:
            return OpResult(False, 0.0, 0.0, NEVER)
        t = op.period_ms / op.limit
        tat = self._tat.get(op.key, now)
        if tat < now:
            tat = now
        new = tat + op.cost * t
        if new - now <= op.period_ms + EPS:
            return OpResult(True, math.floor((op.period_ms - (new - now)) / t + EPS), new - now, 0.0)
        retry = new - op.period_ms - now if op.cost <= op.limit else NEVER
        left = max(0.0, math.floor((op.period_ms - (tat - now)) / t + EPS))
        return OpResult(False, left, tat - now, retry)

    def _adjust_rate(self, op: RateAdjust, now: float) -> None:
        if op.limit <= 0:
            return
        move = op.delta * op.period_ms / op.limit
        tat = self._tat.get(op.key, now)
        if move > 0:
            self._tat[op.key] = (tat if tat > now else now) + move
        elif tat + move > now:
            self._tat[op.key] = tat + move
        else:
            self._tat.pop(op.key, None)

    def _check_slot(self, op: SlotOp, now: float) -> OpResult:
        slots = self._slots.get(op.key)
        if slots:
            for rid in [r for r, exp in slots.items() if exp <= now]:
                del slots[rid]
        n = len(slots) if slots else 0
        if n < op.limit:
            return OpResult(True, op.limit - n - 1, 0.0, 0.0)
        return OpResult(False, 0.0, 0.0, NEVER if op.limit <= 0 else 1000.0)

    def _budget(self, key: str, expire_at: float, roll_ms: float, now: float) -> _Budget:
        b = self._budgets.get(key)
        if b is None:
            b = self._budgets[key] = _Budget(expire_at + _DAY_MS if not roll_ms else 0.0)
        if b.res:
            for rid in [r for r, (_, exp) in b.res.items() if exp <= now]:
                b.reserved -= b.res.pop(rid)[0]
            if not b.res:
                b.reserved = 0.0  # drop float residue
        if roll_ms:
            size = _bucket_ms(roll_ms)
            oldest = int(now // size) - ROLLING_BUCKETS
            for idx in [i for i in b.buckets if i < oldest]:
                del b.buckets[idx]
            b.spent = sum(b.buckets.values())
            b.expire_at = now + roll_ms + 2 * size
        return b

    def _check_budget(self, op: BudgetOp, now: float) -> OpResult:
        if op.limit <= 0 or op.amount > op.limit:
            return OpResult(False, max(op.limit, 0.0), 0.0, NEVER)
        b = self._budget(op.key, op.expire_at_ms, op.roll_ms, now)
        used = b.spent + b.reserved
        reset = op.expire_at_ms - now if not op.roll_ms else op.roll_ms
        if used + op.amount <= op.limit * (1 + 1e-12):
            return OpResult(True, op.limit - used - op.amount, reset, 0.0)
        if not op.roll_ms:
            return OpResult(False, max(op.limit - used, 0.0), reset, reset)
        # Rolling: wait until enough old buckets leave the window.
        size = _bucket_ms(op.roll_ms)
        need = used + op.amount - op.limit
        retry = 1000.0  # reservations alone block: they settle or expire soon
        for idx in sorted(b.buckets):
            need -= b.buckets[idx]
            if need <= 0:
                retry = (idx + ROLLING_BUCKETS + 1) * size - now
                break
        return OpResult(False, max(op.limit - used, 0.0), reset, max(retry, 1.0))

    def _settle_budget(self, op: BudgetSettle, now: float) -> None:
        b = self._budget(op.key, op.expire_at_ms, op.roll_ms, now)
        held = b.res.pop(op.rid, None)
        if held is not None:
            b.reserved = b.reserved - held[0] if b.res else 0.0
        if op.actual:
            if op.roll_ms:
                idx = int(now // _bucket_ms(op.roll_ms))
                b.buckets[idx] = b.buckets.get(idx, 0.0) + op.actual
            b.spent += op.actual

    def _sweep(self, now: float) -> None:
        for key in [k for k, tat in self._tat.items() if tat <= now]:
            del self._tat[key]
        for key, slots in list(self._slots.items()):
            for rid in [r for r, exp in slots.items() if exp <= now]:
                del slots[rid]
            if not slots:
                del self._slots[key]
        for key in [k for k, b in self._budgets.items() if b.expire_at <= now and not b.res]:
            del self._budgets[key]

    # -- revocation ---------------------------------------------------------------------------

    async def revoke_key(self, key_id: str) -> None:
        self._revoked.add(key_id)

    async def unrevoke_key(self, key_id: str) -> None:
        self._revoked.discard(key_id)

    async def is_revoked(self, key_id: str) -> bool:
        return key_id in self._revoked

    async def keys_version(self) -> int:
        return self._keys_version

    async def keys_load(self) -> dict[str, bytes]:
        return dict(self._keys)

    async def key_put(self, key_id: str, doc: bytes, *, create: bool = False) -> bool:
        if create and key_id in self._keys:
            return False
        self._keys[key_id] = doc
        self._keys_version += 1
        return True

    async def set_flag(self, key: str, value: str) -> bool:
        if key in self._flags:
            return False
        self._flags[key] = value
        return True

    async def get_flag(self, key: str) -> str | None:
        return self._flags.get(key)

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        return None

    # -- introspection for tests and the admin API ----------------------------------------------

    async def add_refused(self, key: str, amount: float, ttl_ms: float, now_ms: float) -> None:
        if len(self._refused) > 10_000:  # bounded: drop what has expired
            self._refused = {k: v for k, v in self._refused.items() if v[1] > now_ms}
        value, until = self._refused.get(key, (0.0, 0.0))
        self._refused[key] = ((value if until > now_ms else 0.0) + amount, now_ms + ttl_ms)

    async def budget_refused(self, key: str, now_ms: float) -> float:
        value, until = self._refused.get(key, (0.0, 0.0))
        return value if until > now_ms else 0.0

    # One process is the whole "fleet" of a memory store (it has no `fleet` flag: alerts never ask).
    async def lease(self, name: str, holder: str, ttl_ms: int) -> bool:
        return True

    async def publish(self, name: str, member: str, data: bytes) -> None:
        self._tables.setdefault(name, {})[member] = data

    async def collect(self, name: str) -> dict[str, bytes]:
        return dict(self._tables.get(name, {}))

    async def budget_usage(self, key: str, roll_ms: float, now_ms: float) -> tuple[float, float]:
        """(spent, reserved) of a budget key at `now_ms`."""
        if key not in self._budgets:
            return (0.0, 0.0)
        b = self._budget(key, 0.0, roll_ms, now_ms)
        return (b.spent, b.reserved)
