"""Reason codes: the one list of why the gateway allowed, changed or refused a request.

Every `Decision` and every refusal carries one of these codes; records, metrics (as a bounded label),
alerts and the dashboard group by them. Add a code here, never inline a string elsewhere.
"""

# auth
AUTH_MISSING_KEY = "auth.missing_key"
AUTH_UNKNOWN_KEY = "auth.unknown_key"
AUTH_EXPIRED_KEY = "auth.expired_key"
AUTH_REVOKED_KEY = "auth.revoked_key"
AUTH_MODEL_NOT_ALLOWED = "auth.model_not_allowed"

# rate limits and budgets
RATE_LIMIT_REQUESTS = "rate_limit.requests"
RATE_LIMIT_TOKENS = "rate_limit.tokens"
RATE_LIMIT_CONCURRENCY = "rate_limit.concurrency"
BUDGET_USD = "budget.usd"
BUDGET_TOKENS = "budget.tokens"
STORE_UNAVAILABLE = "store.unavailable"
STORE_FAIL_OPEN = "store.fail_open"

# guardrails
PII_DETECTED = "guardrail.pii"
SECRET_DETECTED = "guardrail.secret"
INJECTION_DETECTED = "guardrail.injection"
DENY_LIST_MATCH = "guardrail.deny_list"
GUARDRAIL_ERROR = "guardrail.error"
GUARDRAIL_UNSCANNED = "guardrail.unscanned"
GUARDRAIL_HOLD_BACK_OVERFLOW = "guardrail.hold_back_overflow"  # stream text released by the hold-back bound
# A finding in signed text (an Anthropic thinking block) that an action would rewrite: rewriting breaks the
# signature, so the answer is refused instead (fail closed).
GUARDRAIL_SIGNED_TEXT = "guardrail.signed_text"

# request shape and capacity
BAD_REQUEST = "request.invalid"
BODY_TOO_LARGE = "request.too_large"
OVERLOADED = "gateway.overloaded"  # past [server] max_in_flight
BODY_TIMEOUT = "request.body_timeout"  # the body did not arrive within [server] body_timeout_s (408)
BODY_READERS_FULL = "gateway.body_readers_full"  # past [server] max_body_readers (503)
KEY_IN_FLIGHT = "gateway.key_in_flight"  # past [server] max_in_flight_per_key (429)

# upstream
UPSTREAM_ERROR = "upstream.error"
UPSTREAM_TIMEOUT = "upstream.timeout"
UPSTREAM_CIRCUIT_OPEN = "upstream.circuit_open"
CLIENT_DISCONNECTED = "client.disconnected"
CLIENT_SEND_TIMEOUT = "client.send_timeout"  # the client read nothing for [server] send_timeout_s; closed
SERVER_DRAIN_DEADLINE = "server.drain_deadline"  # still running when drain_timeout_s ran out: cut by us

ALL = frozenset(v for k, v in dict(globals()).items() if k.isupper() and isinstance(v, str))
