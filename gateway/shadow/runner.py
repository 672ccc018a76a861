"""The shadow sender: one bounded queue and a few worker tasks per process, off every caller's path.

The flow calls `offer` for a request whose alias has `shadow` (after input guardrails, so the copy is
the redacted body): one random draw against `sample`; a sampled request's body is copied (unstreamed),
put on the queue without waiting (a full queue drops the copy and counts it), and the primary's context
gets a `ShadowPair` and an answer sink. A worker sends the copy to the candidate alias through the same
router (retries, fallbacks, breakers) with its own context: `shadow_of` set, so only budgets of scope
"shadow" (or "model" naming the candidate) reserve and settle it, never the caller's limits. The pair is
recorded when both sides are done (a callback on the primary's future: a worker never waits for the
caller). Nothing here raises into the flow; a stalled candidate is cut at `timeout_s` and holds a worker,
never a caller.

The copy is sent unstreamed whatever the caller asked: its `ttft_ms` is the time to the upstream's first
byte, the primary's the time to its first token to the client.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import time
from dataclasses import dataclass
from time import perf_counter
from typing import TYPE_CHECKING, Any

import orjson

from gateway.adapters.registry import ADAPTERS, adapter_for
from gateway.apis.registry import APIS
from gateway.config.schema import ShadowConfig
from gateway.context import Principal, RequestContext
from gateway.errors import GatewayError, RateLimited
from gateway.records.schema import shadow_record
from gateway.shadow.pair import AnswerSink, ShadowPair, ShadowStats, Side, side_of, similarity

if TYPE_CHECKING:
    from gateway.records.recorder import Recorder
    from gateway.runtime import Runtime

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Job:
    runtime: Runtime
    api: str
    alias: str
    cfg: ShadowConfig
    principal: Principal | None
    body: dict[str, Any]
    request_id: str
    trace_id: str
    span_id: str
    tags: tuple[str, ...]
    primary: asyncio.Future


class Shadows:
    def __init__(self, recorder: Recorder | None, rng: random.Random | None = None) -> None:
        self.recorder = recorder
        self.rng = rng or random.Random()
        self.stats = ShadowStats()
        self._queue: asyncio.Queue[_Job] | None = None
        self._tasks: list[asyncio.Task] = []
        self._pending: set[asyncio.Task] = set()  # pairs being compared and recorded

    def start(self, queue_size: int, workers: int) -> None:
        self._queue = asyncio.Queue(queue_size)
        self._tasks = [asyncio.create_task(self._worker(), name=f"shadow-{i}") for i in range(workers)]

    async def close(self) -> None:
        if self._pending:  # pairs already complete: record them before the recorder closes
            await asyncio.wait(set(self._pending), timeout=2.0)
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        self._queue = None

    @property
    def queue_depth(self) -> int:
        return self._queue.qsize() if self._queue is not None else 0

    def offer(self, ctx: RequestContext, cfg: ShadowConfig) -> None:
        """Maybe sample this request for its alias's shadow: no I/O, no waiting, never raises."""
        if cfg.sample <= 0.0 or (cfg.sample < 1.0 and self.rng.random() >= cfg.sample):
            return
        queue = self._queue
        if queue is None or ctx.body is None or ctx.alias is None:
            return
        self.stats.sampled += 1
        if queue.full():
            self.stats.dropped += 1
            if self.recorder is not None:
                self.recorder.shadow_dropped(ctx.alias)
            return
        body = orjson.loads(orjson.dumps(ctx.body))  # the redacted body, as it stands now, detached
        body["model"] = cfg.alias
        body.pop("stream", None)
        body.pop("stream_options", None)
        fut = asyncio.get_running_loop().create_future()
        ctx.answer = AnswerSink()
        ctx.shadow_pair = ShadowPair(fut, ctx.answer)
        queue.put_nowait(_Job(ctx.runtime, ctx.api, ctx.alias, cfg, ctx.principal, body, ctx.request_id,
                              ctx.trace_id, ctx.span_id, ctx.tags, fut))

    async def _worker(self) -> None:
        assert self._queue is not None
        queue = self._queue
        while True:
            job = await queue.get()
            try:
                side, answer, outcome = await self._send(job)
            except Exception:  # a bug here must not stop the worker; the pair is lost and logged
                log.exception("shadow copy of request %s failed", job.request_id)
                continue
            job.primary.add_done_callback(lambda f, j=job, s=side, a=answer, o=outcome: self._pair(j, s, a, o, f))

    async def _send(self, job: _Job) -> tuple[Side, str, str]:
        rt = job.runtime
        spec = APIS[job.api]
        ctx = RequestContext(request_id=(job.request_id + "-shadow")[:128], api=job.api, shape=spec.error_shape,
                             runtime=rt, received_at=time.time(), trace_id=job.trace_id, span_id=os.urandom(8).hex(),
                             parent_span_id=job.span_id, principal=job.principal, body=job.body, alias=job.cfg.alias,
                             tags=job.tags, shadow_of=job.alias)
        ctx.answer = AnswerSink()
        ctx.timings.start = perf_counter()
        outcome = "compared"
        opened = None
        try:
            async with asyncio.timeout(job.cfg.timeout_s):
                route = rt.router.route(ctx.alias)
                if rt.limits is not None:
                    est = rt.limits.estimate_prompt_tokens(ctx) if rt.limits.needs_prompt_tokens else 0
                    await rt.limits.admit(ctx, est, spec.max_output_tokens(job.body) or 0, spec.output_choices(job.body))
                headers = {"traceparent": f"00-{ctx.trace_id}-{ctx.span_id}-01", "x-request-id": ctx.request_id}
                opened = await rt.router.open(ctx, route, headers, adapter_for)
                raw = await opened.reply.read()
                ctx.timings.upstream_wait += perf_counter() - ctx.timings.first_byte
                ADAPTERS[(ctx.api, opened.provider.wire)].response(ctx, raw, None)
                ctx.status = 200
                ctx.timings.first_token = ctx.timings.first_byte
        except TimeoutError:
            outcome = "timeout"
            ctx.status = 504
        except RateLimited as err:
            outcome = "refused"  # the shadow budget is used up
            ctx.error = err
        except GatewayError as err:
            outcome = "shadow_error"
            ctx.error = err
        finally:
            ctx.timings.end = perf_counter()
            if opened is not None:
                opened.reply.close()
            if rt.limits is not None and ctx.admission is not None:
                try:
                    await rt.limits.settle(ctx)
                except Exception:
                    log.exception("settling the shadow budget failed for request %s", ctx.request_id)
        cost = rt.cost_usd(ctx) if outcome == "compared" else 0.0
        return side_of(ctx, cost), ctx.answer.text(), outcome

    def _pair(self, job: _Job, shadow: Side, shadow_text: str, outcome: str, fut: asyncio.Future) -> None:
        if fut.cancelled():
            return
        primary, primary_text = fut.result()
        if outcome == "compared" and primary.status != 200:
            outcome = "primary_failed"
        task = asyncio.get_running_loop().create_task(self._record(job, primary, primary_text, shadow, shadow_text, outcome))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _record(self, job: _Job, primary: Side, primary_text: str, shadow: Side, shadow_text: str,
                      outcome: str) -> None:
        # Responses and embeddings are not on the event model: their answers' texts are not compared.
        jac = cos = None
        if outcome == "compared" and job.api in ("chat", "messages"):
            # Milliseconds of CPU for long answers: in a thread, so the loop keeps serving between GIL turns.
            jac, cos = await asyncio.to_thread(similarity, primary_text, shadow_text)
        rec = shadow_record(job.request_id, job.alias, job.cfg.alias, job.principal.key_id if job.principal else None,
                            outcome, primary.view(), shadow.view(), jac, cos)
        self.stats.add(rec)
        if self.recorder is not None:
            self.recorder.submit_shadow(rec)
