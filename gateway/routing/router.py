"""Model aliases to provider targets, and the attempt loop that opens an upstream response.

An alias lists weighted targets. Each request draws its order of targets by weight (without
replacement), then tries the aliases named in `fallbacks`, in order. An attempt that fails with a
connect error, a timeout before the first byte, 429 or 5xx moves on to the next target (after a
backoff that honours Retry-After) until the alias's `max_attempts` or the per-request retry budget
is spent. Once an upstream has answered 2xx, the request is committed to it: nothing is retried after
the first byte of a stream has gone to the client.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from time import perf_counter

from gateway.adapters.base import Adapter
from gateway.adapters.registry import ADAPTERS
from gateway.config.schema import ModelConfig
from gateway.context import RequestContext, Target
from gateway.errors import BadRequest, GatewayError, NotFound, UpstreamError
from gateway.providers.base import Provider, UpstreamReply
from gateway.routing.backoff import RetryPolicy, retryable_status
from gateway.routing.breaker import CircuitBreaker


@dataclass(frozen=True, slots=True)
class Route:
    alias: str
    targets: tuple[Target, ...]
    weights: tuple[float, ...]
    fallbacks: tuple[str, ...]
    max_attempts: int


@dataclass(slots=True)
class Opened:
    adapter: Adapter
    provider: Provider
    reply: UpstreamReply


class Router:
    def __init__(self, routes: dict[str, Route], providers: Mapping[str, Provider],
                 breakers: dict[str, CircuitBreaker], retry: RetryPolicy) -> None:
        self.routes = routes
        self.providers = providers
        self.breakers = breakers  # by "provider/model", shared across reloads by the caller
        self.retry = retry

    @classmethod
    def compile(cls, models: Mapping[str, ModelConfig], providers: Mapping[str, Provider],
                breakers: dict[str, CircuitBreaker] | None = None, retry: RetryPolicy | None = None) -> "Router":
        routes = {}
        breakers = breakers if breakers is not None else {}
        for alias, m in models.items():
            targets = tuple(Target(alias, t.provider, t.model) for t in m.targets)
            routes[alias] = Route(alias, targets, tuple(t.weight for t in m.targets), tuple(m.fallbacks), m.max_attempts)
            for t in targets:
                breakers.setdefault(f"{t.provider}/{t.model}", CircuitBreaker())
        return cls(routes, providers, breakers, retry or RetryPolicy())

    def route(self, alias: str | None) -> Route:
        route = self.routes.get(alias or "")
        if route is None:
            raise NotFound(f"the model '{alias}' does not exist or you do not have access to it", param="model")
        return route

    def _order(self, route: Route) -> list[Target]:
        if len(route.targets) == 1:
            return list(route.targets)
        pool = list(zip(route.targets, route.weights))
        order: list[Target] = []
        while pool:
            pick = random.random() * sum(w for _, w in pool)
            for i, (t, w) in enumerate(pool):
                pick -= w
                if pick <= 0 or i == len(pool) - 1:
                    order.append(t)
                    pool.pop(i)
                    break
        return order

    def plan(self, route: Route) -> Iterator[tuple[Route, Target]]:
        seen = {route.alias}
        yield from ((route, t) for t in self._order(route))
        for fb in route.fallbacks:
            if fb in seen:
                continue
            seen.add(fb)
            fb_route = self.routes[fb]
            yield from ((fb_route, t) for t in self._order(fb_route))

    def breaker_states(self) -> dict[str, str]:
        return {name: b.state for name, b in self.breakers.items()}

    async def open(self, ctx: RequestContext, route: Route, trace_headers: Mapping[str, str]) -> Opened:
        """Try targets until one answers 2xx; raise the last error when none does."""
        last: GatewayError | None = None
        deadline = perf_counter() + self.retry.retry_budget_s
        tried_in_route: dict[str, int] = {}
        for r, target in self.plan(route):
            n = tried_in_route.get(r.alias, 0)
            if n >= r.max_attempts:
                continue
            provider = self.providers[target.provider]
            adapter = ADAPTERS.get((ctx.api, provider.wire))
            if adapter is None:
                last = BadRequest(f"the model '{r.alias}' cannot serve this API", code="unsupported_api")
                continue
            breaker = self.breakers[f"{target.provider}/{target.model}"]
            if not breaker.allow():
                last = last or UpstreamError("every target of this model is unavailable (circuit open)",
                                             code="circuit_open")
                continue
            if ctx.attempts:
                delay = self.retry.delay(ctx.attempts, getattr(last, "retry_after", None))
                if perf_counter() + delay > deadline:
                    break
                if delay:
                    await asyncio.sleep(delay)
            tried_in_route[r.alias] = n + 1
            ctx.attempts += 1
            ctx.target = target
            req = provider.build(adapter.upstream_api, target.model, ctx.stream,
                                 adapter.upstream_body(ctx, target), trace_headers)
            t0 = perf_counter()
            if not ctx.timings.upstream_start:
                ctx.timings.upstream_start = t0
            try:
                reply = await provider.send(req)
            except GatewayError as err:
                ctx.timings.upstream_wait += perf_counter() - t0
                breaker.record_failure()
                last = err
                continue
            if reply.status < 300:
                ctx.timings.first_byte = perf_counter()
                ctx.timings.upstream_wait += ctx.timings.first_byte - t0
                breaker.record_success()
                return Opened(adapter, provider, reply)
            body = await reply.read()
            reply.close()
            ctx.timings.upstream_wait += perf_counter() - t0
            err = provider.map_error(reply.status, body)
            err.retry_after = reply.headers.get("retry-after")  # type: ignore[attr-defined]
            if not retryable_status(reply.status):
                breaker.record_success()  # the upstream is healthy; the request was not
                raise err
            breaker.record_failure()
            last = err
        raise last or UpstreamError("no target could serve this request")
