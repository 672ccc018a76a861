"""Model aliases to provider targets, and the attempt loop that opens an upstream response.

An alias lists targets and a `strategy` that orders them for each request (gateway.routing.strategies:
by weight, by measured latency, by requests in flight, or by price), and each request makes up to the alias's `max_attempts` attempts, going round that order:
a failed attempt moves to the next target at once, and comes back to a target that already failed
only after a backoff (exponential with full jitter, or the upstream's Retry-After) that must fit in
the alias's retry budget. A target whose circuit breaker is open is skipped. When the alias is
spent, the aliases named in `fallbacks` are tried the same way, in order.

An attempt fails, and is retried, on a connect error, a timeout before the response headers, 429
or 5xx; any other upstream status is the request's own fault and is returned at once. A 2xx answer
is handed to the caller's `confirm` (gateway.http.commit), which reads it up to its first content:
an answer that fails before then (an error event, a cut, a stall) is retried like a 5xx. Once
confirmed, the request is committed to the target: nothing is retried after that, and so never
after the first byte of a stream has gone to the client.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from time import perf_counter
from typing import TYPE_CHECKING, Protocol

from gateway import reasons
from gateway.config.schema import ModelConfig, ShadowConfig
from gateway.config.validate import ConfigError
from gateway.context import Attempt, RequestContext, Target
from gateway.errors import BadRequest, GatewayError, NotFound, Overloaded, UpstreamError
from gateway.providers.base import Provider, UpstreamReply
from gateway.routing.backoff import RetryPolicy, retryable_status
from gateway.routing.breaker import CircuitBreaker
from gateway.routing.canary import Canary
from gateway.routing.stats import TargetStats
from gateway.routing.strategies import Strategy
from gateway.routing.strategies.registry import STRATEGIES
from gateway.routing.strategies.weighted import Weighted

if TYPE_CHECKING:
    from gateway.pricing import Pricing

_WEIGHTED = Weighted()

log = logging.getLogger("gateway.routing")


@dataclass(frozen=True, slots=True)
class Route:
    alias: str
    targets: tuple[Target, ...]
    weights: tuple[float, ...]
    fallbacks: tuple[str, ...]
    max_attempts: int
    retry: RetryPolicy
    timeout_s: float | None = None  # the alias's total timeout, overriding the server's
    strategy: Strategy = _WEIGHTED
    canary: Canary | None = None
    shadow: ShadowConfig | None = None  # sampled copies to a candidate alias (gateway.shadow)


class Pair(Protocol):
    """What routing needs of a (caller API, provider wire) pair: the caller's flow owns the pairs
    (gateway.adapters) and passes their lookup in, so routing never imports them."""

    @property
    def wire(self) -> str: ...

    @property
    def upstream_api(self) -> str: ...

    def upstream_body(self, ctx: RequestContext, target: Target) -> bytes: ...


PairFor = Callable[[str, str], "Pair | None"]  # (caller API, provider wire) -> the pair, if there is one


Confirm = Callable[["Opened"], Awaitable["GatewayError | None"]]  # None: committed; else why it failed


@dataclass(slots=True)
class Opened:
    adapter: Pair
    provider: Provider
    reply: UpstreamReply
    stats: TargetStats | None = None  # the target's, while the request is in flight there
    started: float = 0.0  # when the attempt that opened it began
    canary: Canary | None = None  # the alias's canary, when the candidate opened it


_MAX_ENCODE_DEPTH = 250  # orjson encodes at most 254 levels; a translator adds a few of its own


def _nested_deeper_than(value: object, limit: int) -> bool:
    """True when `value` has containers nested more than `limit` deep (iterative: no recursion limit)."""
    stack = [(value, 0)]
    while stack:
        v, depth = stack.pop()
        if isinstance(v, dict):
            v = list(v.values())
        if isinstance(v, list):
            if depth >= limit:
                return True
            stack.extend((x, depth + 1) for x in v)
    return False


def breaker_key(target: Target) -> str:
    return f"{target.provider}/{target.model}"


class Router:
    def __init__(self, routes: dict[str, Route], providers: Mapping[str, Provider],
                 breakers: dict[str, CircuitBreaker], rng: random.Random | None = None,
                 stats: dict[str, TargetStats] | None = None) -> None:
        self.routes = routes
        self.providers = providers
        self.breakers = breakers  # by "provider/model"; never changed after construction
        self.rng = rng or random.Random()
        self.stats = stats if stats is not None else {}  # by "provider/model", like the breakers

    def stats_of(self, target: Target) -> TargetStats:
        key = breaker_key(target)
        found = self.stats.get(key)
        if found is None:
            found = self.stats[key] = TargetStats()
        return found

    @classmethod
    def compile(cls, models: Mapping[str, ModelConfig], providers: Mapping[str, Provider],
                previous: Mapping[str, CircuitBreaker] | None = None, *, pricing: Pricing | None = None,
                previous_stats: Mapping[str, TargetStats] | None = None, file: str = "<config>") -> Router:
        """Routes and breakers for a config. Pure: it runs off the loop during a reload, so it only
        reads `previous` (the breakers of the router being replaced) and never changes them; a
        refused reload leaves the serving breakers exactly as they were.

        A target (same "provider/model") whose breaker settings are unchanged keeps the very same
        breaker, state included: an open breaker stays open across a reload. A target whose settings
        changed gets a fresh, closed breaker with the new settings: the operator has said how to judge
        it from now on, and copying live state from another thread could copy it half-updated.
        What was measured per target (`previous_stats`) is carried over the same way: the very
        objects, so requests in flight settle into the stats the new router reads."""
        routes = {}
        settings: dict[str, tuple[int, float]] = {}  # breaker key -> (failures, cooldown), most cautious
        for alias, m in models.items():
            targets = tuple(Target(alias, t.provider, t.model) for t in m.targets)
            retry = RetryPolicy(max_attempts=m.max_attempts, base_s=m.retry_base_s, max_s=m.retry_max_s,
                                retry_budget_s=m.retry_budget_s)
            strategy_cls = STRATEGIES.get(m.strategy)
            if strategy_cls is None:
                raise ConfigError(file, f"models.{alias}.strategy", f"one of {', '.join(sorted(STRATEGIES))}")
            canary = None
            if m.canary is not None:
                if m.canary.max_error_rate is None and m.canary.max_p95_ms is None:
                    raise ConfigError(file, f"models.{alias}.canary", "a bound: max_error_rate or max_p95_ms")
                canary = Canary(alias, m.canary)
            routes[alias] = Route(alias, targets, tuple(t.weight for t in m.targets), tuple(m.fallbacks),
                                  m.max_attempts, retry, m.timeout_s, strategy_cls(m, pricing), canary, m.shadow)
            for t in targets + ((canary.target,) if canary is not None else ()):
                failures, cooldown = settings.get(breaker_key(t), (m.breaker_failures, m.breaker_cooldown_s))
                settings[breaker_key(t)] = (min(failures, m.breaker_failures), max(cooldown, m.breaker_cooldown_s))
        breakers: dict[str, CircuitBreaker] = {}
        for key, (failures, cooldown) in settings.items():
            kept = previous.get(key) if previous is not None else None
            if kept is not None and (kept.failure_threshold, kept.cooldown_s) == (failures, cooldown):
                breakers[key] = kept
            else:
                breakers[key] = CircuitBreaker(failure_threshold=failures, cooldown_s=cooldown)
        stats = {key: previous_stats[key] for key in breakers if previous_stats is not None and key in previous_stats}
        return cls(routes, providers, breakers, stats=stats)

    def route(self, alias: str | None) -> Route:
        route = self.routes.get(alias or "")
        if route is None:
            raise NotFound(f"the model '{alias}' does not exist or you do not have access to it", param="model")
        return route

    def order(self, route: Route) -> list[Target]:
        """The alias's targets, each once, in the order its strategy ranks them for this request."""
        if len(route.targets) == 1:
            return list(route.targets)
        return route.strategy.order(route.targets, route.weights, self.stats_of, self.rng)

    def chain(self, route: Route) -> Iterator[Route]:
        """The alias, then its fallbacks in order (each once)."""
        yield route
        seen = {route.alias}
        for fb in route.fallbacks:
            if fb not in seen:
                seen.add(fb)
                yield self.routes[fb]

    def reachable(self, alias: str) -> tuple[Target, ...]:
        """Every target a request for `alias` can end at: its own, then its fallbacks' (as `chain` tries them)."""
        return tuple(t for r in self.chain(self.routes[alias])
                     for t in r.targets + ((r.canary.target,) if r.canary is not None else ()))

    def breaker_states(self) -> dict[str, str]:
        return {name: b.state for name, b in self.breakers.items()}

    def canary_states(self) -> dict[str, dict[str, object]]:
        return {alias: r.canary.snapshot() for alias, r in self.routes.items() if r.canary is not None}

    def target_stats(self) -> dict[str, dict[str, object]]:
        return {key: s.snapshot() for key, s in self.stats.items()}

    @staticmethod
    def finished(opened: Opened, first_token: float, end: float) -> None:
        """The request that `opened` served is over: it leaves the target's in-flight count, and its
        time to first token (to the end, when no token came) becomes a latency sample."""
        stats = opened.stats
        if stats is None:
            return
        opened.stats = None
        stats.in_flight -= 1
        done = first_token or end
        if done:
            stats.observe(done - opened.started)
            if opened.canary is not None:
                opened.canary.observe(True, done - opened.started)

    async def open(self, ctx: RequestContext, route: Route, trace_headers: Mapping[str, str],
                   pair_for: PairFor, confirm: Confirm | None = None) -> Opened:
        """Try targets until one answers 2xx (and `confirm` accepts the answer); raise the last error
        when none does."""
        last: GatewayError | None = None
        started = perf_counter()
        failed: Target | None = None  # the target of the last failed attempt
        candidate: Target | None = None
        canary = route.canary
        if canary is not None and canary.chosen(ctx, self.rng) and await canary.live(ctx.runtime.services.store):
            candidate = canary.target
        for r in self.chain(route):
            order = self.order(r)
            if candidate is not None and r is route:
                order.insert(0, candidate)
            skipped: set[int] = set()  # positions in `order` this request gives up on
            tries = 0
            i = -1
            while tries < r.max_attempts and len(skipped) < len(order):
                i += 1
                if i % len(order) in skipped:
                    continue
                target = order[i % len(order)]
                provider = self.providers[target.provider]
                adapter = pair_for(ctx.api, provider.wire)
                if adapter is None or adapter.upstream_api not in provider.apis:
                    skipped.add(i % len(order))
                    last = last or BadRequest(f"the model '{r.alias}' cannot serve the {ctx.api} API "
                                              "(no target's provider offers it)", code="unsupported_api")
                    continue
                delay = 0.0
                if target == failed:  # coming back to a target that just failed: back off first
                    delay = r.retry.delay(ctx.attempts, last.retry_after if last is not None else None)
                    if perf_counter() - started + delay > route.retry.retry_budget_s:
                        skipped.add(i % len(order))
                        continue
                breaker = self.breakers[breaker_key(target)]
                if not breaker.allow():
                    skipped.add(i % len(order))
                    last = last or Overloaded("every target of this model is unavailable (circuit open)",
                                              code="circuit_open")
                    continue
                if delay:
                    await asyncio.sleep(delay)
                tries += 1
                stats = self.stats_of(target)
                stats.in_flight += 1
                t0 = perf_counter()
                reply: UpstreamReply | None = None
                try:
                    reply, err = await self._attempt(ctx, target, provider, adapter, trace_headers)
                    if ctx.trace is not None:  # a traced request: one span per attempt
                        ctx.trace.attempts.append(_attempt_mark(target, t0, reply, err))
                    if reply is not None:
                        opened = Opened(adapter, provider, reply, stats, t0,
                                        canary if target is candidate else None)
                        if confirm is not None:
                            err = await confirm(opened)
                        if err is None:
                            _judge(breaker, target, True)
                            return opened
                        reply.close()
                        err = provider.scrub_error(err)
                        err.upstream_status = None  # failed after a 2xx: retried like a 5xx
                except BaseException:
                    if reply is not None:
                        reply.close()
                    stats.in_flight -= 1
                    raise
                stats.in_flight -= 1
                assert err is not None
                if err.upstream_status is None or retryable_status(err.upstream_status):
                    stats.observe_failure(perf_counter() - t0)
                    if target is candidate and canary is not None:
                        canary.observe(False, perf_counter() - t0)
                if err.upstream_status is not None and not retryable_status(err.upstream_status):
                    _judge(breaker, target, True)  # the upstream is healthy; the request was not
                    raise err
                log.warning("upstream %s failed (attempt %d of request %s): %s", breaker_key(target), ctx.attempts,
                            ctx.request_id, err.code, extra={
                                "event": "upstream_failure", "target": breaker_key(target), "reason": err.code,
                                "upstream_status": err.upstream_status, "request_id": ctx.request_id})
                _judge(breaker, target, False)
                last, failed = err, target
        err = last or UpstreamError("no target could serve this request")
        retry_after = err.retry_after
        if retry_after and err.status in (429, 503):
            err.headers = {**err.headers, "retry-after": retry_after}
        raise err

    async def _attempt(self, ctx: RequestContext, target: Target, provider: Provider, adapter: Pair,
                       trace_headers: Mapping[str, str]) -> tuple[UpstreamReply | None, GatewayError | None]:
        """One upstream attempt: the reply when it answered 2xx, else the error it failed with."""
        ctx.attempts += 1
        ctx.target = target
        # No exception allowlist here: request validation (gateway.http.parse) checks every field a
        # translator reads, so an exception from a translator is a bug in the gateway, and reaches the
        # flow's handler as a logged 500 with the request id, never a 400 blaming the caller. The one
        # thing validation does not bound is nesting (JSON decodes 1024 levels, encodes 254): that is
        # decided by looking at the caller's body, only once encoding has failed.
        try:
            body = adapter.upstream_body(ctx, target)
        except TypeError:
            if not _nested_deeper_than(ctx.body, _MAX_ENCODE_DEPTH):
                raise
            raise BadRequest(f"the request nests JSON deeper than {_MAX_ENCODE_DEPTH} levels, which cannot be "
                             f"sent to the {adapter.wire} API", reason=reasons.BAD_REQUEST) from None
        req = provider.build(adapter.upstream_api, target.model, ctx.stream, body, trace_headers)
        t0 = perf_counter()
        if not ctx.timings.upstream_start:
            ctx.timings.upstream_start = t0
        try:
            reply = await provider.send(req)
        except GatewayError as err:
            ctx.timings.upstream_wait += perf_counter() - t0
            return None, provider.scrub_error(err)
        if reply.status < 300:
            ctx.timings.first_byte = perf_counter()
            ctx.timings.upstream_wait += ctx.timings.first_byte - t0
            return reply, None
        try:
            body = await reply.read()
        except GatewayError as err:
            return None, provider.scrub_error(err)
        finally:
            reply.close()
            ctx.timings.upstream_wait += perf_counter() - t0
        # The key is taken out of the decoded message, code and param, not the raw body, where JSON
        # escapes would hide it from a byte search (and a short key would match ordinary text).
        mapped = provider.scrub_error(provider.map_error(reply.status, body))
        mapped.upstream_status = reply.status
        retry_after = reply.headers.get("retry-after")
        if retry_after is not None and provider.scrubber is not None:
            retry_after = provider.scrubber.text(retry_after)
        if retry_after is not None:  # else what the error body said, if anything (Gemini's RetryInfo)
            mapped.retry_after = retry_after
        return None, mapped


def _judge(breaker: CircuitBreaker, target: Target, ok: bool) -> None:
    """Count an attempt in the target's breaker, and log when that opens or closes it."""
    was = breaker.state
    if ok:
        breaker.record_success()
    else:
        breaker.record_failure()
    now = breaker.state
    if now != was and now in ("open", "closed"):
        log.warning("circuit breaker of %s %s", breaker_key(target), "opened" if now == "open" else "closed",
                    extra={"event": "breaker_" + ("opened" if now == "open" else "closed"),
                           "target": breaker_key(target)})


def _attempt_mark(target: Target, start: float, reply: UpstreamReply | None, err: GatewayError | None) -> Attempt:
    if reply is not None:
        return Attempt(target, start, perf_counter(), reply.status)
    return Attempt(target, start, perf_counter(), err.upstream_status or 0 if err is not None else 0,
                   err.code if err is not None else None)
