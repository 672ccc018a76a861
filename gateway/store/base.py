"""The Store protocol: shared counters for limits, budgets and key revocation.

A store knows three kinds of counter and nothing about rules, principals or pricing (that is
`gateway.limits`); both implementations (`MemoryStore`, `RedisStore`) run the same algorithms:

- `RateOp`: GCRA (a leaky bucket of capacity `limit` that drains `limit` units per `period_ms`).
  One number per key: the theoretical arrival time (TAT). Reserving `cost` units moves the TAT by
  `cost * period_ms / limit`; it is refused when the TAT would be more than `period_ms` ahead.
- `SlotOp`: a concurrency slot, one member per request with an expiry, so a crashed gateway's
  slots free themselves after `ttl_ms`.
- `BudgetOp`: spent + reserved against a limit, for one calendar window (the key names the window)
  or a rolling window of `roll_ms` kept in 60 buckets. Reservations expire after `ttl_ms`.

`reserve` is all-or-nothing: if any op is refused nothing is held. `settle` corrects reservations
to actual usage and frees slots; it never refuses. Times are unix milliseconds from the caller's
clock (gateways sharing a Redis need NTP-synced clocks; skew shifts a limit by the skew).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Union

# A refusal that no amount of waiting fixes (cost above the limit, a zero budget).
NEVER = -1.0
ROLLING_BUCKETS = 60


class StoreError(Exception):
    """The store could not be reached or answered with an error."""


@dataclass(slots=True)
class RateOp:
    key: str
    limit: float
    period_ms: float
    cost: float


@dataclass(slots=True)
class SlotOp:
    key: str
    limit: float
    ttl_ms: float
    rid: str


@dataclass(slots=True)
class BudgetOp:
    key: str
    limit: float
    amount: float
    rid: str
    ttl_ms: float  # reservation lifetime
    expire_at_ms: float  # calendar window: end of the window (the key is dropped a day later)
    roll_ms: float  # rolling window length; 0 for calendar windows


@dataclass(slots=True)
class RateAdjust:
    key: str
    limit: float
    period_ms: float
    delta: float  # actual - reserved; negative gives capacity back


@dataclass(slots=True)
class SlotRelease:
    key: str
    rid: str


@dataclass(slots=True)
class BudgetSettle:
    key: str
    rid: str
    actual: float
    expire_at_ms: float
    roll_ms: float


ReserveOp = Union[RateOp, SlotOp, BudgetOp]
SettleOp = Union[RateAdjust, SlotRelease, BudgetSettle]


@dataclass(slots=True)
class OpResult:
    ok: bool
    remaining: float  # units left after this op (after the reservation when ok)
    reset_ms: float  # until the counter is back to its full limit (rate), or the window ends
    retry_ms: float  # when refused: wait before the same op would pass; NEVER if it cannot


class Store(Protocol):
    async def reserve(self, ops: list[ReserveOp], now_ms: float) -> list[OpResult]:
        """Check and reserve all ops atomically; if any is refused, nothing is held."""

    async def settle(self, ops: list[SettleOp], now_ms: float) -> None:
        """Correct reservations to actual usage and free slots (one round trip)."""

    def settle_soon(self, ops: list[SettleOp], now_ms: float) -> bool:
        """Start the settle without waiting for it (errors are logged); False: await `settle` instead."""

    async def budget_usage(self, key: str, roll_ms: float, now_ms: float) -> tuple[float, float]:
        """(spent, reserved) of one budget counter, for reports."""

    async def add_refused(self, key: str, amount: float, ttl_ms: float, now_ms: float) -> None:
        """Add demand a budget counter refused (kept `ttl_ms` after the last refusal): budget alerts
        compare spend plus refused demand with the limit, since spend alone stalls below it."""

    async def budget_refused(self, key: str, now_ms: float) -> float:
        """Refused demand of one budget counter (0 when none is kept)."""

    # Optional (stores shared by a fleet: `fleet = True`): what the alert evaluator uses to run once
    # per fleet over every instance's /stats.
    async def lease(self, name: str, holder: str, ttl_ms: int) -> bool:
        """Take or keep the lease `name` for `holder` for `ttl_ms`; False while another holds it."""

    async def publish(self, name: str, member: str, data: bytes) -> None:
        """Set `member`'s entry of the shared table `name` (kept a minute after the last write)."""

    async def collect(self, name: str) -> dict[str, bytes]:
        """Every member's entry of the shared table `name`."""

    async def revoke_key(self, key_id: str) -> None: ...

    async def unrevoke_key(self, key_id: str) -> None: ...

    async def is_revoked(self, key_id: str) -> bool: ...

    # Keys managed over the admin API (`gateway.managed_keys`): one JSON document per key id, and a
    # version counter every write bumps, so a gateway polls one number to learn that something changed.
    async def keys_version(self) -> int: ...

    async def keys_load(self) -> dict[str, bytes]: ...

    async def key_put(self, key_id: str, doc: bytes, *, create: bool = False) -> bool:
        """Store a key's document and bump the version; with `create`, only when the id is new
        (False: it exists, nothing written)."""
    async def set_flag(self, key: str, value: str) -> bool:
        """Set a shared flag once: True if this call set it, False if it was already set (its value
        kept). Flags hold rollback decisions every instance must agree on (gateway.routing.canary)."""

    async def get_flag(self, key: str) -> str | None: ...

    async def ping(self) -> None: ...

    async def close(self) -> None: ...


def release_ops(ops: list[ReserveOp]) -> list[SettleOp]:
    """Settle ops that undo a successful `reserve` of `ops` (used where a later group refuses)."""
    out: list[SettleOp] = []
    for op in ops:
        if isinstance(op, RateOp):
            out.append(RateAdjust(op.key, op.limit, op.period_ms, -op.cost))
        elif isinstance(op, SlotOp):
            out.append(SlotRelease(op.key, op.rid))
        else:
            out.append(BudgetSettle(op.key, op.rid, 0.0, op.expire_at_ms, op.roll_ms))
    return out


def hash_tag(key: str) -> str:
    """The Redis Cluster hash tag of a key (the text inside the first `{...}`), or the key."""
    start = key.find("{")
    if start >= 0:
        end = key.find("}", start + 1)
        if end > start + 1:
            return key[start + 1 : end]
    return key
