"""The one error hierarchy of the gateway.

Every failure the gateway reports is a `GatewayError` with an HTTP status, an error type, a stable
code and a message that is safe to show a caller (no secrets, no upstream internals). One place
(`render`) turns it into the caller's API shape: OpenAI's `{"error": {...}}` or Anthropic's
`{"type": "error", "error": {...}}`. Reason codes used by policies are listed in `gateway.reasons`.
"""

from __future__ import annotations

import orjson

RETRY_AFTER_S = "1"  # the default Retry-After of a 503 that knows no better


class GatewayError(Exception):
    status = 500
    type = "api_error"
    code = "internal_error"
    retry_after: str | None = None  # an upstream's Retry-After (the router backs off by it and passes it on)

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        status: int | None = None,
        headers: dict[str, str] | None = None,
        upstream_status: int | None = None,
        reason: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.param = param
        self.headers = dict(headers) if headers else {}
        if self.status == 503:
            # Every 503 says when to come back: clients (and the SDKs' retry logic) key off it.
            self.headers.setdefault("retry-after", RETRY_AFTER_S)
        self.upstream_status = upstream_status
        # The reason code (gateway.reasons) recorded for this refusal; `code` is the API-facing code.
        self.reason = reason


class BadRequest(GatewayError):
    status = 400
    type = "invalid_request_error"
    code = "invalid_request"


class Unauthorized(GatewayError):
    status = 401
    type = "authentication_error"
    code = "invalid_api_key"


class Forbidden(GatewayError):
    status = 403
    type = "permission_error"
    code = "forbidden"


class NotFound(GatewayError):
    status = 404
    type = "not_found_error"
    code = "model_not_found"


class RequestTimeout(GatewayError):
    """The request's body did not arrive within `[server] body_timeout_s`."""

    status = 408
    type = "invalid_request_error"
    code = "request_timeout"


class PayloadTooLarge(GatewayError):
    status = 413
    type = "invalid_request_error"
    code = "request_too_large"


class UnsupportedMediaType(GatewayError):
    status = 415
    type = "invalid_request_error"
    code = "unsupported_media_type"


class RateLimited(GatewayError):
    status = 429
    type = "rate_limit_error"
    code = "rate_limit_exceeded"


class PolicyBlocked(GatewayError):
    """A guardrail refused the request (input) or ended the response (output)."""

    status = 400
    type = "invalid_request_error"
    code = "content_policy_violation"


class UpstreamError(GatewayError):
    status = 502
    type = "api_error"
    code = "upstream_error"


class UpstreamTimeout(GatewayError):
    status = 504
    type = "api_error"
    code = "upstream_timeout"


class Overloaded(GatewayError):
    status = 503
    type = "api_error"
    code = "overloaded"


class StoreUnavailable(GatewayError):
    status = 503
    type = "api_error"
    code = "store_unavailable"


# Anthropic's error types by status, for rendering in its shape.
_ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    408: "invalid_request_error",
    413: "request_too_large",
    415: "invalid_request_error",
    429: "rate_limit_error",
    500: "api_error",
    502: "api_error",
    503: "overloaded_error",
    504: "api_error",
    529: "overloaded_error",
}


def openai_body(err: GatewayError) -> dict:
    body: dict = {"message": err.message, "type": err.type, "param": err.param, "code": err.code}
    if err.upstream_status is not None:
        body["upstream_status"] = err.upstream_status
    return {"error": body}


def anthropic_body(err: GatewayError) -> dict:
    # Anthropic's shape has no `param`: its own errors name the field first ("messages.0.content: ...").
    message = f"{err.param}: {err.message}" if err.param else err.message
    body: dict = {"type": _ANTHROPIC_TYPES.get(err.status, "api_error"), "message": message}
    return {"type": "error", "error": body}


def render(err: GatewayError, shape: str) -> bytes:
    """The error as JSON bytes in the caller's shape ("openai" or "anthropic")."""
    return orjson.dumps(anthropic_body(err) if shape == "anthropic" else openai_body(err))
