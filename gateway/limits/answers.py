"""What a caller is told about its limits: OpenAI's x-ratelimit-* headers and the 429 for a refused request.

`admission.Limits.admit` calls both with the per-op results of one atomic reserve.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence

from gateway.context import Decision, RequestContext
from gateway.errors import RateLimited
from gateway.limits.rules import BudgetRule, Limiter
from gateway.store.base import NEVER, OpResult

# Per reserve op: the rule id, the Limiter or BudgetRule it came from, and the subject.
Meta = tuple[str, Limiter | BudgetRule, str]


def _go_duration(ms: float) -> str:
    """OpenAI's reset format: '20ms', '1.5s', '6m0s'."""
    if ms < 1000:
        return f"{max(0, math.ceil(ms))}ms"
    s = ms / 1000
    if s < 60:
        return f"{s:.3g}s"
    m, s = divmod(int(math.ceil(s)), 60)
    if m < 60:
        return f"{m}m{s}s"
    h, m = divmod(m, 60)
    return f"{h}h{m}m{s}s"


def ratelimit_headers(metas: Sequence[Meta], results: Sequence[OpResult]) -> dict[str, str]:
    """OpenAI's x-ratelimit-* headers: for requests and for tokens, the tightest rate limit of the request."""
    best: dict[str, tuple[float, float, float]] = {}  # "requests"/"tokens" -> (remaining, limit, reset)
    for meta, r in zip(metas, results):
        lim = meta[1]
        if not isinstance(lim, Limiter) or lim.kind == "concurrency":
            continue
        which = "requests" if lim.kind[0] == "r" else "tokens"
        cur = best.get(which)
        if cur is None or r.remaining < cur[0] or (r.remaining == cur[0] and r.reset_ms > cur[2]):
            best[which] = (r.remaining, lim.limit, r.reset_ms)
    headers = {}
    for which, (remaining, limit, reset) in best.items():
        headers[f"x-ratelimit-limit-{which}"] = str(int(limit))
        headers[f"x-ratelimit-remaining-{which}"] = str(max(int(remaining), 0))
        headers[f"x-ratelimit-reset-{which}"] = _go_duration(reset)
    return headers


def refusal(ctx: RequestContext, metas: Sequence[Meta], results: Sequence[OpResult], refused: Sequence[int],
            headers: dict[str, str], now: float, scope_of: Callable[[str], str]) -> RateLimited:
    """The 429 for a refused request, naming the refusal that lasts longest (retrying before it clears is
    pointless), with Retry-After unless it can never fit; its decision is added to the request's record."""
    worst = max(refused, key=lambda i: math.inf if results[i].retry_ms == NEVER else results[i].retry_ms)
    rule_id, what, subject = metas[worst]
    r = results[worst]
    scope = what.scope if isinstance(what, BudgetRule) else scope_of(rule_id)
    who = "all requests" if subject == "*" else f"{scope} '{subject}'"
    if isinstance(what, BudgetRule):
        unit = f"USD {what.limit:g}" if what.usd else f"{what.limit:g} tokens"
        window = f"rolling {what.roll_ms / 3_600_000:g}h" if what.roll_ms else f"{what.window} ({what.tz.key})"
        msg = f"budget of {unit} per {window} for {who} is used up (rule '{rule_id}')"
        kind, code = "budget", "budget_exceeded"
    else:
        msg = f"{what.kind} limit of {what.limit:g} for {who} reached (rule '{rule_id}')"
        kind, code = "rate_limit", "rate_limit_exceeded"
    err_headers = dict(headers)
    if r.retry_ms == NEVER:
        msg += "; this request can never fit it (its estimate is above the limit, or the limit is 0)"
    else:
        wait = max(1, math.ceil(r.retry_ms / 1000))
        err_headers["retry-after"] = str(wait)
        resets = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime((now + r.retry_ms) / 1000))
        msg += f"; retry after {wait}s (at {resets})"
    ctx.decisions.append(Decision(rule_id, kind, "refuse", what.reason))
    return RateLimited(msg, code=code, headers=err_headers, reason=what.reason)
