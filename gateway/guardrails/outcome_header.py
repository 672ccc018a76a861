"""The opt-in `x-gateway-guardrails` response header: what the input guardrails did, for the caller to see.

Only rules with `outcome_header = true` appear. The value lists, per action, the entity types and counts,
e.g. `redacted=EMAIL_ADDRESS:2,CREDIT_CARD:1; flagged=injection`. It never carries matched values, and never
an injection score (a score tells an attacker how close a rewrite came). A streamed answer's headers leave
before its output is scanned, so only input outcomes go here; output outcomes are in the request record.
"""

from __future__ import annotations

from collections.abc import Iterable

from gateway.context import Decision

OUTCOME_HEADER = "x-gateway-guardrails"
_PAST = {"redact": "redacted", "mask": "masked", "hash": "hashed", "pseudonymize": "pseudonymized",
         "block": "blocked", "flag": "flagged"}


def outcome_header(decisions: Iterable[Decision], rules: frozenset[str]) -> str:
    """The header value for the input decisions of `rules`, or "" when they did nothing."""
    if not rules:
        return ""
    groups: dict[str, dict[str, int]] = {}
    for d in decisions:
        action = _PAST.get(d.action)
        if d.direction != "input" or d.policy not in rules or action is None:
            continue
        counts = groups.setdefault(action, {})
        if d.kind == "injection":
            counts.setdefault("injection", 0)
        for entity, n in d.entities.items():
            counts[entity] = counts.get(entity, 0) + n
    return "; ".join(f"{action}=" + ",".join(f"{e}:{n}" if n else e for e, n in sorted(counts.items()))
                     for action, counts in sorted(groups.items()) if counts)
