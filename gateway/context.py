"""The typed request context that flows down the hot path.

One `RequestContext` is created per request by the HTTP layer and passed to every stage (auth,
policies, router, provider adapter, stream relay). Stages read and write its fields; nothing else
carries per-request state. The finished context is what the request record is built from.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from time import perf_counter
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imports for type checkers only: at run time the context module depends on nothing
    from gateway.errors import GatewayError
    from gateway.filters.cache_fill import CacheFill
    from gateway.limits.admission import Admission
    from gateway.limits.key_limits import KeyLimits
    from gateway.runtime import Runtime
    from gateway.shadow.pair import AnswerSink, ShadowPair


@dataclass(slots=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    # True when the numbers were counted by the gateway (tiktoken) because the provider gave none.
    estimated: bool = False
    # The part of input_tokens written to the provider's prompt cache (Anthropic's cache_creation_input_tokens,
    # Bedrock's cacheWriteInputTokens), billed at the model's cache-write price.
    cache_write_tokens: int = 0
    # The part of output_tokens spent on reasoning (OpenAI's reasoning_tokens, Gemini's thoughts): billed as
    # output, recorded apart.
    reasoning_tokens: int = 0


@dataclass(slots=True)
class Decision:
    """One policy decision. Never holds the matched text itself (no PII in records)."""

    policy: str  # rule id from the policy file, or the policy kind
    kind: str  # "auth", "rate_limit", "budget", "pii", "injection", "deny_list", ...
    action: str  # "allow", "redact", "mask", "hash", "pseudonymize", "block", "flag", "refuse"
    reason: str  # a reason code from gateway.reasons
    direction: str = "input"  # "input" or "output"
    entities: dict[str, int] = field(default_factory=dict)
    score: float | None = None
    unscanned_chars: int = 0


@dataclass(slots=True)
class Principal:
    """The authenticated caller: a virtual key from the policy files."""

    key_id: str
    team: str | None = None
    user: str | None = None
    models: tuple[str, ...] = ()  # allowed aliases; empty means all
    tags: tuple[str, ...] = ()
    expires_at: float | None = None  # unix seconds
    limits: KeyLimits | None = None  # the key's own limits (keys managed over the admin API)


@dataclass(slots=True)
class Target:
    """Where one attempt of the request goes."""

    alias: str
    provider: str  # provider name from [providers.NAME]
    model: str  # upstream model name


@dataclass(slots=True)
class Timings:
    """perf_counter() stamps, in seconds; 0.0 means "did not happen"."""

    start: float = 0.0
    upstream_start: float = 0.0
    first_byte: float = 0.0  # first upstream byte of the response
    first_token: float = 0.0  # first chunk carrying content sent to the client
    end: float = 0.0
    upstream_wait: float = 0.0  # time spent waiting on the upstream (all attempts)
    client_wait: float = 0.0  # time spent waiting for the client to take streamed bytes (backpressure)


@dataclass(slots=True)
class Attempt:
    """One upstream attempt of a traced request: perf_counter() stamps and how it ended."""

    target: Target
    start: float
    end: float
    status: int = 0  # the upstream's HTTP status; 0 when none came (connect error, timeout)
    error: str | None = None  # the error code when the attempt failed


@dataclass(slots=True)
class TraceMarks:
    """What a traced request notes beyond its record, for gateway.tracing to build its spans from once
    the request is over. None on a request that is not traced, so untraced requests pay one `is None`
    per stage."""

    stages: list[tuple[str, float, float]] = field(default_factory=list)  # (span name, start, end)
    attempts: list[Attempt] = field(default_factory=list)
    finish_reasons: list[str] = field(default_factory=list)
    output_scanned: bool = False  # an output guardrail read the answer (from its first byte to the end)
    payload: list[bytes] | None = None  # the client-bound bytes, when [tracing] export_payloads is on

    def finish_reason(self, reason: str | None) -> None:
        if reason and reason not in self.finish_reasons:
            self.finish_reasons.append(reason)


@dataclass(slots=True)
class RequestContext:
    request_id: str
    api: str  # "chat", "embeddings", "messages", "responses", "models"
    shape: str  # error and response shape of the caller: "openai" or "anthropic"
    runtime: Runtime  # the snapshot this request started on
    received_at: float  # unix time
    trace_id: str
    span_id: str  # the gateway's span, sent upstream in traceparent
    parent_span_id: str | None = None
    principal: Principal | None = None
    body: dict[str, Any] | None = None
    alias: str | None = None
    stream: bool = False
    include_usage: bool = False  # the client asked for the usage chunk
    tags: tuple[str, ...] = ()
    target: Target | None = None
    attempts: int = 0
    status: int = 0
    error: GatewayError | None = None
    client_disconnected: bool = False
    usage: Usage = field(default_factory=Usage)
    decisions: list[Decision] = field(default_factory=list)
    timings: Timings = field(default_factory=Timings)
    response_headers: dict[str, str] = field(default_factory=dict)
    # Per-request state owned by one stage each, typed where the stage is known at import time.
    admission: Admission | None = None  # gateway.limits: reservations to settle in the request's finally
    prompt_tokens_estimate: int = 0  # tiktoken count of the prompt, made before the call
    upstream_stream_error: dict[str, Any] | None = None  # an error event the upstream sent mid-stream
    # Opt-in payload logging (sampled per request): the client-bound bytes, after output guardrails.
    payload_out: list[bytes] | None = None
    recorded: bool = False  # the request record was submitted (once: before the response's last byte)
    # The response cache (gateway.cache): "hit", "miss" or "bypass" under a [[cache]] rule, else None; what a
    # hit's answer cost when it was fetched; the filter collecting a miss's answer.
    cache: str | None = None
    cache_saved_usd: float = 0.0
    cache_fill: CacheFill | None = None
    trace: TraceMarks | None = None  # set when the request is sampled for tracing (gateway.tracing)
    # Shadow traffic (gateway.shadow): on a shadow copy, the alias it shadows (only shadow budgets apply);
    # on a sampled primary, its pair; on either, the answer's text and finish reason (filters.answer).
    shadow_of: str | None = None
    shadow_pair: ShadowPair | None = None
    answer: AnswerSink | None = None

    def capture(self) -> list[bytes] | None:
        """Where the client-bound bytes are kept: the audit record's payload list, or else the trace's."""
        if self.payload_out is not None:
            return self.payload_out
        return self.trace.payload if self.trace is not None else None

    def mark_first_token(self) -> None:
        if not self.timings.first_token:
            self.timings.first_token = perf_counter()
