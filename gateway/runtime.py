"""Phase two of config loading: compile a `LoadedConfig` into the runtime objects the hot path uses.

`Runtime` is a frozen snapshot, complete when it is built: hot reload compiles a new one through the
same path (off the loop, reading the old snapshot, changing nothing shared) and swaps it in on the
loop; a request keeps the snapshot it started with. Long-lived things that must survive a reload (the
HTTP session, the connection pools, the store, the recorder, the tokenizer) are `Services`, built once
per process. Circuit breakers belong to the router of each snapshot; a reload carries them over per
target (`Router.compile`).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from gateway.alerts.rules import Alerts
from gateway.auth import KeyTable
from gateway.cache.request import CacheServices
from gateway.cache.rules import CacheRules
from gateway.config.loader import LoadedConfig
from gateway.config.schema import ServerConfig
from gateway.config.validate import ConfigError, validate
from gateway.context import Principal, RequestContext
from gateway.guardrails.engine import Guardrails
from gateway.limits import Limits
from gateway.limits.worst_case import compile_worst_cases
from gateway.managed_keys import ManagedKeys
from gateway.pricing import Pricing
from gateway.providers.base import Provider, Timeouts
from gateway.providers.registry import PROVIDERS
from gateway.providers.transport import Upstreams
from gateway.routing.router import Router
from gateway.tokens import Tokenizer

if TYPE_CHECKING:  # built by the app at start-up; the runtime only passes them along
    import aiohttp

    from gateway.records.recorder import Recorder
    from gateway.shadow.runner import Shadows
    from gateway.store.base import Store
    from gateway.store.revocation import RevocationCache
    from gateway.tracing.exporter import Tracer


@dataclass(slots=True)
class Services:
    """Built once per process at start-up, shared by every runtime snapshot."""

    tokens: Tokenizer = field(default_factory=Tokenizer)
    recorder: Recorder | None = None  # None for `check-config`, which serves nothing
    # The providers' HTTP client: built with no I/O, so providers receive it at construction.
    upstreams: Upstreams = field(default_factory=Upstreams)
    # Opened by the app's cleanup context before it serves (they need the running loop, or read files);
    # reading one before that is an AttributeError rather than a None check on every request.
    session: aiohttp.ClientSession = field(init=False)  # webhooks and other calls off the hot path
    store: Store = field(init=False)  # memory or Redis
    revocations: RevocationCache = field(init=False)  # over the store
    cache: CacheServices = field(default_factory=CacheServices)  # response cache entries and open flights
    tracer: Tracer | None = None  # [tracing] enabled: OpenTelemetry spans of finished requests
    # Keys created over the admin API: loaded from the store, kept in step by polling its version
    managed_keys: ManagedKeys = field(default_factory=ManagedKeys)
    shadows: Shadows | None = None  # shadow traffic's queue and workers (gateway.shadow), started with the app


@dataclass(frozen=True, slots=True)
class Runtime:
    config: LoadedConfig
    server: ServerConfig
    keys: KeyTable
    providers: dict[str, Provider]
    router: Router
    services: Services
    pricing: Pricing
    limits: Limits | None = None  # when any rate limit or budget is configured
    # `limits`, or rules-free limits when there are none: what charges a key's own limits (admin API)
    key_limits: Limits | None = None
    guardrails: Guardrails | None = None  # when any guardrail is configured
    alerts: Alerts | None = None  # compiled [[alerts]]; the evaluator (owned by the app) reads it each tick
    generation: int = 0
    cache: CacheRules | None = None  # compiled [[cache]] rules, when any

    @property
    def tokens(self) -> Tokenizer:
        return self.services.tokens

    def cost_usd(self, ctx: RequestContext) -> float:
        if ctx.target is None:
            return 0.0
        return self.pricing.cost_usd(ctx.target.model, ctx.usage)

    def aliases_for(self, principal: Principal) -> list[str]:
        if principal.models:
            return [a for a in principal.models if a in self.router.routes]
        return list(self.router.routes)


def compile_providers(loaded: LoadedConfig, transport: Upstreams) -> dict[str, Provider]:
    server = loaded.main.server
    timeouts = Timeouts(server.connect_timeout_s, server.first_byte_timeout_s, server.idle_timeout_s,
                        server.total_timeout_s)
    providers: dict[str, Provider] = {}
    for name, raw in loaded.main.providers.items():
        kind = raw.get("type")
        cls = PROVIDERS.get(kind) if isinstance(kind, str) else None
        if cls is None:
            raise ConfigError(loaded.path, f"providers.{name}.type", f"one of {', '.join(sorted(PROVIDERS))}")
        options = validate(cls.Options, raw, file=loaded.path, key=f"providers.{name}")
        providers[name] = cls(name, options, file=loaded.path, server_timeouts=timeouts, transport=transport)
    return providers


def compile_runtime(loaded: LoadedConfig, services: Services, generation: int = 0,
                    previous: Runtime | None = None) -> Runtime:
    """Build every runtime object from the loaded config; raises ConfigError without side effects.
    `previous` is the snapshot a reload replaces: only read (its breakers are carried over per target)."""
    providers = compile_providers(loaded, services.upstreams)
    pricing = Pricing.compile(loaded.main.pricing, file=loaded.path)
    router = Router.compile(loaded.main.models, providers, previous.router.breakers if previous is not None else None,
                            pricing=pricing, previous_stats=previous.router.stats if previous is not None else None,
                            file=loaded.path)
    keys = KeyTable.compile(loaded.rules.get("keys", []), loaded.main.models, managed=services.managed_keys)
    limits = None
    rate_rules, budget_rules = loaded.rules.get("rate_limits", []), loaded.rules.get("budgets", [])
    if rate_rules or budget_rules:
        reach = {alias: router.reachable(alias) for alias in router.routes}
        limits = Limits.compile(rate_rules, budget_rules, pricing, reach=reach,
                                on_store_error=loaded.main.store.on_store_error, tokenizer=services.tokens)
    key_limits = limits if limits is not None else Limits(
        [], [], pricing, on_store_error=loaded.main.store.on_store_error, tokenizer=services.tokens,
        worst_cases=compile_worst_cases({alias: router.reachable(alias) for alias in router.routes}, pricing))
    guard_rules = loaded.rules.get("guardrails", [])
    guardrails = Guardrails.compile(guard_rules) if guard_rules else None
    alert_rules = loaded.rules.get("alerts", [])
    alerts = (Alerts.compile(alert_rules, budget_rules, drift_enabled=loaded.main.drift.enabled)
              if alert_rules else None)
    cache = CacheRules.compile(loaded.rules.get("cache", []), loaded.main.response_cache,
                               store_url=loaded.main.store.url, file=loaded.path)
    return Runtime(config=loaded, server=loaded.main.server, keys=keys, providers=providers, router=router,
                   services=services, limits=limits, guardrails=guardrails, pricing=pricing, alerts=alerts,
                   generation=generation, cache=cache, key_limits=key_limits)


async def start_runtime(rt: Runtime) -> None:
    """Bind a compiled runtime to the running services (at start-up and after each reload)."""
    if rt.limits is not None:
        await rt.limits.start(rt.services.store)
    if rt.key_limits is not None and rt.key_limits is not rt.limits:
        await rt.key_limits.start(rt.services.store)
    rt.services.cache.bind(rt.cache, rt.services.store)


def _fingerprint(data: dict[str, Any]) -> str:
    """A short digest of a rule's content, so a summary shows that a rule changed without showing it.
    Literal secrets (a key, a webhook URL) are hashed first, as key_sha256 would hold them."""

    def scrub(v: Any, name: str = "") -> Any:
        if isinstance(v, dict):
            return {k: scrub(x, k) for k, x in v.items()}
        if isinstance(v, list):
            return [scrub(x) for x in v]
        if name in ("key", "url") and isinstance(v, str):
            return hashlib.sha256(v.encode()).hexdigest()
        return v if isinstance(v, (str, int, float, bool)) or v is None else str(v)

    return hashlib.sha256(orjson.dumps(scrub(data), option=orjson.OPT_SORT_KEYS)).hexdigest()[:12]


def config_summary(rt: Runtime) -> dict[str, Any]:
    """The effective config without secrets: what `GET /admin/config` serves and `check-config --against`
    compares. Provider credentials appear as the names of their variables only; the store URL without
    its password; policy rules as ids with a digest of their content."""
    main = rt.config.main
    store_url = main.store.url
    if "@" in store_url:
        scheme, _, rest = store_url.partition("://")
        store_url = f"{scheme}://***@{rest.rsplit('@', 1)[1]}"
    providers = {}
    for name, p in rt.providers.items():
        providers[name] = {"type": p.options.type, "base_url": p.base_url or None, "api_key_env": p.options.api_key_env}
    routes = {}
    for alias, route in rt.router.routes.items():
        routes[alias] = {
            "targets": [f"{t.provider}/{t.model} weight={w:g}" for t, w in zip(route.targets, route.weights)],
            "fallbacks": list(route.fallbacks), "max_attempts": route.max_attempts,
        }
    policies: dict[str, dict[str, str]] = {}
    for table, rules in rt.config.rules.items():
        ids: dict[str, str] = {}
        for r in rules:
            # Rules without an id are named by position, which is only unique within their file.
            rid = str(r.data.get("id") or "") or f"{os.path.basename(r.file)}:{r.key}"
            ids[rid] = _fingerprint(r.data)
        policies[table] = ids
    return {
        "generation": rt.generation,
        "server": main.server.model_dump(mode="json"),
        "admin": main.admin.model_dump(mode="json"),
        "store": {"url": store_url, "on_store_error": main.store.on_store_error},
        "providers": providers,
        "routes": routes,
        "policies": policies,
    }
