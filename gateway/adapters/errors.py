"""Upstream error responses turned into safe gateway errors (the upstream status is kept)."""

from __future__ import annotations

import orjson

from gateway.errors import BadRequest, GatewayError, NotFound, RateLimited, UpstreamError, UpstreamTimeout


def _upstream_message(body: bytes) -> str | None:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    err = data.get("error") if isinstance(data, dict) else None
    if isinstance(err, dict) and isinstance(err.get("message"), str):
        return err["message"][:500]
    return None


def upstream_error(wire: str, status: int, body: bytes) -> GatewayError:
    """Map an upstream error. Client errors (400, 404, 413, 422) pass their message through, since they
    describe the caller's request; auth and server errors get a gateway message, since an upstream 401
    means the gateway's provider key is wrong, which is not the caller's business to see."""
    msg = _upstream_message(body)
    if status in (400, 404, 413, 422):
        cls = NotFound if status == 404 else BadRequest
        return cls(f"upstream rejected the request: {msg or 'no message'}", code="upstream_bad_request",
                   status=400 if status == 422 else status, upstream_status=status)
    if status == 429:
        return RateLimited("upstream rate limit reached", code="upstream_rate_limited", upstream_status=status)
    if status in (401, 403):
        return UpstreamError("the gateway's credentials for this provider were refused", code="upstream_auth_error",
                             upstream_status=status)
    if status in (408, 504):
        return UpstreamTimeout("upstream timed out", upstream_status=status)
    return UpstreamError(f"upstream error (status {status})", upstream_status=status)

