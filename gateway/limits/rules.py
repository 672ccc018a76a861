"""`[[rate_limits]]` and `[[budgets]]`: raw schemas, compiled rules, selectors and windows.

A rule applies to a request when every selector it names matches (`keys`, `teams`, `users`,
`models` = request aliases, `tags` = any of the key's or request's tags). Its `scope` names the
counter: the key, team, user, model alias or tag of the request (a key without a team skips a team
rule), or one counter for everything (`global`). Model selectors and counters use the alias the request
named, never the routed target: rules are checked before routing and a request counts once across its
retries and fallbacks. `per = "shared"` makes every matching subject
share one counter instead of one each.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, model_validator

from gateway import reasons
from gateway.config.validate import ConfigError, SourcedRule, Strict, validate_rule
from gateway.context import RequestContext

Scope = Literal["key", "team", "user", "model", "tag", "global", "shadow"]
Duration = int | float | str
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}


class _Selectors(Strict):
    id: str | None = None
    scope: Scope
    per: Literal["each", "shared"] = "each"
    keys: list[str] | None = None
    teams: list[str] | None = None
    users: list[str] | None = None
    models: list[str] | None = None
    tags: list[str] | None = None


class RateLimitTable(_Selectors):
    rps: int | None = Field(default=None, ge=0)
    rpm: int | None = Field(default=None, ge=0)
    tpm: int | None = Field(default=None, ge=0)
    tpd: int | None = Field(default=None, ge=0)
    concurrency: int | None = Field(default=None, ge=0)
    concurrency_ttl: Duration = "15m"

    @model_validator(mode="after")
    def _some_limit(self) -> RateLimitTable:
        if all(v is None for v in (self.rps, self.rpm, self.tpm, self.tpd, self.concurrency)):
            raise ValueError("needs at least one of rps, rpm, tpm, tpd, concurrency")
        return self


class BudgetTable(_Selectors):
    usd: float | None = Field(default=None, ge=0)
    tokens: int | None = Field(default=None, ge=0)
    window: Literal["day", "week", "month", "rolling"] = "month"
    period: Duration | None = None  # rolling windows only
    timezone: str = "UTC"  # calendar windows
    reservation_ttl: Duration = "15m"

    @model_validator(mode="after")
    def _one_amount(self) -> BudgetTable:
        if (self.usd is None) == (self.tokens is None):
            raise ValueError("needs exactly one of usd, tokens")
        if (self.window == "rolling") != (self.period is not None):
            raise ValueError('period is required with window = "rolling" and only there')
        return self


def duration_ms(value: Duration, *, file: str, key: str) -> float:
    """'500ms', '30s', '15m', '24h', '7d', or a number of seconds."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        ms = float(value) * 1000
    else:
        m = _DURATION.match(str(value))
        if not m:
            raise ConfigError(file, key, "a duration such as '30s', '15m', '24h', '7d' or seconds")
        ms = float(m.group(1)) * _UNIT_MS[m.group(2)]
    if ms <= 0:
        raise ConfigError(file, key, "a duration above zero")
    return ms


def hash_tag_safe(text: str) -> str:
    # Braces would break the Redis Cluster hash tag the key is built around.
    return text.replace("{", "(").replace("}", ")")


@dataclass(slots=True)
class Limiter:
    kind: str  # "rps", "rpm", "tpm", "tpd", "concurrency"
    limit: float
    period_ms: float  # the window; for concurrency the slot's ttl
    reason: str


_RATE_KINDS = (
    ("rps", 1_000.0, reasons.RATE_LIMIT_REQUESTS),
    ("rpm", 60_000.0, reasons.RATE_LIMIT_REQUESTS),
    ("tpm", 60_000.0, reasons.RATE_LIMIT_TOKENS),
    ("tpd", 86_400_000.0, reasons.RATE_LIMIT_TOKENS),
)


class _Rule:
    __slots__ = ("id", "scope", "shared", "keys", "teams", "users", "models", "tags")
    for_shadow = False  # budgets only: shadow copies never count against rate limits

    def _init_selectors(self, t: _Selectors, rule_id: str) -> None:
        self.id = rule_id
        self.scope = t.scope
        self.shared = t.per == "shared"
        self.keys = frozenset(t.keys) if t.keys is not None else None
        self.teams = frozenset(t.teams) if t.teams is not None else None
        self.users = frozenset(t.users) if t.users is not None else None
        self.models = frozenset(t.models) if t.models is not None else None
        self.tags = frozenset(t.tags) if t.tags is not None else None

    def subjects(self, ctx: RequestContext) -> tuple[str, ...]:
        """The counters this request charges under this rule; empty when the rule does not apply."""
        # Shadow copies (gateway.shadow) count only against budgets of scope "shadow", or "model" naming the
        # candidate; scope "shadow" counts nothing else.
        if ctx.shadow_of is not None:
            if not self.for_shadow or self.scope not in ("shadow", "model"):
                return ()
        elif self.scope == "shadow":
            return ()
        p = ctx.principal
        if self.keys is not None and (p is None or p.key_id not in self.keys):
            return ()
        if self.teams is not None and (p is None or p.team not in self.teams):
            return ()
        if self.users is not None and (p is None or p.user not in self.users):
            return ()
        if self.models is not None and ctx.alias not in self.models:
            return ()
        tags = (p.tags + ctx.tags if p is not None else ctx.tags) if self.tags is not None or self.scope == "tag" else ()
        if self.tags is not None:
            tags = tuple(t for t in tags if t in self.tags)
            if not tags:
                return ()
        scope = self.scope
        if scope == "global":
            return ("*",)
        if scope == "tag":
            if not tags:
                return ()
            return ("*",) if self.shared else tuple(dict.fromkeys(hash_tag_safe(t) for t in tags))
        if scope == "model" or scope == "shadow":
            value = ctx.alias
        elif p is None:
            return ()
        else:
            value = p.key_id if scope == "key" else p.team if scope == "team" else p.user
        if value is None:
            return ()
        return ("*",) if self.shared else (hash_tag_safe(value),)


class RateRule(_Rule):
    __slots__ = ("limiters",)

    def __init__(self, src: SourcedRule, rule_id: str) -> None:
        t = validate_rule(RateLimitTable, src)
        self._init_selectors(t, rule_id)
        self.limiters = [Limiter(k, float(getattr(t, k)), p, r) for k, p, r in _RATE_KINDS if getattr(t, k) is not None]
        if t.concurrency is not None:
            ttl = duration_ms(t.concurrency_ttl, file=src.file, key=f"{src.key}.concurrency_ttl")
            self.limiters.append(Limiter("concurrency", float(t.concurrency), ttl, reasons.RATE_LIMIT_CONCURRENCY))


class BudgetRule(_Rule):
    __slots__ = ("usd", "limit", "window", "tz", "roll_ms", "ttl_ms", "reason", "_current", "source")
    for_shadow = True

    def __init__(self, src: SourcedRule, rule_id: str) -> None:
        t = validate_rule(BudgetTable, src)
        self._init_selectors(t, rule_id)
        self.source = (src.file, src.key)  # for config errors found when the routes are known
        self.usd = t.usd is not None
        amount = t.usd if t.usd is not None else t.tokens
        assert amount is not None  # BudgetTable's validator requires exactly one of usd, tokens
        self.limit = float(amount)
        self.reason = reasons.BUDGET_USD if self.usd else reasons.BUDGET_TOKENS
        self.window = t.window
        try:
            self.tz = ZoneInfo(t.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigError(src.file, f"{src.key}.timezone", "an IANA time zone such as 'Europe/Berlin'") from None
        self.roll_ms = duration_ms(t.period, file=src.file, key=f"{src.key}.period") if t.period is not None else 0.0
        self.ttl_ms = duration_ms(t.reservation_ttl, file=src.file, key=f"{src.key}.reservation_ttl")
        self._current = ("", 0.0, 0.0)  # (window id, start ms, end ms)

    def counter_key(self, subject: str, window_id: str) -> str:
        """The store key of this budget's counter for one subject and window (one hash slot)."""
        return f"gw:{{bg:{self.id}:{subject}:{window_id}}}"

    def window_at(self, now_ms: float) -> tuple[str, float]:
        """(window id, window end in unix ms) for a calendar window; ('rolling', 0.0) otherwise."""
        if self.roll_ms:
            return "rolling", 0.0
        wid, start, end = self._current
        if start <= now_ms < end:
            return wid, end
        local = datetime.fromtimestamp(now_ms / 1000, self.tz)
        day = local.replace(hour=0, minute=0, second=0, microsecond=0, tzinfo=None)
        if self.window == "day":
            first, nxt, wid = day, day + timedelta(days=1), day.strftime("%Y-%m-%d")
        elif self.window == "week":
            first = day - timedelta(days=day.weekday())
            nxt = first + timedelta(days=7)
            iso = first.isocalendar()
            wid = f"{iso[0]}-W{iso[1]:02d}"
        else:
            first = day.replace(day=1)
            nxt = (first + timedelta(days=32)).replace(day=1)
            wid = first.strftime("%Y-%m")
        # Naive wall-clock midnight -> aware (fold=0), so DST days are 23 or 25 hours long.
        start = first.replace(tzinfo=self.tz).timestamp() * 1000
        end = nxt.replace(tzinfo=self.tz).timestamp() * 1000
        self._current = (wid, start, end)
        return wid, end


def compile_rules(rate_limits: list[SourcedRule], budgets: list[SourcedRule]) -> tuple[list[RateRule], list[BudgetRule]]:
    seen: dict[str, str] = {}

    def rule_id(src: SourcedRule) -> str:
        raw = src.data.get("id") if isinstance(src.data, dict) else None
        rid = hash_tag_safe(str(raw)) if raw is not None else src.key
        if rid in seen:
            raise ConfigError(src.file, f"{src.key}.id", f"a unique rule id ({rid!r} is also {seen[rid]})")
        seen[rid] = src.key
        return rid

    rates = [RateRule(src, rule_id(src)) for src in rate_limits]
    budget_rules = [BudgetRule(src, rule_id(src)) for src in budgets]
    return rates, budget_rules
