"""A key's own limits (set over the admin API): the `[[rate_limits]]` and `[[budgets]]` rules of one key.

They are compiled from the very tables a policy file would hold, `scope = "key"` and `keys = [ID]`,
by the same code (`gateway.limits.rules`), and `Limits.admit` charges them like the policy's rules,
so an API-set `rpm = 3` refuses exactly what a TOML rule `scope = "key"`, `rpm = 3` refuses. Their
counters are named by the rule ids `key:ID:rate` and `key:ID:budget` (a policy rule given such an id
would share them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gateway.config.validate import SourcedRule
from gateway.limits.rules import BudgetRule, RateRule, hash_tag_safe

RATE_FIELDS = ("rps", "rpm", "tpm", "tpd", "concurrency")
BUDGET_FIELDS = ("budget_usd", "budget_window")
LIMIT_FIELDS = RATE_FIELDS + BUDGET_FIELDS
SOURCE = "admin API"


@dataclass(frozen=True, slots=True)
class KeyLimits:
    rates: tuple[RateRule, ...]
    budgets: tuple[BudgetRule, ...]
    needs_prompt_tokens: bool


def compile_key_limits(key_id: str, limits: dict[str, Any] | None) -> KeyLimits | None:
    """The rules of one key's `limits` object (None when it sets none); ConfigError on a bad value,
    whose `key` names the field (`limits.rpm`)."""
    if not limits:
        return None
    rate = {k: limits[k] for k in RATE_FIELDS if limits.get(k) is not None}
    rates: list[RateRule] = []
    budgets: list[BudgetRule] = []
    base = {"scope": "key", "keys": [key_id]}
    if rate:
        rule_id = hash_tag_safe(f"key:{key_id}:rate")
        rates.append(RateRule(SourcedRule(SOURCE, "limits", {**base, "id": rule_id, **rate}), rule_id))
    if limits.get("budget_usd") is not None:
        rule_id = hash_tag_safe(f"key:{key_id}:budget")
        table = {**base, "id": rule_id, "usd": limits["budget_usd"], "window": limits.get("budget_window") or "month"}
        budgets.append(BudgetRule(SourcedRule(SOURCE, "limits", table), rule_id))
    if not rates and not budgets:
        return None
    needs = bool(budgets) or any(lim.kind in ("tpm", "tpd") for r in rates for lim in r.limiters)
    return KeyLimits(tuple(rates), tuple(budgets), needs)
