"""The guardrail engine: compiled rules, per-request selection, input checks and the output scanner.

Start-up: `Guardrails.compile(rules)` validates every `[[guardrails]]` rule and builds its detectors once.
Per request the flow calls `for_request(principal, alias)`; `None` means no rule applies and costs one
dict lookup. Otherwise the returned `RequestGuard` belongs to that one request (it holds the pseudonym
table): `await check_input(ctx)` scans and rewrites the body, then `output_scanner(ctx)` gives the stream
relay an `OutputScanner` (gateway.guardrails.output_scan), whose `close()` records the output decisions. Decisions carry counts by entity
type and scores, never the matched text.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from gateway import reasons
from gateway.apis.base import ApiSpec
from gateway.apis.registry import APIS
from gateway.apis.slots import InputTexts
from gateway.config.validate import ConfigError, SourcedRule
from gateway.context import Decision, Principal, RequestContext
from gateway.errors import PolicyBlocked
from gateway.guardrails.actions import SEVERITY, Pseudonyms
from gateway.guardrails.outcome_header import OUTCOME_HEADER, outcome_header
from gateway.guardrails.policy import DetectorCache, Guard, InjectionGuard, SpanGuard, share_fast_detection
from gateway.guardrails.registry import compile_rule
from gateway.guardrails.slow_tier import SlowTierFailed, slow_findings
from gateway.guardrails.decisions import blocked, record_decisions
from gateway.guardrails.output_scan import OutputScanner
from gateway.guardrails.stream_scan import GuardFailed, Hit, SpanPlan, Tally, scan_whole

log = logging.getLogger(__name__)

_CACHE_LIMIT = 4096  # (key, team, alias) selections kept; aliases come from requests, so bound it


@dataclass(frozen=True, slots=True)
class _Selection:
    """The rules that apply to one (key, team, alias), split by what they scan, with their plans built
    once: a request only binds its pseudonym table to them."""

    input_spans: tuple[SpanGuard, ...]
    injection: tuple[InjectionGuard, ...]
    output_spans: tuple[SpanGuard, ...]
    input_plan: SpanPlan
    input_slow: tuple[tuple[int, SpanGuard], ...]  # input rules with an NER tier, by plan index
    # (text plan, tool-arguments plan), without and with placeholders to restore: index bool(pseudonyms).
    output_plans: tuple[tuple[SpanPlan, SpanPlan], tuple[SpanPlan, SpanPlan]]
    header_rules: frozenset[str]  # ids of the rules whose input outcomes go in the x-gateway-guardrails header
    output_slow: tuple[tuple[int, SpanGuard], ...] = ()  # output rules with an NER tier, by plan index

    @classmethod
    def build(cls, input_spans: tuple[SpanGuard, ...], injection: tuple[InjectionGuard, ...],
              output_spans: tuple[SpanGuard, ...]) -> _Selection:
        def output(restore: bool) -> tuple[SpanPlan, SpanPlan]:
            return (SpanPlan(output_spans, restore=restore),
                    SpanPlan(output_spans, restore=restore, json_escape_restored=True))

        header_rules = frozenset(g.id for g in (*input_spans, *injection) if g.rule.outcome_header)
        return cls(input_spans, injection, output_spans, SpanPlan(input_spans),
                   tuple((i, g) for i, g in enumerate(input_spans) if g.has_slow_tier), (output(False), output(True)),
                   header_rules, tuple((i, g) for i, g in enumerate(output_spans) if g.has_slow_tier))


class Guardrails:
    def __init__(self, guards: Sequence[Guard]) -> None:
        self.guards = tuple(guards)
        self._cache: dict[tuple, _Selection | None] = {}
        self.unscanned_chars_total = 0  # text that reached the upstream unscanned (metric counter)
        self.held_back_overflow_total = 0  # characters released by the hold-back bound, not a decision
        self._rest: dict[int, tuple[_Selection, SpanPlan | None]] = {}  # at-rest plans (response cache)

    @classmethod
    def compile(cls, rules: Iterable[SourcedRule]) -> Guardrails:
        cache = DetectorCache()
        guards: list[Guard] = []
        seen: dict[str, SourcedRule] = {}
        for rule in rules:
            guard = compile_rule(rule, cache)
            if guard.id in seen:
                raise ConfigError(rule.file, f"{rule.key}.id", f"a unique id ('{guard.id}' is also {seen[guard.id].key})")
            seen[guard.id] = rule
            guards.append(guard)
        share_fast_detection(guards, cache)
        return cls(guards)

    def for_request(self, principal: Principal | None, alias: str | None) -> RequestGuard | None:
        key_id, team = (principal.key_id, principal.team) if principal is not None else (None, None)
        cache_key = (key_id, team, alias)
        try:
            selection = self._cache[cache_key]
        except KeyError:
            selection = self._select(key_id, team, alias)
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            self._cache[cache_key] = selection
        return None if selection is None else RequestGuard(self, selection)

    def rest_plan(self, selection: _Selection) -> SpanPlan | None:
        """The plan `RequestGuard.redact_at_rest` runs, built once per selection."""
        held = self._rest.get(id(selection))
        if held is not None and held[0] is selection:
            return held[1]
        guards = selection.output_spans + tuple(g for g in selection.input_spans
                                                if g.action.kind == "pseudonymize" and g.rule.scans_output)
        plan = SpanPlan(guards) if guards else None
        if len(self._rest) >= _CACHE_LIMIT:
            self._rest.clear()
        self._rest[id(selection)] = (selection, plan)
        return plan

    def _select(self, key_id: str | None, team: str | None, alias: str | None) -> _Selection | None:
        if not self.guards:
            return None
        chosen = [g for g in self.guards if g.applies(key_id, team, alias)]
        spans = [g for g in chosen if isinstance(g, SpanGuard)]
        input_spans = tuple(g for g in spans if g.rule.scans_input)
        injection = tuple(g for g in chosen if isinstance(g, InjectionGuard))
        # A pseudonymize rule's output side is restoring its own placeholders, not new ones.
        output_spans = tuple(g for g in spans if g.rule.scans_output and g.action.kind != "pseudonymize")
        if not (input_spans or injection or output_spans):
            return None
        return _Selection.build(input_spans, injection, output_spans)


class RequestGuard:
    """One request's guardrails: the applicable rules plus that request's pseudonym table."""

    __slots__ = ("owner", "selection", "pseudonyms")

    def __init__(self, owner: Guardrails, selection: _Selection) -> None:
        self.owner = owner
        self.selection = selection
        self.pseudonyms = Pseudonyms()

    async def check_input(self, ctx: RequestContext) -> None:
        spec = APIS.get(ctx.api)
        if spec is None or not spec.scans_input:
            return
        try:
            await self._check_input(ctx, spec)
        finally:
            # Also on a block: the refusal then says which rule refused, without the matched text.
            header = outcome_header(ctx.decisions, self.selection.header_rules)
            if header:
                ctx.response_headers[OUTCOME_HEADER] = header

    async def _check_input(self, ctx: RequestContext, spec: ApiSpec) -> None:
        sel = self.selection
        found = spec.input_texts(ctx.body) if ctx.body is not None else InputTexts()
        if found.unscanned_chars:
            self.owner.unscanned_chars_total += found.unscanned_chars
            ctx.decisions.append(Decision("guardrails", "unscanned", "allow", reasons.GUARDRAIL_UNSCANNED,
                                          "input", unscanned_chars=found.unscanned_chars))
        if sel.injection:
            untrusted = [s.text for s in found.slots if s.untrusted]
            for guard in sel.injection:
                self._check_injection(ctx, guard, untrusted)
        if not sel.input_spans or not found.slots:
            return
        texts = [s.text for s in found.slots]
        plan = sel.input_plan.bind(self.pseudonyms)
        json_plan = None  # tool-call arguments: JSON text, whose escapes a replacement must keep whole
        if any(s.json for s in found.slots):
            json_plan = sel.input_plan.bind(self.pseudonyms)
            json_plan.json_escape_restored = True
        extras = await self._slow_tier(ctx, sel.input_slow, texts, plan) if sel.input_slow else None
        tally = Tally()
        on_block = _input_blocker(ctx)
        try:
            for i, text in enumerate(texts):
                slot_plan = json_plan if json_plan is not None and found.slots[i].json else plan
                new = scan_whole(slot_plan, text, on_block, tally, extras[i] if extras else None)
                if new != text:
                    found.slots[i].set(new)
        except GuardFailed as exc:
            raise self._failed(ctx, exc.guard, "input") from exc
        record_decisions(ctx, plan, tally, "input", plan.failed | json_plan.failed if json_plan is not None else plan.failed)

    async def scan_note(self, ctx: RequestContext, text: str) -> str:
        """A free text that never goes to a model (a feedback comment) through the input span rules only
        (PII, secrets, deny lists; no injection check): the text as those rules leave it, decisions on `ctx`."""
        sel = self.selection
        if not sel.input_spans or not text:
            return text
        plan = sel.input_plan.bind(self.pseudonyms)
        extras = await self._slow_tier(ctx, sel.input_slow, [text], plan) if sel.input_slow else None
        tally = Tally()
        try:
            new = scan_whole(plan, text, _input_blocker(ctx), tally, extras[0] if extras else None)
        except GuardFailed as exc:
            raise self._failed(ctx, exc.guard, "input") from exc
        record_decisions(ctx, plan, tally, "input", plan.failed)
        return new

    def _check_injection(self, ctx: RequestContext, guard: InjectionGuard, texts: list[str]) -> None:
        try:
            score = max((guard.score(t) for t in texts), default=0.0)
        except Exception:
            if guard.rule.on_error == "closed":
                raise self._failed(ctx, guard, "input") from None
            log.exception("injection guardrail %s failed; on_error = open lets the request pass", guard.id)
            ctx.decisions.append(Decision(guard.id, guard.kind, "allow", reasons.GUARDRAIL_ERROR, "input"))
            return
        hit = score >= guard.threshold
        action = guard.action if hit else "allow"
        ctx.decisions.append(Decision(guard.id, guard.kind, action, reasons.INJECTION_DETECTED, "input",
                                      score=round(score, 4)))
        if hit and action == "block":
            raise blocked(reasons.INJECTION_DETECTED)

    async def _slow_tier(self, ctx: RequestContext, slow: Sequence[tuple[int, SpanGuard]],
                         texts: list[str], plan: SpanPlan) -> Sequence[dict | None]:
        """NER findings per text, computed off the event loop within the rules' time bound."""
        try:
            return await slow_findings(slow, texts)
        except SlowTierFailed as exc:
            if exc.closed:
                raise self._failed(ctx, exc.closed[0], "input") from exc
            log.warning("NER tier failed or timed out (%s); on_error = open: fast tier only", exc)
            plan.failed.update(i for i, _ in slow)
            return [None] * len(texts)

    def _failed(self, ctx: RequestContext, guard: Guard, direction: str) -> PolicyBlocked:
        log.error("guardrail %s could not scan the %s; on_error = closed refuses it", guard.id, direction)
        ctx.decisions.append(Decision(guard.id, guard.kind, "block", reasons.GUARDRAIL_ERROR, direction))
        return blocked(reasons.GUARDRAIL_ERROR, "The gateway's content policy could not be checked; try again.",
                       status=503, code="guardrail_unavailable")

    def redact_at_rest(self, text: str) -> str | None:
        """`text` as a cache may keep it: this request's output rules applied without restoring pseudonyms,
        and what a pseudonymize rule that scans output detects replaced by a plain label. None when a block
        rule matches (such an answer is not kept). Records no decision: the caller's answer did that."""
        plan = self.owner.rest_plan(self.selection)
        if plan is None or not text:
            return text

        def on_block(guard: SpanGuard, hit: Hit) -> None:
            raise _RestBlocked

        try:
            return scan_whole(plan, text, on_block, Tally())
        except (_RestBlocked, GuardFailed):
            return None

    def output_scanner(self, ctx: RequestContext) -> OutputScanner | None:
        if not self.selection.output_spans and not self.pseudonyms:
            return None
        spec = APIS.get(ctx.api)
        if spec is not None and not spec.scans_output:
            return None  # embeddings: vectors, no text to scan or placeholders to restore
        return OutputScanner(self, ctx)


class _RestBlocked(Exception):
    """A block rule matched text a cache was about to keep."""


def _input_blocker(ctx: RequestContext):
    def on_block(guard: SpanGuard, hit: Hit) -> None:
        counts = {hit.entity_type: 1}
        ctx.decisions.append(Decision(guard.id, guard.kind, "block", guard.reason(counts), "input", counts))
        raise blocked(guard.reason(counts))

    return on_block


def strongest(actions: Iterable[str]) -> str:
    """The decision word for a set of actions: block > any text edit (reported "redact") > flag > allow."""
    best = max(actions, key=lambda a: SEVERITY.get(a, 0), default="allow")
    return "redact" if SEVERITY.get(best, 0) == 3 else best
