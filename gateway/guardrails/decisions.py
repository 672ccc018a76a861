"""Guardrail outcomes as the request records them: the refusal a block raises and the decisions a scan adds.

Shared by the input checks (`engine`) and the output scanner (`output_scan`). A decision carries counts by
entity type, never the matched text.
"""

from __future__ import annotations

from gateway import reasons
from gateway.context import Decision, RequestContext
from gateway.errors import PolicyBlocked
from gateway.guardrails.stream_scan import SpanPlan, Tally


def blocked(reason: str, message: str = "", *, status: int | None = None, code: str | None = None) -> PolicyBlocked:
    """A PolicyBlocked carrying its reason code, with a message safe to show (never the matched text)."""
    return PolicyBlocked(message or f"Blocked by the gateway's content policy ({reason}).", status=status, code=code,
                         reason=reason)


def record_decisions(ctx: RequestContext, plan: SpanPlan, tally: Tally, direction: str, failed: set[int]) -> None:
    if not (tally.counts or failed or tally.overflow_chars):
        return
    for i, guard in enumerate(plan.guards):
        counts = tally.counts.get(i)
        if counts:
            entities = dict(counts)
            ctx.decisions.append(Decision(guard.id, guard.kind, guard.action.kind, guard.reason(entities),
                                          direction, entities))
        if i in failed:
            ctx.decisions.append(Decision(guard.id, guard.kind, "allow", reasons.GUARDRAIL_ERROR, direction))
    if tally.overflow_chars:
        action = "redact" if plan.edits_text else "allow"
        ctx.decisions.append(Decision("guardrails", "hold_back", action, reasons.GUARDRAIL_HOLD_BACK_OVERFLOW,
                                      direction, unscanned_chars=0 if plan.edits_text else tally.overflow_chars))
