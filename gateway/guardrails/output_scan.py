"""The output side of a request's guardrails: scans one response as it streams, or whole.

`RequestGuard.output_scanner(ctx)` (gateway.guardrails.engine) makes one per response; the stream relay
feeds it text and tool-call arguments and sends what each call returns.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from gateway import reasons
from gateway.context import Decision, RequestContext
from gateway.errors import PolicyBlocked
from gateway.events import Event
from gateway.guardrails.decisions import blocked, record_decisions
from gateway.guardrails.json_escapes import Unescaper, unescape
from gateway.guardrails.policy import SpanGuard
from gateway.guardrails.slow_tier import SlowTierFailed, new_texts, shift, slow_findings
from gateway.guardrails.stream_scan import GuardFailed, Hit, SpanPlan, StreamScanner, Tally, scan_whole

if TYPE_CHECKING:
    from gateway.guardrails.engine import RequestGuard

log = logging.getLogger(__name__)


class OutputScanner:
    """Scans one response: per-choice text streams, per-tool-call argument streams, or a whole answer.

    Every `feed*` returns the text safe to send now; at a choice's end call `flush(choice)` and
    `flush_tool_args(choice, i)` for each of `open_tool_calls(choice)`. Call `close()` in the request's
    finally (also after a PolicyBlocked) to record the output decisions. The stream scanners and the
    tool-arguments plan are made on first use: most answers are whole texts without tool calls.
    """

    __slots__ = ("_guard", "_ctx", "tally", "bound", "rewritten", "_plans", "_text_plan", "_args_plan", "_text",
                 "_args", "_unescapers", "_closed", "slow", "_whole_slow")

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
        self._unescapers: dict[tuple[int, int], Unescaper] = {}
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
        # Arguments are JSON: scanned with their escapes decoded (an escape cut by the chunk waits).
        key = (choice, call_index)
        unescaper = self._unescapers.get(key)
        if unescaper is None:
            unescaper = self._unescapers[key] = Unescaper()
        return self._run(self._args_stream().feed, key, unescaper.feed(text))

    def flush(self, choice: int) -> str:
        return self._run(self._text_stream().flush, choice)

    def flush_tool_args(self, choice: int, call_index: int) -> str:
        key = (choice, call_index)
        unescaper = self._unescapers.pop(key, None)
        held = unescaper.flush() if unescaper is not None else ""
        stream = self._args_stream()
        return (self._run(stream.feed, key, held) if held else "") + self._run(stream.flush, key)

    def open_tool_calls(self, choice: int) -> list[int]:
        """Tool calls of a choice with argument text still held back: flush each at the choice's end."""
        if self._args is None:
            return []
        open_ = {k[1] for k in self._args.open_keys() if k[0] == choice}
        open_.update(k[1] for k, u in self._unescapers.items() if k[0] == choice and u.held)
        return sorted(open_)

    def scan_text(self, text: str, choice: int = 0) -> str:
        extra = self._whole_slow.get((False, text)) if self._whole_slow else None
        out = self._run(scan_whole, self._text_plan, text, self._on_block, self.tally, extra)
        if out != text:
            self.rewritten += 1
        return out

    def scan_tool_args(self, text: str) -> str:
        """A whole tool-call arguments string (JSON), scanned with its escapes decoded (the same JSON
        value): restored values are JSON-escaped. Unchanged by the rules, it is returned as it came."""
        decoded = unescape(text)
        # NER findings are positions in the text as it came: usable only when decoding changed nothing.
        extra = self._whole_slow.get((True, text)) if self._whole_slow and decoded == text else None
        out = self._run(scan_whole, self._tool_args_plan(), decoded, self._on_block, self.tally, extra)
        if out == decoded:
            return text
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
        record_decisions(self._ctx, self._text_plan, self.tally, "output", failed)

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
