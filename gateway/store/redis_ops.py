"""How limit ops travel to Redis: the Lua scripts' digests, the keys and arguments each op becomes,
the results read back, and the grouping of ops by Redis Cluster hash tag. Pure functions, no I/O;
`gateway.store.redis_store.RedisStore` sends them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from gateway.store import lua
from gateway.store.base import (
    BudgetOp,
    OpResult,
    RateAdjust,
    RateOp,
    ReserveOp,
    SettleOp,
    SlotOp,
    SlotRelease,
    hash_tag,
)

RESERVE_SHA = hashlib.sha1(lua.RESERVE.encode()).hexdigest()
SETTLE_SHA = hashlib.sha1(lua.SETTLE.encode()).hexdigest()
SCRIPTS = {RESERVE_SHA: lua.RESERVE, SETTLE_SHA: lua.SETTLE}


def _num(x: float) -> str:
    return repr(float(x))


def encode_reserve(ops: Sequence[ReserveOp], now_ms: float) -> tuple[list[str], list[str]]:
    keys: list[str] = []
    args = [_num(now_ms), str(len(ops))]
    for op in ops:
        if type(op) is RateOp:
            keys.append(op.key)
            args += ("r", _num(op.limit), _num(op.period_ms), _num(op.cost), "", "", "")
        elif type(op) is SlotOp:
            keys.append(op.key)
            args += ("s", _num(op.limit), _num(op.ttl_ms), op.rid, "", "", "")
        else:
            assert type(op) is BudgetOp
            keys += (op.key + ":h", op.key + ":z")
            args += ("b", _num(op.limit), _num(op.amount), op.rid, _num(op.ttl_ms),
                     _num(op.expire_at_ms), _num(op.roll_ms))  # fmt: skip
    return keys, args


def encode_settle(ops: Sequence[SettleOp], now_ms: float) -> tuple[list[str], list[str]]:
    keys: list[str] = []
    args = [_num(now_ms), str(len(ops))]
    for op in ops:
        if type(op) is RateAdjust:
            keys.append(op.key)
            args += ("r", _num(op.limit), _num(op.period_ms), _num(op.delta), "")
        elif type(op) is SlotRelease:
            keys.append(op.key)
            args += ("s", op.rid, "", "", "")
        else:
            keys += (op.key + ":h", op.key + ":z")
            args += ("b", op.rid, _num(op.actual), _num(op.expire_at_ms), _num(op.roll_ms))
    return keys, args


def decode_results(raw: list) -> list[OpResult]:
    out = []
    for i in range(0, len(raw), 4):
        out.append(OpResult(raw[i] in (b"1", "1"), float(raw[i + 1]), float(raw[i + 2]), float(raw[i + 3])))
    return out


def group_by_slot(ops: Sequence[ReserveOp] | Sequence[SettleOp]) -> list[list[int]]:
    by_tag: dict[str, list[int]] = {}
    for i, op in enumerate(ops):
        by_tag.setdefault(hash_tag(op.key), []).append(i)
    return list(by_tag.values())
