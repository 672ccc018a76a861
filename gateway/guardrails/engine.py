"""The guardrail engine: compiled rules, per-request selection, input checks and the output scanner.

Start-up: `Guardrails.compile(rules)` validates every `[[guardrails]]` rule and builds its detectors once.
Per request the flow calls `for_request(principal, alias)`; `None` means no rule applies and costs one
dict lookup. Otherwise the returned `RequestGuard` belongs to that one request (it holds the pseudonym
table): `await check_input(ctx)` scans and rewrites the body, then `output_scanner(ctx)` gives the stream
relay an `OutputScanner`, whose `close()` records the output decisions. Decisions carry counts by entity
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
from gateway.events import Event
from gateway.guardrails.actions import SEVERITY, Pseudonyms
from gateway.guardrails.outcome_header import OUTCOME_HEADER, outcome_header
from gateway.guardrails.policy import DetectorCache, Guard, InjectionGuard, SpanGuard, share_fast_detection
from gateway.guardrails.registry import compile_rule
from gateway.guardrails.slow_tier import SlowTierFailed, new_texts, shift, slow_findings
from gateway.guardrails.stream_scan import GuardFailed, Hit, SpanPlan, StreamScanner, Tally, scan_whole

log = logging.getLogger(__name__)

_CACHE_LIMIT = 4096  # (key, team, alias) selections kept; aliases come from requests, so bound it


def blocked(reason: str, message: str = "", *, status: int | None = None, code: str | None = None) -> PolicyBlocked:
    """A PolicyBlocked carrying its reason code, with a message safe to show (never the matched text)."""
    return PolicyBlocked(message or f"Blocked by the gateway's content policy ({reason}).", status=status, code=code,
                         reason=reason)


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
        extras = await self._slow_tier(ctx, sel.input_slow, texts, plan) if sel.input_slow else None
        tally = Tally()
        on_block = _input_blocker(ctx)
        try:
            for i, text in enumerate(texts):
                new = scan_whole(plan, text, on_block, tally, extras[i] if extras else None)
                if new != text:
                    found.slots[i].set(new)
        except GuardFailed as exc:
            raise self._failed(ctx, exc.guard, "input") from exc
        _record(ctx, plan, tally, "input", plan.failed)

    async def scan_note(self, ctx: RequestContext, text: str) -> str:
        """A free text that never goes to a model (a feedback comment) through the input span rules only
        (PII, secrets, deny lists; no injection check): the text as those rules leave it, decisions on `ctx`."""
        sel = self.selection
        if not sel.input_spans or not text:
            return text
        plan = sel.input_plan.bind(self.pseudonyms)
        extras = await self._slow_tier(ctx, sel.input_slow, [text]) if sel.input_slow else None
        tally = Tally()
        try:
            new = scan_whole(plan, text, _input_blocker(ctx), tally, extras[0] if extras else None)
        except GuardFailed as exc:
            raise self._failed(ctx, exc.guard, "input") from exc
        _record(ctx, plan, tally, "input", plan.failed)
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


class OutputScanner:
    """Scans one response: per-choice text streams, per-tool-call argument streams, or a whole answer.

    Every `feed*` returns the text safe to send now; at a choice's end call `flush(choice)` and
    `flush_tool_args(choice, i)` for each of `open_tool_calls(choice)`. Call `close()` in the request's
    finally (also after a PolicyBlocked) to record the output decisions. The stream scanners and the
    tool-arguments plan are made on first use: most answers are whole texts without tool calls.
    """

    __slots__ = ("_guard", "_ctx", "tally", "bound", "rewritten", "_plans", "_text_plan", "_args_plan", "_text",
                 "_args", "_closed", "slow", "_whole_slow")

    def __init__(self, guard: RequestGuard, ctx: RequestContext) -> None:
        self._guard = guard
        self._ctx = ctx
        self.tally = Tally()
        self._plans = guard.selection.output_plans[bool(guard.pseudonyms)]  # restore what input replaced
        text_plan = self._plans[0]
        self._text_plan = text_plan.bind(guard.pseudonyms)
        self._args_plan: SpanPlan | None = None
        self._text: StreamScanner | None = None
        self._args: StreamScanner | None = None
        self.bound = text_plan.bound
        self.rewritten = 0  # whole texts that came back changed: an answer with none is sent as it came
        self._closed = False
        self.slow = guard.selection.output_slow  # rules with an NER tier: the pipe awaits prepare() first
        self._whole_slow: dict[tuple[bool, str], dict | None] = {}  # (tool args?, whole text) -> findings

    async def prepare(self, events: Sequence[Event]) -> None:
        """Run the NER tier off the event loop over the windows these events' texts will be scanned in
        (call before the chain sees them; only when `slow`)."""
        new = new_texts(events)
        if not new:
            return
        streams = [(self._args_stream() if tool else self._text_stream(), key) for tool, key in new]
        windows = [stream.window_of(key) for stream, key in streams]
        found = await self._slow_run([w + text for (w, _), text in zip(windows, new.values())])
        for (stream, key), (_, base), extras in zip(streams, windows, found):
            stream.slow_found[key] = shift(extras, base) if extras else {}

    async def prepare_whole(self, texts: Sequence[str], tool_args: Sequence[str]) -> None:
        """The NER findings of a whole answer's texts, off the event loop, for scan_text / scan_tool_args."""
        todo = list(texts) + list(tool_args)
        if not todo:
            return
        found = await self._slow_run(todo)
        for i, (text, extras) in enumerate(zip(todo, found)):
            self._whole_slow[(i >= len(texts), text)] = extras

    async def _slow_run(self, texts: list[str]) -> Sequence[dict | None]:
        try:
            return await slow_findings(self.slow, texts)
        except SlowTierFailed as exc:
            if exc.closed:
                raise self._guard._failed(self._ctx, exc.closed[0], "output") from exc
            log.warning("NER tier failed or timed out on output (%s); on_error = open: fast tier only", exc)
            self._text_plan.failed.update(i for i, _ in self.slow)
            return [None] * len(texts)

    @property
    def max_held(self) -> int:
        """The most characters held back at once in any stream of this response."""
        return max(self._text.max_held if self._text else 0, self._args.max_held if self._args else 0)

    def feed(self, choice: int, text: str) -> str:
        # Called for every streamed chunk: the stream is reached directly, not through _run.
        stream = self._text if self._text is not None else self._text_stream()
        try:
            return stream.feed(choice, text)
        except GuardFailed as exc:
            raise self._guard._failed(self._ctx, exc.guard, "output") from exc

    def feed_tool_args(self, choice: int, call_index: int, text: str) -> str:
        return self._run(self._args_stream().feed, (choice, call_index), text)

    def flush(self, choice: int) -> str:
        return self._run(self._text_stream().flush, choice)

    def flush_tool_args(self, choice: int, call_index: int) -> str:
        return self._run(self._args_stream().flush, (choice, call_index))

    def open_tool_calls(self, choice: int) -> list[int]:
        """Tool calls of a choice with argument text still held back: flush each at the choice's end."""
        if self._args is None:
            return []
        return sorted(k[1] for k in self._args.open_keys() if k[0] == choice)

    def scan_text(self, text: str, choice: int = 0) -> str:
        extra = self._whole_slow.get((False, text)) if self._whole_slow else None
        out = self._run(scan_whole, self._text_plan, text, self._on_block, self.tally, extra)
        if out != text:
            self.rewritten += 1
        return out

    def scan_tool_args(self, text: str) -> str:
        """A whole tool-call arguments string (JSON): restored values are JSON-escaped."""
        extra = self._whole_slow.get((True, text)) if self._whole_slow else None
        out = self._run(scan_whole, self._tool_args_plan(), text, self._on_block, self.tally, extra)
        if out != text:
            self.rewritten += 1
        return out

    def refuse_signed(self) -> PolicyBlocked:
        """Signed text (a thinking block) that an output action would rewrite: the answer is refused."""
        self._ctx.decisions.append(Decision("signed_text", "guardrail", "block", reasons.GUARDRAIL_SIGNED_TEXT,
                                            "output"))
        return blocked(reasons.GUARDRAIL_SIGNED_TEXT, "Blocked by the gateway's content policy: a signed thinking "
                                                      "block holds content the policy would rewrite.")

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._guard.owner.held_back_overflow_total += self.tally.overflow_chars
        failed = self._text_plan.failed
        if self._args_plan is not None and self._args_plan.failed:
            failed = failed | self._args_plan.failed
        _record(self._ctx, self._text_plan, self.tally, "output", failed)

    def _tool_args_plan(self) -> SpanPlan:
        if self._args_plan is None:
            self._args_plan = self._plans[1].bind(self._guard.pseudonyms)
        return self._args_plan

    def _text_stream(self) -> StreamScanner:
        if self._text is None:
            self._text = StreamScanner(self._text_plan, self._on_block, self.tally)
        return self._text

    def _args_stream(self) -> StreamScanner:
        if self._args is None:
            self._args = StreamScanner(self._tool_args_plan(), self._on_block, self.tally)
        return self._args

    def _run(self, fn, *args) -> str:
        try:
            return fn(*args)
        except GuardFailed as exc:
            raise self._guard._failed(self._ctx, exc.guard, "output") from exc

    def _on_block(self, guard: SpanGuard, hit: Hit) -> None:
        counts = dict(self.tally.counts.pop(self._text_plan.guards.index(guard), {}))
        counts[hit.entity_type] = counts.get(hit.entity_type, 0) + 1
        self._ctx.decisions.append(Decision(guard.id, guard.kind, "block", guard.reason(counts), "output", counts))
        raise blocked(guard.reason(counts))


class _RestBlocked(Exception):
    """A block rule matched text a cache was about to keep."""


def _input_blocker(ctx: RequestContext):
    def on_block(guard: SpanGuard, hit: Hit) -> None:
        counts = {hit.entity_type: 1}
        ctx.decisions.append(Decision(guard.id, guard.kind, "block", guard.reason(counts), "input", counts))
        raise blocked(guard.reason(counts))

    return on_block


def _record(ctx: RequestContext, plan: SpanPlan, tally: Tally, direction: str, failed: set[int]) -> None:
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


def strongest(actions: Iterable[str]) -> str:
    """The decision word for a set of actions: block > any text edit (reported "redact") > flag > allow."""
    best = max(actions, key=lambda a: SEVERITY.get(a, 0), default="allow")
    return "redact" if SEVERITY.get(best, 0) == 3 else best
