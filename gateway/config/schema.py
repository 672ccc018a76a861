"""The raw schema of the main config file (phase one of loading).

Sections owned by other modules (`[audit]`, `[pricing.*]`, `[providers.*]` options, policy rules) are
kept as raw tables here and validated strictly by their owners when the runtime is compiled (phase
two), so each module owns its own schema and they cannot collide. The skeleton:

    policies = ["policies/*.toml"]      # globs relative to this file
    [server]  [admin]  [store]  [audit]
    [providers.NAME]  type = "openai" | "anthropic" | "azure" | "mock" | ...
    [models.ALIAS]    targets = [{provider, model, weight}], fallbacks = [...], retry_*, breaker_*
    [pricing.MODEL]   input, output, cached_input (USD per million tokens)
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from gateway.config.validate import Strict


class ServerConfig(Strict):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    workers: int = Field(1, ge=1, le=256)
    max_body_bytes: int = Field(4 * 1024 * 1024, ge=1024)
    max_in_flight: int = Field(1024, ge=1)
    # Longest time a request's body may take to arrive once its headers have: a slower body gets 408
    # `request_timeout` in the caller's shape and its connection is closed.
    body_timeout_s: float = Field(30.0, gt=0)
    # Requests still receiving their body, per process (they do not count against `max_in_flight`
    # until it has arrived); past this, new requests get 503 `overloaded` with Retry-After.
    max_body_readers: int = Field(1024, ge=1)
    # Requests one API key may have open at once in a process, receiving their body or in flight;
    # the next gets 429 `key_in_flight_exceeded` with Retry-After while other keys are served.
    max_in_flight_per_key: int = Field(256, ge=1)
    # Longest a response may wait for the client to read (its socket buffer full) before the
    # connection is closed and the request's slots freed; a reading client, however slow, is kept.
    send_timeout_s: float = Field(60.0, gt=0)
    connect_timeout_s: float = Field(5.0, gt=0)
    first_byte_timeout_s: float = Field(120.0, gt=0)
    idle_timeout_s: float = Field(60.0, gt=0)
    total_timeout_s: float = Field(600.0, gt=0)
    drain_timeout_s: float = Field(20.0, ge=0)
    # On SIGTERM, first answer /health/ready with 503 (and keep serving) for this long, so a load balancer
    # that health-checks stops sending before the listener closes; then drain. A stop timeout must exceed
    # this plus drain_timeout_s (Kubernetes: terminationGracePeriodSeconds, plus any preStop pause).
    unready_before_drain_s: float = Field(0.0, ge=0, le=300)
    # The demo key's secret `sk-gateway-demo` is published in the README: serving it off loopback is
    # refused at start-up and on hot reload unless this says so.
    allow_demo_key: bool = False
    # Trust an incoming x-request-id (sanitised) instead of always minting one.
    trust_request_id: bool = True
    # Reload when the main file or a policy file changes (their mtimes are polled about once a second),
    # as on SIGHUP: a file that does not validate is refused and the running config kept.
    watch_config: bool = False
    # Shadow traffic ([models.ALIAS] shadow): sampled copies wait in one bounded queue per process (a full
    # queue drops the copy, counted) and at most `shadow_workers` of them are sent at once.
    shadow_queue: int = Field(256, ge=1, le=100_000)
    shadow_workers: int = Field(4, ge=1, le=256)


class AdminKeyConfig(Strict):
    # A name for the key, shown in audit records of the changes made with it.
    id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")
    # Name of the environment variable holding this admin key.
    key_env: str
    # "read": the request log, history, stats and keys listed; "admin": also changes (keys created,
    # updated, revoked, rotated).
    role: Literal["read", "admin"] = "read"


class AdminConfig(Strict):
    # Name of the environment variable holding the admin key. When set, /stats, /metrics and the
    # admin pages require it (Authorization: Bearer or x-admin-key).
    key_env: str | None = None
    # Serving admin pages without a key on a non-loopback address needs this said explicitly.
    public: bool = False
    # More admin keys, each with a role (`[[admin.keys]]`). The key in `key_env` has the role "admin".
    keys: list[AdminKeyConfig] = []


class StoreConfig(Strict):
    url: str = "memory://"
    on_store_error: Literal["closed", "open"] = "closed"
    socket_timeout_s: float = Field(0.25, gt=0)
    revocation_grace_s: float = Field(30.0, ge=0)


class TargetConfig(Strict):
    provider: str
    model: str
    weight: float = Field(1.0, gt=0)


class CanaryConfig(Strict):
    """A candidate target that gets a share of an alias's traffic, or chosen keys' and tags', and is
    rolled back (for every instance sharing the store) when it does worse than the bounds."""

    # The candidate target (its `weight` is not read).
    target: TargetConfig
    # The share of the alias's other requests sent to the candidate first (0 to 1).
    share: float = Field(0.0, ge=0, le=1)
    # Requests from these key ids, or carrying one of these tags (x-gateway-tags), always go to it.
    keys: list[str] = []
    tags: list[str] = []
    # Roll back when, over the last `window_s` of the candidate's requests on an instance (once it saw
    # `min_requests`), the share that failed passes `max_error_rate`, or the 95th percentile of time to
    # first token passes `max_p95_ms`. At least one bound is required.
    max_error_rate: float | None = Field(None, ge=0, le=1)
    max_p95_ms: float | None = Field(None, gt=0)
    window_s: float = Field(60.0, gt=0)
    min_requests: int = Field(10, ge=1)
    # How often an instance re-reads the shared rollback state (another instance may have rolled back).
    check_s: float = Field(1.0, gt=0)
class ShadowConfig(Strict):
    """A sampled copy of the alias's requests (after input guardrails) sent to a candidate alias, off the
    caller's path; its cost counts against `[[budgets]]` with scope "shadow" (or scope "model" naming the
    candidate), never the caller's."""

    alias: str
    sample: float = Field(ge=0.0, le=1.0)
    # The whole shadow call (all its attempts) is cut after this long; the pair is recorded as timed out.
    timeout_s: float = Field(60.0, gt=0)


class ModelConfig(Strict):
    targets: list[TargetConfig] = Field(min_length=1)
    fallbacks: list[str] = []
    max_attempts: int = Field(3, ge=1, le=10)
    # Per-alias override of the server's total timeout.
    timeout_s: float | None = Field(None, gt=0)
    # Retrying the same target: exponential backoff with full jitter from retry_base_s, each wait
    # (a Retry-After too) capped at retry_max_s, all of one request's retries within retry_budget_s.
    retry_base_s: float = Field(0.1, ge=0)
    retry_max_s: float = Field(5.0, ge=0)
    retry_budget_s: float = Field(10.0, gt=0)
    # The circuit breaker of each of its targets: open after this many consecutive failures, for
    # this long. A target shared by aliases that disagree takes the most cautious values.
    breaker_failures: int = Field(5, ge=1)
    breaker_cooldown_s: float = Field(30.0, ge=0)
    # How each request orders the targets (gateway/routing/strategies/): "weighted" (by `weight`),
    # "least-latency" (lowest moving average of time to first token), "least-busy" (fewest requests
    # in flight) or "cost" (cheapest by the price table). Open breakers are skipped by all of them.
    strategy: str = "weighted"
    # least-latency: the share of requests that take a random order, so every target stays measured.
    explore: float = Field(0.1, ge=0, le=1)
    # A candidate target tried first for a share of requests, rolled back automatically (below).
    canary: CanaryConfig | None = None
    shadow: ShadowConfig | None = None


class DriftConfig(Strict):
    """`[drift]`: the windows PSI compares."""

    # Bin every routed request's features for PSI (off the request path, but ~20 us of CPU each in the
    # background fold): off unless enabled here; a `type = "drift"` alert needs it on.
    enabled: bool = False
    # The current window: the last this many seconds.
    window_s: float = Field(3600.0, gt=0)
    # The reference: the `reference_s` seconds before the current window (default: the previous week)...
    reference_s: float = Field(7 * 86400.0, gt=0)
    # ...or a pinned period, unix seconds (both set): e.g. a week known to be normal.
    reference_since: float | None = None
    reference_until: float | None = None
    # Counts are kept per bucket of this many seconds.
    bucket_s: float = Field(600.0, gt=0)
    # Fewer requests than this in either window: no PSI for that alias.
    min_requests: int = Field(100, ge=1)

    @model_validator(mode="after")
    def _pinned_both(self) -> DriftConfig:
        if (self.reference_since is None) != (self.reference_until is None):
            raise ValueError("reference_since and reference_until go together")
        if self.reference_since is not None and self.reference_until is not None and self.reference_since >= self.reference_until:
            raise ValueError("reference_since must be before reference_until")
        return self


class ResponseCacheConfig(Strict):
    """The response cache's process-wide settings; which requests are cached is said by `[[cache]]` rules."""

    # Entries kept in the process's memory store (least recently used first out).
    max_entries: int = Field(10_000, ge=1, le=10_000_000)
    # Bytes of entries kept in the process's memory store, all together.
    max_bytes: int = Field(64 * 1024 * 1024, ge=1024)
    # Name of the environment variable holding the per-deployment secret that keys the digest of redacted
    # values in cache keys. Unset: a random secret per process, so entries of prompts with redacted values
    # are not shared across processes or restarts (set it when gateways share the Redis store).
    secret_env: str | None = None
    # Longest an identical request waits for the one already asking the upstream (single flight), before
    # asking itself.
    wait_s: float = Field(30.0, gt=0, le=600)
    # With the shared store: how long one gateway holds the lock that makes other gateways wait for its
    # answer instead of asking the upstream too (they poll the store meanwhile).
    lock_s: float = Field(10.0, gt=0, le=600)


class MainConfig(Strict):
    policies: list[str] = ["policies/*.toml"]
    server: ServerConfig = ServerConfig()
    admin: AdminConfig = AdminConfig()
    store: StoreConfig = StoreConfig()
    audit: dict[str, Any] = {}
    providers: dict[str, dict[str, Any]] = {}
    models: dict[str, ModelConfig] = {}
    pricing: dict[str, dict[str, Any]] = {}
    response_cache: ResponseCacheConfig = ResponseCacheConfig()
    tracing: TracingConfig = Field(default_factory=lambda: TracingConfig())
    logs: LogsConfig = Field(default_factory=lambda: LogsConfig())
    drift: DriftConfig = DriftConfig()


POLICY_TABLES = ("keys", "rate_limits", "budgets", "guardrails", "alerts", "cache")


class CacheRule(Strict):
    """One `[[cache]]` rule: the first rule whose scope matches a request decides whether and how its answer
    is cached. A request with no matching rule is not cached and gets no `x-gateway-cache` header."""

    # Rule id, named in config errors.
    id: str = Field(min_length=1)
    # Scope: the rule applies when every non-empty list holds the request's value (empty = all). Key ids.
    keys: tuple[str, ...] = ()
    # Teams of the keys.
    teams: tuple[str, ...] = ()
    # Aliases; shell-style patterns ("gpt-4*") allowed.
    models: tuple[str, ...] = ()
    # Whether matching requests are cached at all (`false`: a rule that exempts its scope from later rules).
    enabled: bool = True
    # How long an entry is served.
    ttl_s: float = Field(300.0, gt=0, le=30 * 86400)
    # An answer whose stored entry would be larger is not cached.
    max_entry_bytes: int = Field(256 * 1024, ge=256, le=16 * 1024 * 1024)
    # `memory`: this process's bounded LRU store; `shared`: the Redis store of `[store] url` (entries with a TTL).
    store: Literal["memory", "shared"] = "memory"
    # Requests whose `temperature` is at most this are cached (a request without one counts as 1.0, the
    # providers' default): only deterministic-enough requests are cached unless the rule raises it.
    max_temperature: float = Field(0.0, ge=0, le=2)
    # `false`: the key includes a keyed digest of the values input guardrails redacted, so two prompts that
    # differ only in those values never share an entry. `true`: they share it (pseudonyms are restored per request).
    share_redacted: bool = False
    # Entries are per API key unless a namespace is named: every key this rule matches then shares entries
    # under it (sharing across keys is always explicit).
    namespace: str | None = Field(None, min_length=1, max_length=64)


class TracingConfig(Strict):
    """OpenTelemetry traces, exported over OTLP/HTTP (protobuf) from a bounded queue by a background
    thread: one server span per request with children for limits, guardrails and each upstream
    attempt (docs/operations.md). Read once at start-up (a reload does not change it)."""

    # Export traces. Off by default: nothing is imported, sampled or sent.
    enabled: bool = False
    # The collector's OTLP/HTTP traces URL (the path included).
    endpoint: str = "http://127.0.0.1:4318/v1/traces"
    # Share of traces kept when the caller sent no `traceparent` (by trace id); a caller's sampled flag decides otherwise.
    sample_ratio: float = Field(1.0, ge=0, le=1)
    # Extra HTTP headers on every export (e.g. an API key); OTEL_EXPORTER_OTLP_TRACES_HEADERS keeps one out of the file.
    headers: dict[str, str] = {}
    # `service.name` of the spans' resource.
    service_name: str = "llm-gateway"
    # Spans waiting for export, at most; more are dropped and counted in gateway_trace_spans_dropped_total.
    queue_size: int = Field(2048, ge=1)
    # Spans per export request (at most queue_size).
    batch_size: int = Field(512, ge=1)
    # Longest wait before a partial batch is exported, in milliseconds.
    schedule_delay_ms: int = Field(1000, ge=1)
    # Longest wait for the collector per export (retries included); also bounds the wait at shutdown.
    timeout_s: float = Field(5.0, gt=0)
    # Put the prompt (the body after input guardrails) and the answer (the bytes the client got) on the server span.
    export_payloads: bool = False
    # Each exported payload is cut to this many characters.
    payload_max_bytes: int = Field(8192, ge=0)


class LogsConfig(Strict):
    """The gateway's operational log on stderr (docs/operations.md, "Logs")."""

    # `json`: one JSON object per line; `text`: plain lines; `auto`: text when stderr is a terminal, else json.
    # The environment (GATEWAY_LOG_FORMAT) and `gateway serve --log-format` override it.
    format: Literal["auto", "json", "text"] = "auto"
