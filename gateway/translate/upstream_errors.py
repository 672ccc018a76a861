"""Upstream errors (status, vendor error type, vendor message) mapped to the gateway's error hierarchy.

One mapping for both wires: `openai_error_to_gateway` and `anthropic_error_to_gateway` read an error
body; `openai_stream_error` and `anthropic_stream_error` read an error object that arrived inside a
200 answer.
"""

from __future__ import annotations

import orjson

from gateway.errors import (
    BadRequest,
    Forbidden,
    GatewayError,
    NotFound,
    Overloaded,
    PayloadTooLarge,
    RateLimited,
    UpstreamError,
    UpstreamTimeout,
)

_MAX_MESSAGE = 500


def upstream_error(status: int, message: str | None, *, code: str | None = None) -> GatewayError:
    """The gateway error for an upstream failure, keeping the upstream status.

    Only errors the caller can fix by changing its request (400, 413, 422) carry the upstream's own
    message, shortened: it explains what to change. Every other message is fixed text, because the
    upstream's may name the gateway's account, organisation or key (OpenAI's 429 and 401 bodies do),
    and because a 401/403 from upstream is the gateway's credential problem, not the caller's.
    """
    if status in (400, 422):
        return BadRequest(_clip(message) or "the upstream provider rejected the request",
                          code=code, upstream_status=status)
    if status == 413:
        return PayloadTooLarge("the request is too large for the upstream provider", upstream_status=status)
    if status == 404:
        return NotFound("the upstream provider does not know this model or endpoint", upstream_status=status)
    if status in (401, 403):
        return UpstreamError("the upstream provider refused the gateway's credentials",
                             code="upstream_auth_failed", upstream_status=status)
    if status == 429:
        if code == "insufficient_quota":
            # The gateway's account is out of credit: not the caller's rate, and retrying will not help.
            return UpstreamError("the upstream provider's quota is exhausted",
                                 code="upstream_quota_exceeded", upstream_status=status)
        return RateLimited("the upstream provider is rate limiting requests", upstream_status=status)
    if status in (503, 529):
        return Overloaded("the upstream provider is overloaded", upstream_status=status)
    if status in (408, 504):
        return UpstreamTimeout("the upstream provider timed out", upstream_status=status)
    return UpstreamError(f"the upstream provider failed with status {status}", upstream_status=status)


def _clip(message: str | None) -> str | None:
    if not isinstance(message, str) or not message:
        return None
    return message if len(message) <= _MAX_MESSAGE else message[: _MAX_MESSAGE - 1] + "…"


def openai_error_to_gateway(status: int, body: bytes) -> GatewayError:
    return openai_stream_error(status, _error_object(body))


def openai_stream_error(status: int, err: dict) -> GatewayError:
    code = err.get("code")
    if not isinstance(code, str):
        code = err.get("type") if err.get("type") == "insufficient_quota" else None
    return upstream_error(status, err.get("message"), code=code)


# Anthropic error types, for errors that arrive inside a 200 stream (no status to go by).
_STATUS_OF_TYPE = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "overloaded_error": 529,
    "timeout_error": 504,
}


def anthropic_error_to_gateway(status: int, body: bytes) -> GatewayError:
    return anthropic_stream_error(status, _error_object(body))


def anthropic_stream_error(status: int, err: dict) -> GatewayError:
    if status < 400:
        status = _STATUS_OF_TYPE.get(err.get("type") or "", 500)
    return upstream_error(status, err.get("message"))


def _error_object(body: bytes) -> dict:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return {}
    err = data.get("error") if isinstance(data, dict) else None
    return err if isinstance(err, dict) else {}


# -- AWS Bedrock ------------------------------------------------------------------------------------
# Bedrock names its error in the `x-amzn-ErrorType` header (`ThrottlingException:http://...`) with a body
# of `{"message": ...}`; inside a stream, an exception frame's `:exception-type` (`throttlingException`).
# A 403 is either the gateway's AWS identity lacking access to the model (AccessDeniedException, a 403
# with a fixed message, since AWS's names the account and role) or its credentials being refused
# (signature, unknown or expired key: the gateway's credential problem, 502 like any provider's 401).
_BEDROCK_AUTH_FAILURES = frozenset({"unrecognizedclientexception", "invalidsignatureexception",
                                    "expiredtokenexception", "incompletesignatureexception",
                                    "missingauthenticationtokenexception", "invalidclienttokenid"})
# Stream exceptions have no status: the one their modelled shape names (botocore's bedrock-runtime model).
_BEDROCK_STREAM_STATUS = {"throttlingexception": 429, "validationexception": 400, "internalserverexception": 500,
                          "serviceunavailableexception": 503, "modelstreamerrorexception": 424}


def bedrock_error_type(header: str | None) -> str:
    """`ThrottlingException:http://internal.amazon.com/...` -> `throttlingexception`."""
    return (header or "").split(":", 1)[0].strip().lower()


def bedrock_error_to_gateway(status: int, error_type: str, body: bytes) -> GatewayError:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        data = None
    message = data.get("message") or data.get("Message") if isinstance(data, dict) else None
    kind = error_type or (bedrock_error_type(data.get("__type")) if isinstance(data, dict) else "")
    if kind in _BEDROCK_AUTH_FAILURES:
        return UpstreamError("the upstream provider refused the gateway's credentials",
                             code="upstream_auth_failed", upstream_status=status)
    if kind == "accessdeniedexception":
        return Forbidden("AWS Bedrock denied the gateway access to this model (AccessDeniedException): "
                         "the gateway's AWS identity lacks permission or model access",
                         code="upstream_access_denied", upstream_status=status)
    if kind == "modelerrorexception":
        return UpstreamError("the model failed to process the request (Bedrock ModelErrorException)",
                             code="upstream_model_error", upstream_status=status)
    return upstream_error(status, message if isinstance(message, str) else None)


def bedrock_stream_error(exception_type: str, payload: dict) -> GatewayError:
    kind = exception_type.lower()
    if kind == "modelstreamerrorexception":
        return UpstreamError("the model failed while streaming its answer (Bedrock ModelStreamErrorException)",
                             code="upstream_stream_error")
    message = payload.get("message") or payload.get("Message")
    return upstream_error(_BEDROCK_STREAM_STATUS.get(kind, 500), message if isinstance(message, str) else None)


# Google's canonical error statuses (google.rpc.Code), for errors inside a 200 stream (no HTTP status).
_STATUS_OF_GOOGLE = {
    "INVALID_ARGUMENT": 400,
    "FAILED_PRECONDITION": 400,
    "OUT_OF_RANGE": 400,
    "UNAUTHENTICATED": 401,
    "PERMISSION_DENIED": 403,
    "NOT_FOUND": 404,
    "RESOURCE_EXHAUSTED": 429,
    "CANCELLED": 500,
    "UNKNOWN": 500,
    "INTERNAL": 500,
    "UNAVAILABLE": 503,
    "DEADLINE_EXCEEDED": 504,
}
# ErrorInfo reasons that mean the gateway's own credential is wrong, although Google answers 400.
_GOOGLE_KEY_REASONS = frozenset({"API_KEY_INVALID", "API_KEY_SERVICE_BLOCKED", "API_KEY_HTTP_REFERRER_BLOCKED"})


def gemini_error_to_gateway(status: int, body: bytes) -> GatewayError:
    """A Gemini / Vertex AI error body: `{"error": {"code", "message", "status", "details": [...]}}`.
    An invalid API key comes as 400 INVALID_ARGUMENT (reason API_KEY_INVALID): that is the gateway's
    credential, never the caller's fault. A 429's RetryInfo `retryDelay` becomes the Retry-After."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        data = None
    err = data.get("error") if isinstance(data, dict) else None
    if isinstance(data, list) and data and isinstance(data[0], dict):  # a stream's error comes as an array
        err = data[0].get("error")
    return gemini_stream_error(err if isinstance(err, dict) else {}, status)


def gemini_stream_error(err: dict, status: int = 0) -> GatewayError:
    if status < 400:
        code = err.get("code")
        status = code if isinstance(code, int) and 400 <= code < 600 else _STATUS_OF_GOOGLE.get(
            str(err.get("status") or ""), 500)
    details = [d for d in err.get("details") or () if isinstance(d, dict)]
    if status in (400, 403) and any(d.get("reason") in _GOOGLE_KEY_REASONS for d in details):
        status = 401
    gw = upstream_error(status, err.get("message"), code=None)
    for d in details:
        delay = d.get("retryDelay")
        if isinstance(delay, str) and delay.endswith("s"):
            try:
                seconds = float(delay[:-1])
            except ValueError:
                continue
            gw.retry_after = str(max(1, int(-(-seconds // 1))))
    return gw
