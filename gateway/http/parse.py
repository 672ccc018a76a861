"""Reading request bodies: content type, size and JSON, refused with a clear 4xx (400, 413, 415) before
any policy or upstream work is done. The fields each API requires are its spec's (gateway/apis);
unknown fields are passed through to the upstream unchanged (providers keep adding parameters).
"""

from __future__ import annotations

import orjson
from aiohttp import web

from gateway import reasons
from gateway.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType


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
