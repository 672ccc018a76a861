"""Rate limits and budgets: the `Limits` facade the request flow calls (admit before the call, settle after).

Algorithm. Requests (rps, rpm) and tokens (tpm, tpd) use GCRA, a leaky bucket of capacity = the
limit that drains the limit once per period: a burst equals the limit, then capacity returns
smoothly (one request every period/limit), with no window boundary to burst across. Precisely:
over any interval of length w, admitted units <= limit + limit * w / period (a fixed window
allows 2 * limit across one boundary at w -> 0; GCRA allows limit). Concurrency is a set of slots
with a TTL (`concurrency_ttl`, default 15 min) so a crashed gateway's slots free themselves.

Tokens are reserved before the call (prompt tokens by tiktoken with the tokenizers of the alias's
targets, the largest count, + max_tokens, or `default_max_output_tokens` when the request sets none,
times chat's `n`)
and settled to actual usage afterwards: unused tokens go back to the bucket, extra tokens are charged
(the bucket can run into debt).

Budgets (USD or tokens per calendar day/week/month in a time zone, or a rolling period) admit a
request when spent + reserved + estimate <= limit, and reserve the estimate. Admission runs before
routing, so the USD estimate is prompt x max input price + output x max output price over every target
and fallback the alias can reach (`worst_case`); settling charges the target that answered. A request
no budget rule selects is never blocked by a budget; a budget of 0 blocks every request it selects.
Worst-case overshoot: spent can exceed the limit only by what in-flight requests use beyond their
reservations, i.e. sum over requests admitted while the budget was short of the limit of
max(0, actual_i - estimate_i). With max_tokens set the provider enforces the output, so the excess
comes from prompt under-counting (tiktoken on non-OpenAI models, images counted at a fixed size) and
from reservations that expired (`reservation_ttl`) before their request settled; with estimates that
are upper bounds, spent <= limit exactly. Without max_tokens the default output reservation is not an
upper bound: such a request can overshoot by (output - default) x max output price.

One store round trip before the upstream call (`admit`: every limit and budget checked and
reserved atomically) and one after (`settle`). Store down: `on_store_error = "closed"` answers
503; `"open"` serves through a per-process `MemoryStore` with the same rules and counts each such
request in `fail_open_total`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from gateway import reasons
from gateway.apis.registry import APIS
from gateway.config.validate import SourcedRule
from gateway.context import Decision, Principal, RequestContext, Target
from gateway.errors import StoreUnavailable
from gateway.limits.answers import Meta, ratelimit_headers, refusal
from gateway.limits.rules import BudgetRule, Limiter, RateRule, compile_rules, hash_tag_safe
from gateway.limits.worst_case import WorstCase, check_usd_budget, compile_worst_cases, worst_case
from gateway.pricing import Pricing
from gateway.store.base import (
    BudgetOp,
    BudgetSettle,
    OpResult,
    RateAdjust,
    RateOp,
    ReserveOp,
    SettleOp,
    SlotOp,
    SlotRelease,
    Store,
    StoreError,
)
from gateway.store.memory import MemoryStore
from gateway.tokens import Tokenizer

__all__ = ["Admission", "Limits"]

log = logging.getLogger("gateway.limits")


@dataclass(slots=True)
class Admission:
    """What `admit` reserved, for `settle` (kept in `ctx.admission`)."""

    store: Store | None  # None only when nothing was reserved (no ops)
    ops: list[ReserveOp]
    metas: list[Meta]  # per op: the rule id, the Limiter or BudgetRule it came from, and the subject
    tokens: int  # reserved token estimate
    settled: bool = False
    fail_open: bool = False
    headers: dict[str, str] = field(default_factory=dict)
    then: Admission | None = None  # a second phase reserved in another store (gateway.limits.admit)


class Limits:
    def __init__(
        self,
        rates: list[RateRule],
        budgets: list[BudgetRule],
        pricing: Pricing,
        *,
        on_store_error: str = "closed",
        default_max_output_tokens: int = 4096,
        clock: Callable[[], float] = time.time,
        retry_store_after_s: float = 0.5,
        worst_cases: dict[str, WorstCase] | None = None,
        tokenizer: Tokenizer | None = None,
    ) -> None:
        self._rates = rates
        self._budgets = budgets
        self._pricing = pricing
        self._worst = dict(worst_cases or {})  # alias -> what a request for it can cost at most
        # The process's tokenizer (`Services.tokens`) in the server; a library user gets its own.
        self._tokenizer = tokenizer if tokenizer is not None else Tokenizer()
        self._open = on_store_error == "open"
        self._default_out = default_max_output_tokens
        self._clock = clock
        self._retry_after_s = retry_store_after_s
        self._store: Store | None = None
        self._fallback = MemoryStore()
        self._down_until = 0.0  # monotonic: skip a failed store for a moment, don't wait on it per request
        self.fail_open_total = 0
        # Counting the prompt with tiktoken costs tens of µs: only token limits and budgets need it.
        self.needs_prompt_tokens = bool(budgets) or any(
            lim.kind in ("tpm", "tpd") for rule in rates for lim in rule.limiters)

    @classmethod
    def compile(
        cls,
        rate_limits: list[SourcedRule],
        budgets: list[SourcedRule],
        pricing: Pricing,
        *,
        reach: Mapping[str, Sequence[Target]] | None = None,
        on_store_error: str = "closed",
        **opts: Any,
    ) -> Limits:
        """Runtime limits from `[[rate_limits]]` and `[[budgets]]` tables (ConfigError on bad rules).
        `reach` maps each alias to every target it can end at (`Router.reachable`)."""
        if on_store_error not in ("closed", "open"):
            raise ValueError("on_store_error must be 'closed' or 'open'")
        rates, budget_rules = compile_rules(rate_limits, budgets)
        cases = compile_worst_cases(reach or {}, pricing)
        for rule in budget_rules:
            if rule.usd:
                check_usd_budget(*rule.source, rule.limit, rule.models, cases)
        return cls(rates, budget_rules, pricing, on_store_error=on_store_error, worst_cases=cases, **opts)

    async def start(self, store: Store) -> None:
        self._store = store

    async def close(self) -> None:
        self._store = None

    # -- reporting --------------------------------------------------------------------------------

    async def budget_report(self, principals: Sequence[Principal], aliases: list[str],
                            limit: int = 200) -> list[dict[str, Any]]:
        """Use of every budget counter the config can name (per key, team, user, model or tag of the
        configured keys and aliases), for /stats and the dashboard. Not on the request path."""
        # A key's own budgets (admin API) are reported after the configured ones, for that key.
        own = [(rule, [hash_tag_safe(p.key_id)]) for p in principals if p.limits is not None for rule in p.limits.budgets]
        if not (self._budgets or own) or self._store is None:
            return []
        now = self._clock() * 1000
        out: list[dict[str, Any]] = []
        rules = [(rule, _budget_subjects(rule, principals, aliases)) for rule in self._budgets] + own
        for rule, subjects in rules:
            wid, end = rule.window_at(now)
            for subject in subjects:
                if len(out) >= limit:
                    return out
                try:
                    spent, reserved = await self._store.budget_usage(rule.counter_key(subject, wid), rule.roll_ms, now)
                except StoreError:
                    return out
                out.append({"id": rule.id, "scope": rule.scope, "subject": subject, "window": wid,
                            "unit": "usd" if rule.usd else "tokens", "limit": rule.limit, "spent": spent,
                            "reserved": reserved, "resets_at": end / 1000 if end else None})
        return out

    # -- before the call ------------------------------------------------------------------------

    def worst_case(self, alias: str | None) -> WorstCase:
        case = self._worst.get(alias or "")
        if case is None:
            # Not a routed alias (the flow refuses those before admission; direct library use): the
            # request goes to the model of that name.
            case = worst_case((Target(alias or "", "", alias or ""),), self._pricing)
            if len(self._worst) < 10_000:
                self._worst[alias or ""] = case
        return case

    def estimate_prompt_tokens(self, ctx: RequestContext) -> int:
        """tiktoken count of the request's prompt (chat, messages, responses, embeddings), the largest
        over the tokenizers of the targets the alias can reach."""
        return self.worst_case(ctx.alias).prompt_tokens(APIS[ctx.api], ctx.body or {}, self._tokenizer)

    async def admit(self, ctx: RequestContext, estimate_input_tokens: int, max_output_tokens: int,
                    choices: int = 1, *, requests: bool = True, tokens: bool = True) -> None:
        """Check and reserve every limit and budget selecting the request, atomically (one store round
        trip). In two phases when the flow asks for them (`requests` only, then `tokens` only): rps, rpm
        and concurrency before a response-cache lookup, tpm, tpd and budgets only for a miss, so a hit is
        never refused by what it does not spend. The second phase extends `ctx.admission`."""
        # Each of the `choices` answers (chat's `n`) may use max_tokens; an API that generates nothing
        # (embeddings, moderations, token counting) reserves no output.
        spec = APIS.get(ctx.api)
        if spec is not None and not spec.generates:
            out = 0
        else:
            out = (max_output_tokens if max_output_tokens and max_output_tokens > 0 else self._default_out) * max(choices, 1)
        est_tokens = max(estimate_input_tokens, 0) + out
        now = self._clock() * 1000
        ops: list[ReserveOp] = []
        metas: list[Meta] = []
        rid = ctx.request_id
        own = ctx.principal.limits if ctx.principal is not None else None
        rates: Sequence[RateRule] = self._rates if own is None else (*self._rates, *own.rates)
        budget_rules: Sequence[BudgetRule] = self._budgets if own is None else (*self._budgets, *own.budgets)
        for rule in rates:
            for subject in rule.subjects(ctx):
                for lim in rule.limiters:
                    per_request = lim.kind[0] != "t"
                    if not (requests if per_request else tokens):
                        continue
                    key = f"gw:{{rl:{rule.id}:{lim.kind}:{subject}}}"
                    if lim.kind == "concurrency":
                        ops.append(SlotOp(key, lim.limit, lim.period_ms, rid))
                    else:
                        cost = 1 if lim.kind[0] == "r" else est_tokens
                        ops.append(RateOp(key, lim.limit, lim.period_ms, cost))
                    metas.append((rule.id, lim, subject))
        if budget_rules and tokens and (spec is None or spec.billed):
            # Before routing: priced at the dearest target the request can end at, never by alias name.
            est_usd = self.worst_case(ctx.alias).usd(max(estimate_input_tokens, 0), out)
            for budget in budget_rules:
                subjects = budget.subjects(ctx)
                if not subjects:
                    continue
                wid, end = budget.window_at(now)
                amount = est_usd if budget.usd else est_tokens
                for subject in subjects:
                    key = budget.counter_key(subject, wid)
                    ops.append(BudgetOp(key, budget.limit, amount, rid, budget.ttl_ms, end, budget.roll_ms))
                    metas.append((budget.id, budget, subject))
        adm = Admission(self._store, ops, metas, est_tokens if tokens else 0)
        first = ctx.admission if not requests else None  # the first phase's, when this is the second
        if not ops:
            if first is None:
                ctx.admission = adm
            return
        results = await self._reserve(ctx, adm, now)
        headers = ratelimit_headers(metas, results)
        ctx.response_headers.update(headers)
        refused = [i for i, r in enumerate(results) if not r.ok]
        if refused:
            await self._note_refused(adm.ops, metas, refused, now)
            raise refusal(ctx, metas, results, refused, headers, now, self._scope_of)
        if first is None or not first.ops:
            ctx.admission = adm
        elif first.store is adm.store:  # settled together, in one round trip
            first.ops += ops
            first.metas += metas
            first.tokens = adm.tokens
        else:  # one phase failed open, the other did not: each is settled where it was reserved
            first.then = adm

    async def _reserve(self, ctx: RequestContext, adm: Admission, now: float) -> list[OpResult]:
        store = self._store
        if type(store) is MemoryStore:
            return store.reserve_now(adm.ops, now)
        if store is not None and time.monotonic() >= self._down_until:
            try:
                return await store.reserve(adm.ops, now)
            except StoreError as exc:
                self._down_until = time.monotonic() + self._retry_after_s
                log.warning("limits store failed: %s", exc, extra={"event": "store_error", "reason": str(exc)})
        if not self._open:
            ctx.decisions.append(Decision("limits", "rate_limit", "refuse", reasons.STORE_UNAVAILABLE))
            raise StoreUnavailable(
                "rate limits and budgets cannot be checked: the shared store is unavailable",
                headers={"retry-after": "1"}, reason=reasons.STORE_UNAVAILABLE,
            )  # fmt: skip
        adm.store = self._fallback
        adm.fail_open = True
        results = self._fallback.reserve_now(adm.ops, now)
        if all(r.ok for r in results):
            self.fail_open_total += 1
            ctx.decisions.append(Decision("limits", "rate_limit", "allow", reasons.STORE_FAIL_OPEN))
        return results

    async def _note_refused(self, ops: list[ReserveOp], metas: list[Meta], refused: list[int], now: float) -> None:
        """Keep the demand each budget refused, for budget alerts (spend stalls below the limit while
        every further request is refused). Only refused requests pay this store call."""
        store = self._store
        if store is None:
            return
        for i in refused:
            op = ops[i]
            if isinstance(metas[i][1], BudgetRule) and isinstance(op, BudgetOp):
                ttl = op.roll_ms or max(op.expire_at_ms - now, 1.0)
                try:
                    await store.add_refused(op.key, op.amount, ttl, now)
                except StoreError as exc:
                    log.warning("recording refused budget demand failed: %s", exc)

    def _scope_of(self, rule_id: str) -> str:
        for rule in self._rates:
            if rule.id == rule_id:
                return rule.scope
        return "key" if rule_id.startswith("key:") else "subject"

    # -- after the call -------------------------------------------------------------------------

    async def settle(self, ctx: RequestContext) -> None:
        adm: Admission | None = ctx.admission
        while adm is not None:
            await self._settle(ctx, adm)
            adm = adm.then

    async def _settle(self, ctx: RequestContext, adm: Admission) -> None:
        if adm.settled or not adm.ops:
            return
        adm.settled = True
        usage = ctx.usage
        actual_tokens = max(usage.input_tokens, 0) + max(usage.output_tokens, 0)
        cost: float | None = None
        ops: list[SettleOp] = []
        for op, meta in zip(adm.ops, adm.metas):
            what = meta[1]
            if type(op) is RateOp:
                if op.cost != 1 or (type(what) is Limiter and what.kind[0] == "t"):
                    delta = actual_tokens - op.cost
                    if delta:
                        ops.append(RateAdjust(op.key, op.limit, op.period_ms, delta))
            elif type(op) is SlotOp:
                ops.append(SlotRelease(op.key, op.rid))
            elif type(op) is BudgetOp:
                if type(what) is BudgetRule and what.usd:
                    if cost is None:
                        # The target that answered (the router sets it per attempt); none: nothing was used.
                        cost = self._pricing.cost_usd(ctx.target.model, usage) if ctx.target is not None else 0.0
                    actual = cost
                else:
                    actual = float(actual_tokens)
                ops.append(BudgetSettle(op.key, op.rid, actual, op.expire_at_ms, op.roll_ms))
        if not ops:
            return
        now = self._clock() * 1000
        store = adm.store
        if store is None:  # cannot happen with ops: `admit` reserved them somewhere
            return
        # The memory store settles at once; Redis writes the settle now and checks the reply in a callback.
        if store.settle_soon(ops, now):
            return
        try:
            # Shielded: a cancelled request (client gone) must still give its reservation back.
            await asyncio.shield(store.settle(ops, now))
        except StoreError as exc:
            log.warning("settling limits for request %s failed (reservations expire by TTL): %s", ctx.request_id, exc)


def _budget_subjects(rule: BudgetRule, principals: Sequence[Principal], aliases: list[str]) -> list[str]:
    if rule.shared or rule.scope == "global":
        return ["*"]
    ps = [p for p in principals if (rule.keys is None or p.key_id in rule.keys)
          and (rule.teams is None or p.team in rule.teams) and (rule.users is None or p.user in rule.users)]
    if rule.scope == "key":
        values: Sequence[str | None] = [p.key_id for p in ps]
    elif rule.scope == "team":
        values = [p.team for p in ps]
    elif rule.scope == "user":
        values = [p.user for p in ps]
    elif rule.scope == "model" or rule.scope == "shadow":
        values = sorted(rule.models) if rule.models is not None else list(aliases)
    else:  # tag
        values = sorted(rule.tags) if rule.tags is not None else [t for p in ps for t in p.tags]
    return [hash_tag_safe(v) for v in dict.fromkeys(values) if v]
