"""Translation between the OpenAI Chat Completions and Anthropic Messages wires.

Pure functions and small per-request stream translators, no I/O:
- `openai_to_anthropic`: an OpenAI-format caller reaching an Anthropic provider.
- `anthropic_to_openai`: an Anthropic-format caller (/v1/messages) reaching an OpenAI-format provider.
- `sse`: the event-stream parser and encoder both directions share.

This module owns the one mapping from an upstream error (status, vendor error type, vendor message)
to the gateway's error hierarchy, which both directions use.
"""

from __future__ import annotations

from gateway.errors import (
    BadRequest,
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
