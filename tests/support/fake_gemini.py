"""A fake Gemini API / Vertex AI upstream speaking the real wire over a real socket, built from the
`google-genai` SDK's own types (a test dependency).

How the SDK is used (so the fake cannot drift from Google's wire on its own):
- every request body the gateway sends is validated field by field with the SDK's pydantic models
  (`types.Content`, `types.Tool`, `types.ToolConfig`, `types.GenerationConfig`, `types.SafetySetting`;
  they forbid unknown keys and decode `bytes` fields as base64, as the API does), and its top-level
  keys against the `GenerateContentRequest` fields; a body that fails is answered with Google's 400
  and kept in `invalid`, which the tests assert stays empty;
- every answer is a `types.GenerateContentResponse` dumped with the SDK's JSON aliases (camelCase), whole
  for `:generateContent` and one per `data:` event (CRLF-terminated, as Google sends them) for
  `:streamGenerateContent?alt=sse`; errors are Google's error JSON (`google.rpc.Status`), which the SDK's
  `errors.APIError` reads (tests/integration/test_providers_gemini.py checks the SDK's own client reads
  this fake's answers).

Credentials: the Gemini API key must come in `x-goog-api-key` (a wrong or missing one gets Google's 400
`API_KEY_INVALID`, a key in the URL is refused). For Vertex the fake is also the OAuth token endpoint
(`POST /token`): it verifies the service account's signed JWT assertion against the public key of the
key pair the test generated, and issues tokens that expire after `token_lifetime_s`; a Vertex request must
carry a bearer token that was issued and has not expired.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import orjson
from aiohttp import web
from google.auth import jwt as google_jwt
from google.genai import types
from multidict import CIMultiDict

# GenerateContentRequest's body fields (https://ai.google.dev/api/generate-content#request-body; Vertex adds
# `labels`), each validated with the SDK type of one item.
_REQUEST_FIELDS: dict[str, tuple[type, bool]] = {
    "contents": (types.Content, True),
    "systemInstruction": (types.Content, False),
    "tools": (types.Tool, True),
    "toolConfig": (types.ToolConfig, False),
    "generationConfig": (types.GenerationConfig, False),
    "safetySettings": (types.SafetySetting, True),
    "cachedContent": (str, False),
    "labels": (dict, False),
}


def part(text: str | None = None, *, call: tuple[str, dict] | None = None, signature: bytes | None = None,
         thought: bool | None = None) -> types.Part:
    fc = types.FunctionCall(name=call[0], args=call[1]) if call else None
    return types.Part(text=text, function_call=fc, thought_signature=signature, thought=thought)


def usage(prompt: int, candidates: int | None, *, cached: int | None = None, thoughts: int | None = None,
          tool_prompt: int | None = None) -> types.GenerateContentResponseUsageMetadata:
    total = prompt + (candidates or 0) + (thoughts or 0) + (tool_prompt or 0)
    return types.GenerateContentResponseUsageMetadata(
        prompt_token_count=prompt, candidates_token_count=candidates, cached_content_token_count=cached,
        thoughts_token_count=thoughts, tool_use_prompt_token_count=tool_prompt, total_token_count=total)


def response(parts: list[types.Part] | None, *, finish: str | None = "STOP", meta: Any = None,
             model: str = "gemini-2.5-flash", response_id: str = "resp-gemini-1", blocked: str | None = None) -> dict:
    """One GenerateContentResponse as it is on the wire."""
    candidates = None
    if parts is not None or finish is not None:
        candidates = [types.Candidate(index=0, content=types.Content(role="model", parts=parts or []),
                                      finish_reason=types.FinishReason(finish) if finish else None)]
    feedback = types.GenerateContentResponsePromptFeedback(block_reason=blocked) if blocked else None
    resp = types.GenerateContentResponse(candidates=None if blocked else candidates, usage_metadata=meta,
                                         model_version=model, response_id=response_id, prompt_feedback=feedback)
    return resp.model_dump(mode="json", by_alias=True, exclude_none=True)


def google_error(code: int, status: str, message: str, details: list[dict] | None = None) -> bytes:
    err: dict = {"code": code, "message": message, "status": status}
    if details:
        err["details"] = details
    return orjson.dumps({"error": err})


@dataclass
class GReply:
    status: int = 200
    body: dict | bytes | None = None  # a whole answer (a response dict) or raw bytes
    stream: list[dict] | None = None  # streamed responses, one SSE event each
    headers: dict[str, str] = field(default_factory=dict)
    cut_after: int | None = None  # stream this many events, then drop the connection
    event_delay: float = 0.0


@dataclass
class GSeen:
    path: str
    query: str
    headers: CIMultiDict
    body: dict


class FakeGemini:
    def __init__(self, api_key: str = "", public_key_pem: bytes | None = None, token_lifetime_s: int = 3600) -> None:
        self.api_key = api_key
        self.public_key_pem = public_key_pem
        self.token_lifetime_s = token_lifetime_s
        self.script: deque[GReply] = deque()
        self.requests: list[GSeen] = []
        self.invalid: list[str] = []  # why request bodies failed the SDK's validation
        self.token_requests: list[dict] = []  # verified JWT claims of each token request
        self.tokens: dict[str, float] = {}  # issued token -> when it expires
        self.url = ""

    def push(self, *replies: GReply) -> None:
        self.script.extend(replies)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/token", self._token)
        app.router.add_post("/{tail:.*}", self._handle)
        return app

    # -- OAuth token endpoint (Vertex) -------------------------------------------------------------------
    async def _token(self, request: web.Request) -> web.Response:
        form = parse_qs((await request.read()).decode())
        assertion = (form.get("assertion") or [""])[0]
        if form.get("grant_type") != ["urn:ietf:params:oauth:grant-type:jwt-bearer"] or self.public_key_pem is None:
            return web.json_response({"error": "unsupported_grant_type"}, status=400)
        try:  # the signature, audience and times, checked by google-auth's own verifier; the audience is
            # Google's token endpoint, whatever `token_uri` the JSON names, as Google's OAuth server wants
            claims = google_jwt.decode(assertion, certs=self.public_key_pem.decode(),
                                       audience="https://oauth2.googleapis.com/token")
        except ValueError as exc:
            return web.json_response({"error": "invalid_grant", "error_description": str(exc)}, status=400)
        self.token_requests.append(claims)
        token = f"ya29.fake-token-{len(self.token_requests)}"
        self.tokens[token] = time.time() + self.token_lifetime_s
        return web.json_response({"access_token": token, "expires_in": self.token_lifetime_s, "token_type": "Bearer"})

    # -- generateContent ---------------------------------------------------------------------------------
    def _auth_error(self, request: web.Request) -> web.Response | None:
        if "key" in request.query:
            return self._error(400, "INVALID_ARGUMENT", "the key must not be in the URL (test rule)")
        if request.path.startswith("/v1/projects/"):
            auth = request.headers.get("authorization", "")
            expires = self.tokens.get(auth.removeprefix("Bearer "))
            if not auth.startswith("Bearer ") or expires is None or expires < time.time():
                return self._error(401, "UNAUTHENTICATED", "Request had invalid authentication credentials. "
                                   "Expected OAuth 2 access token, login cookie or other valid authentication credential.")
            return None
        if request.headers.get("x-goog-api-key") != self.api_key:
            return self._error(400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.", [
                {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID",
                 "domain": "googleapis.com", "metadata": {"service": "generativelanguage.googleapis.com"}}])
        return None

    @staticmethod
    def _error(code: int, status: str, message: str, details: list[dict] | None = None) -> web.Response:
        return web.Response(status=code, body=google_error(code, status, message, details), content_type="application/json")

    def validate(self, body: object) -> str | None:
        """Why the body is not a GenerateContentRequest the SDK's types accept (None: it is)."""
        if not isinstance(body, dict):
            return "the body is not a JSON object"
        for key, value in body.items():
            if key not in _REQUEST_FIELDS:
                return f"unknown request field {key!r}"
            kind, repeated = _REQUEST_FIELDS[key]
            items = value if repeated else [value]
            if repeated and not isinstance(value, list):
                return f"{key} must be an array"
            for item in items:
                if kind in (str, dict):
                    if not isinstance(item, kind):
                        return f"{key} must be a {kind.__name__}"
                    continue
                try:
                    kind.model_validate_json(orjson.dumps(item))  # type: ignore[attr-defined]
                except Exception as exc:  # pydantic's ValidationError: the message says where
                    return f"{key}: {exc}"
        if not body.get("contents"):
            return "contents is required"
        for content in body["contents"]:
            if content.get("role") not in ("user", "model"):
                return f"content role {content.get('role')!r} is not user or model"
        return None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            body = None
        self.requests.append(GSeen(request.path, request.query_string, CIMultiDict(request.headers),
                                   body if isinstance(body, dict) else {}))
        refused = self._auth_error(request)
        if refused is not None:
            return refused
        stream = request.path.endswith(":streamGenerateContent")
        if not (stream or request.path.endswith(":generateContent")) or (stream and request.query.get("alt") != "sse"):
            return self._error(404, "NOT_FOUND", f"unknown method {request.path}")
        problem = self.validate(body)
        if problem is not None:
            self.invalid.append(problem)
            return self._error(400, "INVALID_ARGUMENT", problem[:300])
        reply = self.script.popleft() if self.script else GReply(
            stream=[response([part("Hello")], finish=None, meta=usage(8, 1)),
                    response([part(" from Gemini!")], meta=usage(8, 5))] if stream else None,
            body=None if stream else response([part("Hello from Gemini!")], meta=usage(8, 5)))
        if reply.stream is None:
            data = reply.body if isinstance(reply.body, bytes) else orjson.dumps(reply.body)
            return web.Response(status=reply.status, body=data, headers=reply.headers, content_type="application/json")
        resp = web.StreamResponse(status=reply.status, headers=reply.headers)
        resp.content_type = "text/event-stream"
        await resp.prepare(request)
        for i, event in enumerate(reply.stream):
            if reply.cut_after is not None and i >= reply.cut_after:
                assert request.transport is not None
                request.transport.abort()
                return resp
            if i and reply.event_delay:
                await asyncio.sleep(reply.event_delay)
            await resp.write(b"data: " + orjson.dumps(event) + b"\r\n\r\n")
        await resp.write_eof()
        return resp
