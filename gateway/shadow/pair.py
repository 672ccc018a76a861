"""One shadow pair: what each side answered, their comparison, and the per-alias summary of pairs.

Similarity is cheap on purpose (it runs for every pair, in the background): the Jaccard index of the two
answers' lower-cased word sets (1.0: the same words; 0.0: none shared; both empty: 1.0) and the cosine of
their character-trigram count vectors, which is kinder to reworded answers.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gateway.context import RequestContext

MAX_ANSWER_CHARS = 4096  # what one side keeps for the comparison (bounded: milliseconds of CPU); the rest is counted
_WORD = re.compile(r"\w+", re.UNICODE)


@dataclass(slots=True)
class AnswerSink:
    """The first choice's text (its first MAX_ANSWER_CHARS) and finish reason, filled by
    `filters.answer.AnswerText`; `chars` counts the whole text."""

    parts: list[str] = field(default_factory=list)
    kept: int = 0
    chars: int = 0
    finish: str | None = None

    def add(self, text: str) -> None:
        room = MAX_ANSWER_CHARS - self.kept
        if room > 0 and text:
            self.parts.append(text[:room])
            self.kept += min(len(text), room)
        self.chars += len(text)

    def text(self) -> str:
        return "".join(self.parts)


@dataclass(slots=True)
class Side:
    """One side of a pair, as its record reports it."""

    status: int = 0
    latency_ms: float = 0.0
    ttft_ms: float | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    finish_reason: str | None = None
    answer_chars: int = 0
    error_code: str | None = None
    provider: str | None = None
    model: str | None = None

    def view(self) -> dict:
        return {"status": self.status, "latency_ms": self.latency_ms, "ttft_ms": self.ttft_ms,
                "input_tokens": self.input_tokens, "output_tokens": self.output_tokens,
                "cost_usd": self.cost_usd, "finish_reason": self.finish_reason,
                "answer_chars": self.answer_chars, "error_code": self.error_code,
                "provider": self.provider, "model": self.model}


def side_of(ctx: RequestContext, cost_usd: float) -> Side:
    """One side as its finished context reports it (the same measures as the request record)."""
    t = ctx.timings
    end = t.end or t.start
    err = ctx.error
    answer = ctx.answer
    return Side(status=ctx.status or (err.status if err is not None else 0),
                latency_ms=round(max(end - t.start, 0.0) * 1000.0, 3) if t.start else 0.0,
                ttft_ms=round((t.first_token - t.start) * 1000.0, 3) if t.first_token and t.start else None,
                input_tokens=ctx.usage.input_tokens, output_tokens=ctx.usage.output_tokens, cost_usd=cost_usd,
                finish_reason=answer.finish if answer is not None else None,
                answer_chars=answer.chars if answer is not None else 0,
                error_code=err.code if err is not None else None,
                provider=ctx.target.provider if ctx.target is not None else None,
                model=ctx.target.model if ctx.target is not None else None)


class ShadowPair:
    """Set on a sampled primary's context: the flow hands it the primary's side when the caller is done."""

    __slots__ = ("future", "answer")

    def __init__(self, future, answer: AnswerSink) -> None:  # future: asyncio.Future[tuple[Side, str]]
        self.future = future
        self.answer = answer

    def done(self, side: Side) -> None:
        if not self.future.done():
            self.future.set_result((side, self.answer.text()))


def similarity(a: str, b: str) -> tuple[float, float]:
    """(jaccard, cosine), rounded: run in a thread, off the event loop."""
    return round(jaccard(a, b), 4), round(trigram_cosine(a, b), 4)


def jaccard(a: str, b: str) -> float:
    wa, wb = set(_WORD.findall(a.lower())), set(_WORD.findall(b.lower()))
    if not wa and not wb:
        return 1.0
    return len(wa & wb) / len(wa | wb)


def trigram_cosine(a: str, b: str) -> float:
    if not a and not b:
        return 1.0
    ca, cb = Counter(zip(a, a[1:], a[2:])), Counter(zip(b, b[1:], b[2:]))
    if not ca or not cb:
        return 1.0 if a == b else 0.0
    small, big = (ca, cb) if len(ca) <= len(cb) else (cb, ca)
    dot = sum(n * big[g] for g, n in small.items() if g in big)
    return dot / math.sqrt(sum(n * n for n in ca.values()) * sum(n * n for n in cb.values()))


class _Summary:
    __slots__ = ("pairs", "failed", "timeouts", "sums", "finish_same")

    def __init__(self) -> None:
        self.pairs = 0
        self.failed = 0  # the shadow side failed (error, refusal, timeout)
        self.timeouts = 0
        self.finish_same = 0
        # sums over compared pairs (both sides answered): primary/shadow latency, ttft, output tokens, cost,
        # answer chars, jaccard, cosine
        self.sums = [0.0] * 12

    def add(self, rec: dict) -> None:
        self.pairs += 1
        p, s = rec["primary"], rec["shadow"]
        if rec["outcome"] != "compared":
            self.failed += 1
            self.timeouts += rec["outcome"] == "timeout"
            return
        vals = (p["latency_ms"], s["latency_ms"], p["ttft_ms"] or 0.0, s["ttft_ms"] or 0.0, p["output_tokens"],
                s["output_tokens"], p["cost_usd"], s["cost_usd"], p["answer_chars"], s["answer_chars"],
                rec["jaccard"], rec["cosine"])
        for i, v in enumerate(vals):
            self.sums[i] += v
        self.finish_same += p["finish_reason"] == s["finish_reason"]

    def view(self) -> dict:
        n = self.pairs - self.failed
        mean = [round(v / n, 4) if n else None for v in self.sums]
        return {
            "pairs": self.pairs, "compared": n, "shadow_failed": self.failed, "shadow_timeouts": self.timeouts,
            "primary": {"latency_ms": mean[0], "ttft_ms": mean[2], "output_tokens": mean[4], "cost_usd": mean[6],
                        "answer_chars": mean[8]},
            "shadow": {"latency_ms": mean[1], "ttft_ms": mean[3], "output_tokens": mean[5], "cost_usd": mean[7],
                       "answer_chars": mean[9]},
            "jaccard": mean[10], "cosine": mean[11],
            "finish_reason_agreement": round(self.finish_same / n, 4) if n else None,
            "shadow_cost_usd_total": round(self.sums[7], 6),
        }


class ShadowStats:
    """Per primary alias (aliases come from config): pair counts, means of both sides, similarity."""

    def __init__(self) -> None:
        self.by_alias: dict[tuple[str, str], _Summary] = {}
        self.sampled = 0
        self.dropped = 0  # the queue was full
        self.skipped = 0  # the shadow budget refused the copy

    def add(self, rec: dict) -> None:
        k = (rec["alias"], rec["candidate"])
        s = self.by_alias.get(k)
        if s is None:
            s = self.by_alias[k] = _Summary()
        s.add(rec)

    def snapshot(self) -> dict:
        return {"sampled": self.sampled, "dropped": self.dropped,
                "by_alias": {a: {"candidate": c, **s.view()} for (a, c), s in self.by_alias.items()}}
