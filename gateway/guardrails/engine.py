"""The guardrail engine: compiled rules, per-request selection, input checks and the output scanner.

Start-up: `Guardrails.compile(rules)` validates every `[[guardrails]]` rule and builds its detectors once.
Per request the flow calls `for_request(principal, alias)`; `None` means no rule applies and costs one
dict lookup. Otherwise the returned `RequestGuard` belongs to that one request (it holds the pseudonym
table): `await check_input(ctx)` scans and rewrites the body, then `output_scanner(ctx)` gives the stream
relay an `OutputScanner`, whose `close()` records the output decisions. Decisions carry counts by entity
type and scores, never the matched text.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from gateway import reasons
from gateway.config.validate import ConfigError, SourcedRule
from gateway.context import Decision, Principal, RequestContext
from gateway.errors import PolicyBlocked
from gateway.guardrails.actions import SEVERITY, Pseudonyms
from gateway.guardrails.policy import DetectorCache, Guard, InjectionGuard, SpanGuard, share_fast_detection
from gateway.guardrails.registry import compile_rule
from gateway.guardrails.stream_scan import GuardFailed, Hit, SpanPlan, StreamScanner, Tally
from gateway.guardrails.surfaces import input_texts

log = logging.getLogger(__name__)

SCANNED_APIS = frozenset({"chat", "messages", "responses", "embeddings"})
_CACHE_LIMIT = 4096  # (key, team, alias) selections kept; aliases come from requests, so bound it


def blocked(reason: str, message: str = "", *, status: int | None = None, code: str | None = None) -> PolicyBlocked:
    """A PolicyBlocked carrying its reason code, with a message safe to show (never the matched text)."""
    return PolicyBlocked(message or f"Blocked by the gateway's content policy ({reason}).", status=status, code=code,
                         reason=reason)


@dataclass(frozen=True, slots=True)
class _Selection:
    """The rules that apply to one (key, team, alias), split by what they scan."""

    input_spans: tuple[SpanGuard, ...]
    injection: tuple[InjectionGuard, ...]
    output_spans: tuple[SpanGuard, ...]


class Guardrails:
    def __init__(self, guards: Sequence[Guard]) -> None:
        self.guards = tuple(guards)
        self._cache: dict[tuple, _Selection | None] = {}
        self.unscanned_chars_total = 0  # text that reached the upstream unscanned (metric counter)
        self.held_back_overflow_total = 0  # characters released by the hold-back bound, not a decision

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

    def _select(self, key_id: str | None, team: str | None, alias: str | None) -> _Selection | None:
        if not self.guards:
            return None
        chosen = [g for g in self.guards if g.applies(key_id, team, alias)]
        spans = [g for g in chosen if isinstance(g, SpanGuard)]
        selection = _Selection(
            input_spans=tuple(g for g in spans if g.rule.scans_input),
            injection=tuple(g for g in chosen if isinstance(g, InjectionGuard)),
            # A pseudonymize rule's output side is restoring its own placeholders, not new ones.
            output_spans=tuple(g for g in spans if g.rule.scans_output and g.action.kind != "pseudonymize"),
        )
        if not (selection.input_spans or selection.injection or selection.output_spans):
            return None
        return selection


class RequestGuard:
    """One request's guardrails: the applicable rules plus that request's pseudonym table."""

    __slots__ = ("owner", "selection", "pseudonyms")

    def __init__(self, owner: Guardrails, selection: _Selection) -> None:
        self.owner = owner
        self.selection = selection
        self.pseudonyms = Pseudonyms()

    async def check_input(self, ctx: RequestContext) -> None:
        if ctx.api not in SCANNED_APIS:
            return
        sel = self.selection
        found = input_texts(ctx.api, ctx.body)
        if found.unscanned_chars:
            self.owner.unscanned_chars_total += found.unscanned_chars
            ctx.decisions.append(Decision("guardrails", "unscanned", "allow", reasons.GUARDRAIL_UNSCANNED,
                                          "input", unscanned_chars=found.unscanned_chars))
        texts = [s.text for s in found.slots]
        if sel.injection:
            untrusted = [s.text for s in found.slots if s.untrusted]
            for guard in sel.injection:
                self._check_injection(ctx, guard, untrusted)
        if not sel.input_spans or not texts:
            return
        plan = SpanPlan(sel.input_spans, self.pseudonyms)
        extras = await self._slow_tier(ctx, plan, texts)
        tally = Tally()
        scanner = StreamScanner(plan, _input_blocker(ctx), tally)
        try:
            for slot, text, extra in zip(found.slots, texts, extras):
                new = scanner.scan(text, extra)
                if new != text:
                    slot.set(new)
        except GuardFailed as exc:
            raise self._failed(ctx, exc.guard, "input") from exc
        _record(ctx, plan, tally, "input")

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

    async def _slow_tier(self, ctx: RequestContext, plan: SpanPlan, texts: list[str]) -> list[dict | None]:
        """NER findings per text, computed off the event loop within the rules' time bound."""
        slow = [(i, g) for i, g in enumerate(plan.guards) if g.has_slow_tier]
        if not slow:
            return [None] * len(texts)

        def run() -> list[dict]:
            return [{i: g.detect_slow(t) for i, g in slow} for t in texts]

        timeout = max(g.ner_timeout for _, g in slow)
        loop = asyncio.get_running_loop()
        try:
            return await asyncio.wait_for(loop.run_in_executor(None, run), timeout)
        except Exception as exc:
            closed = [g for _, g in slow if g.rule.on_error == "closed"]
            if closed:
                raise self._failed(ctx, closed[0], "input") from exc
            log.warning("NER tier failed or timed out (%s); on_error = open: fast tier only", type(exc).__name__)
            for _, g in slow:
                ctx.decisions.append(Decision(g.id, g.kind, "allow", reasons.GUARDRAIL_ERROR, "input"))
            return [None] * len(texts)

    def _failed(self, ctx: RequestContext, guard: Guard, direction: str) -> PolicyBlocked:
        log.error("guardrail %s could not scan the %s; on_error = closed refuses it", guard.id, direction)
        ctx.decisions.append(Decision(guard.id, guard.kind, "block", reasons.GUARDRAIL_ERROR, direction))
        return blocked(reasons.GUARDRAIL_ERROR, "The gateway's content policy could not be checked; try again.",
                       status=503, code="guardrail_unavailable")

    def output_scanner(self, ctx: RequestContext) -> OutputScanner | None:
        if not self.selection.output_spans and not self.pseudonyms:
            return None
        return OutputScanner(self, ctx)


class OutputScanner:
    """Scans one response: per-choice text streams, per-tool-call argument streams, or a whole answer.

    Every `feed*` returns the text safe to send now; at a choice's end call `flush(choice)` and
    `flush_tool_args(choice, i)` for each of `open_tool_calls(choice)`. Call `close()` in the request's
    finally (also after a PolicyBlocked) to record the output decisions.
    """

    def __init__(self, guard: RequestGuard, ctx: RequestContext) -> None:
        self._guard = guard
        self._ctx = ctx
        guards = guard.selection.output_spans
        restore = bool(guard.pseudonyms)
        self.tally = Tally()
        text_plan = SpanPlan(guards, guard.pseudonyms, restore=restore)
        args_plan = SpanPlan(guards, guard.pseudonyms, restore=restore, json_escape_restored=True)
        self._plans = (text_plan, args_plan)
        self._text = StreamScanner(text_plan, self._on_block, self.tally)
        self._args = StreamScanner(args_plan, self._on_block, self.tally)
        self.bound = text_plan.bound
        self._closed = False

    @property
    def max_held(self) -> int:
        """The most characters held back at once in any stream of this response."""
        return max(self._text.max_held, self._args.max_held)

    def feed(self, choice: int, text: str) -> str:
        return self._run(self._text.feed, choice, text)

    def feed_tool_args(self, choice: int, call_index: int, text: str) -> str:
        return self._run(self._args.feed, (choice, call_index), text)

    def flush(self, choice: int) -> str:
        return self._run(self._text.flush, choice)

    def flush_tool_args(self, choice: int, call_index: int) -> str:
        return self._run(self._args.flush, (choice, call_index))

    def open_tool_calls(self, choice: int) -> list[int]:
        """Tool calls of a choice with argument text still held back: flush each at the choice's end."""
        return sorted(k[1] for k in self._args.open_keys() if k[0] == choice)

    def scan_text(self, text: str, choice: int = 0) -> str:
        return self._run(self._text.scan, text)

    def scan_tool_args(self, text: str) -> str:
        """A whole tool-call arguments string (JSON): restored values are JSON-escaped."""
        return self._run(self._args.scan, text)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._guard.owner.held_back_overflow_total += self.tally.overflow_chars
        merged = SpanPlan(self._guard.selection.output_spans)
        merged.failed = self._plans[0].failed | self._plans[1].failed
        _record(self._ctx, merged, self.tally, "output")

    def _run(self, fn, *args) -> str:
        try:
            return fn(*args)
        except GuardFailed as exc:
            raise self._guard._failed(self._ctx, exc.guard, "output") from exc

    def _on_block(self, guard: SpanGuard, hit: Hit) -> None:
        counts = dict(self.tally.counts.pop(self._plans[0].guards.index(guard), {}))
        counts[hit.entity_type] = counts.get(hit.entity_type, 0) + 1
        self._ctx.decisions.append(Decision(guard.id, guard.kind, "block", guard.reason(counts), "output", counts))
        raise blocked(guard.reason(counts))


def _input_blocker(ctx: RequestContext):
    def on_block(guard: SpanGuard, hit: Hit) -> None:
        counts = {hit.entity_type: 1}
        ctx.decisions.append(Decision(guard.id, guard.kind, "block", guard.reason(counts), "input", counts))
        raise blocked(guard.reason(counts))

    return on_block


def _record(ctx: RequestContext, plan: SpanPlan, tally: Tally, direction: str) -> None:
    for i, guard in enumerate(plan.guards):
        counts = tally.counts.get(i)
        if counts:
            entities = dict(counts)
            ctx.decisions.append(Decision(guard.id, guard.kind, guard.action.kind, guard.reason(entities),
                                          direction, entities))
        if i in plan.failed:
            ctx.decisions.append(Decision(guard.id, guard.kind, "allow", reasons.GUARDRAIL_ERROR, direction))
    if tally.overflow_chars:
        action = "redact" if plan.edits_text else "allow"
        ctx.decisions.append(Decision("guardrails", "hold_back", action, reasons.GUARDRAIL_HOLD_BACK_OVERFLOW,
                                      direction, unscanned_chars=0 if plan.edits_text else tally.overflow_chars))


def strongest(actions: Iterable[str]) -> str:
    """The decision word for a set of actions: block > any text edit (reported "redact") > flag > allow."""
    best = max(actions, key=lambda a: SEVERITY.get(a, 0), default="allow")
    return "redact" if SEVERITY.get(best, 0) == 3 else best
