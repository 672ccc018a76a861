"""Reading and checking request bodies: content type, size, JSON, and the fields each API requires.

Everything here refuses with a clear 4xx (400, 413, 415) before any policy or upstream work is done.
Unknown fields are passed through to the upstream unchanged (providers keep adding parameters).
"""

from __future__ import annotations

import orjson
from aiohttp import web

from gateway import reasons
from gateway.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType
from gateway.http.shapes import CHECKS

MAX_N = 16
MAX_OUTPUT_TOKENS = 1_000_000


async def read_json(request: web.Request, max_bytes: int) -> dict:
    ctype = request.headers.get("Content-Type", "")
    if ctype.split(";", 1)[0].strip().lower() != "application/json":
        raise UnsupportedMediaType("send the request body as JSON with 'Content-Type: application/json'")
    length = request.content_length
    if length is not None and length > max_bytes:
        raise PayloadTooLarge(f"request body is larger than the limit of {max_bytes} bytes", reason=reasons.BODY_TOO_LARGE)
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise PayloadTooLarge(f"request body is larger than the limit of {max_bytes} bytes", reason=reasons.BODY_TOO_LARGE) from None
    if len(raw) > max_bytes:
        raise PayloadTooLarge(f"request body is larger than the limit of {max_bytes} bytes", reason=reasons.BODY_TOO_LARGE)
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"the body is not valid JSON: {exc.args[0] if exc.args else 'parse error'}", code="invalid_json",
                         reason=reasons.BAD_REQUEST) from None
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object", code="invalid_json", reason=reasons.BAD_REQUEST)
    return body


def _require(cond: bool, message: str, param: str) -> None:
    if not cond:
        raise BadRequest(message, param=param, reason=reasons.BAD_REQUEST)


def _positive_int(body: dict, name: str, limit: int) -> None:
    v = body.get(name)
    if v is None:
        return
    _require(isinstance(v, int) and not isinstance(v, bool) and 0 < v <= limit,
             f"'{name}' must be an integer between 1 and {limit}", name)


def _messages(msgs: list) -> None:
    for i, m in enumerate(msgs):
        _require(isinstance(m, dict), "each message must be an object with a 'role'", f"messages[{i}]")
        _require(isinstance(m.get("role"), str), "'role' is required (a string)", f"messages[{i}].role")


def check_body(api: str, body: dict) -> None:
    """Check the fields the gateway relies on; raise BadRequest naming the parameter."""
    _require(isinstance(body.get("model"), str) and body["model"] != "", "'model' is required (a string)", "model")
    stream = body.get("stream", False)
    _require(stream is None or isinstance(stream, bool), "'stream' must be a boolean", "stream")
    if api == "chat":
        msgs = body.get("messages")
        _require(isinstance(msgs, list) and len(msgs) > 0, "'messages' is required (a non-empty array)", "messages")
        _messages(msgs)
        _positive_int(body, "n", MAX_N)
        _positive_int(body, "max_tokens", MAX_OUTPUT_TOKENS)
        _positive_int(body, "max_completion_tokens", MAX_OUTPUT_TOKENS)
        so = body.get("stream_options")
        _require(so is None or isinstance(so, dict), "'stream_options' must be an object", "stream_options")
    elif api == "messages":
        msgs = body.get("messages")
        _require(isinstance(msgs, list) and len(msgs) > 0, "'messages' is required (a non-empty array)", "messages")
        _messages(msgs)
        _require("max_tokens" in body, "'max_tokens' is required", "max_tokens")
        _positive_int(body, "max_tokens", MAX_OUTPUT_TOKENS)
    elif api == "embeddings":
        inp = body.get("input")
        _require(isinstance(inp, (str, list)) and len(inp) > 0, "'input' is required (a string or an array)", "input")
        _require(not stream, "embeddings cannot be streamed", "stream")
    elif api == "responses":
        inp = body.get("input")
        _require(isinstance(inp, (str, list)), "'input' is required (a string or an array)", "input")
        _positive_int(body, "max_output_tokens", MAX_OUTPUT_TOKENS)
    CHECKS[api](body)  # the parts nested in messages and input, before any policy or provider reads them


def output_choices(api: str, body: dict) -> int:
    """How many answers a request asks for (chat's `n`, checked by `check_body`); each may use max_tokens."""
    n = body.get("n") if api == "chat" else None
    return n if isinstance(n, int) and not isinstance(n, bool) and n > 0 else 1


def max_output_tokens(body: dict) -> int | None:
    for name in ("max_completion_tokens", "max_tokens", "max_output_tokens"):
        v = body.get(name)
        if isinstance(v, int):
            return v
    return None
