"""A fake AWS Bedrock runtime over a real socket, speaking Bedrock's wire as botocore defines it.

- Every request's SigV4 signature is recomputed with botocore's `SigV4Auth` from the known test
  credentials (`KEYS`) and compared: an unknown access key gets 403 `UnrecognizedClientException`, a
  wrong signature (a wrong secret, a changed body or header) 403 `InvalidSignatureException`, with the
  `x-amzn-ErrorType` header AWS uses.
- The body is validated against the `Converse` / `ConverseStream` input shape of botocore's shipped
  `bedrock-runtime` service model (botocore's own `ParamValidator`); a body that fails gets 400
  `ValidationException`, and is kept in `invalid` so a test can assert there was none.
- Answers: Converse JSON and ConverseStream event-stream frames whose payloads are validated against
  the model's output and event shapes before they are sent (plus the `p` padding field Bedrock adds).
  botocore has no event-stream encoder, so `frame` builds one (prelude, string headers, payload, two
  CRC32s); tests/unit/test_bedrock_codec.py reads the fake's frames back with botocore's own parser.
"""

from __future__ import annotations

import binascii
import datetime
import struct
from collections import deque
from dataclasses import dataclass, field
from urllib.parse import unquote

import botocore.session
import orjson
from aiohttp import web
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.validate import ParamValidator

ACCESS_KEY = "AKIAFAKEBEDROCKTEST01"
SECRET_KEY = "fAkE/SeCrEt+bedrock/0123456789abcdefGHIJK"  # 40 characters, like AWS's
KEYS = {ACCESS_KEY: SECRET_KEY}
REGION = "us-east-1"

MODEL = botocore.session.get_session().get_service_model("bedrock-runtime")
_VALIDATOR = ParamValidator()


def check_shape(params: dict, shape_name: str) -> str | None:
    """botocore's validation report for `params` against a bedrock-runtime shape (None: valid)."""
    report = _VALIDATOR.validate(params, MODEL.shape_for(shape_name))
    return report.generate_report() if report.has_errors() else None


def frame(headers: dict[str, str], payload: bytes) -> bytes:
    """One AWS event-stream message (string-typed headers, as Bedrock sends)."""
    hbytes = b"".join(struct.pack("!B", len(k)) + k.encode() + b"\x07" + struct.pack("!H", len(v)) + v.encode()
                      for k, v in headers.items())
    total = 12 + len(hbytes) + len(payload) + 4
    prelude = struct.pack("!II", total, len(hbytes))
    prelude += struct.pack("!I", binascii.crc32(prelude))
    body = prelude + hbytes + payload
    return body + struct.pack("!I", binascii.crc32(body))


def event(name: str, payload: dict) -> bytes:
    problem = check_shape(payload, MODEL.shape_for("ConverseStreamOutput").members[name].name)
    assert problem is None, problem
    data = orjson.dumps({**payload, "p": "abcdefghijklmnopqrstuvwxyzABCDEFGH"[: 4 + len(name) % 20]})
    return frame({":event-type": name, ":content-type": "application/json", ":message-type": "event"}, data)


def exception(name: str, message: str) -> bytes:
    return frame({":exception-type": name, ":content-type": "application/json", ":message-type": "exception"},
                 orjson.dumps({"message": message}))


def usage(inp: int, out: int, read: int = 0, write: int = 0) -> dict:
    return {"inputTokens": inp, "outputTokens": out, "totalTokens": inp + out + read + write,
            "cacheReadInputTokens": read, "cacheWriteInputTokens": write}


def text_stream(pieces: list[str], u: dict, stop: str = "end_turn") -> list[bytes]:
    out = [event("messageStart", {"role": "assistant"})]
    out += [event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": p}}) for p in pieces]
    out += [event("contentBlockStop", {"contentBlockIndex": 0}), event("messageStop", {"stopReason": stop}),
            event("metadata", {"usage": u, "metrics": {"latencyMs": 412}})]
    return out


def tool_stream(text: str, calls: list[tuple[str, str, list[str]]], u: dict) -> list[bytes]:
    out = [event("messageStart", {"role": "assistant"}),
           event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": text}}),
           event("contentBlockStop", {"contentBlockIndex": 0})]
    for i, (tid, name, pieces) in enumerate(calls, start=1):
        out.append(event("contentBlockStart", {"contentBlockIndex": i, "start": {"toolUse": {"toolUseId": tid, "name": name}}}))
        out += [event("contentBlockDelta", {"contentBlockIndex": i, "delta": {"toolUse": {"input": p}}}) for p in pieces]
        out.append(event("contentBlockStop", {"contentBlockIndex": i}))
    out += [event("messageStop", {"stopReason": "tool_use"}), event("metadata", {"usage": u, "metrics": {"latencyMs": 9}})]
    return out


def converse(content: list[dict], u: dict, stop: str = "end_turn") -> bytes:
    body = {"output": {"message": {"role": "assistant", "content": content}}, "stopReason": stop,
            "usage": u, "metrics": {"latencyMs": 321}}
    problem = check_shape(body, "ConverseResponse")
    assert problem is None, problem
    return orjson.dumps(body)


@dataclass
class BedrockReply:
    status: int = 200
    body: bytes | None = None  # a whole Converse answer (or an error body)
    frames: list[bytes] | None = None  # a ConverseStream answer
    error_type: str | None = None  # x-amzn-ErrorType of an error reply
    reset_after: int | None = None  # drop the connection after this many frames


def error(status: int, kind: str, message: str) -> BedrockReply:
    return BedrockReply(status=status, body=orjson.dumps({"message": message}), error_type=kind)


@dataclass
class SeenRequest:
    path: str
    model: str
    headers: dict[str, str]
    body: dict
    signed_headers: list[str] = field(default_factory=list)
    access_key: str = ""


class FakeBedrock:
    def __init__(self) -> None:
        self.script: deque[BedrockReply] = deque()
        self.requests: list[SeenRequest] = []
        self.refused: list[str] = []  # signature failures, by AWS error type
        self.invalid: list[str] = []  # bodies botocore's model refused
        self.keys = dict(KEYS)  # access key -> secret key this fake accepts
        self.url = ""

    def push(self, *replies: BedrockReply) -> None:
        self.script.extend(replies)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/model/{model}/{op:converse|converse-stream}", self._handle)
        return app

    def _verify(self, request: web.Request, raw: bytes) -> tuple[str | None, list[str]]:
        auth = request.headers.get("authorization", "")
        try:
            algo, rest = auth.split(" ", 1)
            parts = dict(p.strip().split("=", 1) for p in rest.split(","))
            access, date, region, service, term = parts["Credential"].split("/")
            signed = parts["SignedHeaders"].split(";")
        except ValueError:
            return "IncompleteSignatureException", []
        if algo != "AWS4-HMAC-SHA256" or (region, service, term) != (REGION, "bedrock", "aws4_request"):
            return "IncompleteSignatureException", signed
        secret = self.keys.get(access)
        if secret is None:
            return "UnrecognizedClientException", signed
        token = request.headers.get("x-amz-security-token")
        aws = AWSRequest(method=request.method, url=f"http://{request.host}{request.raw_path}", data=raw,
                         headers={h: request.headers[h] for h in signed if h != "host" and h in request.headers})
        aws.context["timestamp"] = request.headers.get("x-amz-date", "")
        signer = SigV4Auth(Credentials(access, secret, token), "bedrock", REGION)
        expected = signer.signature(signer.string_to_sign(aws, signer.canonical_request(aws)), aws)
        if expected != parts["Signature"] or not aws.context["timestamp"].startswith(date):
            return "InvalidSignatureException", signed
        return None, signed

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        refused, signed = self._verify(request, raw)
        if refused is not None:
            self.refused.append(refused)
            return _error_response(error(403, refused, "The request signature we calculated does not match "
                                         "the signature you provided."))
        model = unquote(request.match_info["model"])
        body = orjson.loads(raw)
        self.requests.append(SeenRequest(request.raw_path, model, dict(request.headers), body, signed,
                                         request.headers["authorization"].split("Credential=")[1].split("/")[0]))
        stream = request.match_info["op"] == "converse-stream"
        problem = check_shape({"modelId": model, **body}, "ConverseStreamRequest" if stream else "ConverseRequest")
        if problem is not None:
            self.invalid.append(problem)
            return _error_response(error(400, "ValidationException", problem))
        reply = self.script.popleft() if self.script else BedrockReply(
            frames=text_stream(["Hello from", " Bedrock!"], usage(20, 9)) if stream else None,
            body=None if stream else converse([{"text": "Hello from Bedrock!"}], usage(20, 9)))
        if reply.error_type is not None:
            return _error_response(reply)
        if reply.frames is None:
            return web.Response(status=reply.status, body=reply.body or b"", content_type="application/json")
        resp = web.StreamResponse(status=200)
        resp.content_type = "application/vnd.amazon.eventstream"
        await resp.prepare(request)
        for i, f in enumerate(reply.frames):
            if reply.reset_after is not None and i >= reply.reset_after:
                assert request.transport is not None
                request.transport.abort()
                return resp
            await resp.write(f)
        await resp.write_eof()
        return resp


def _error_response(reply: BedrockReply) -> web.Response:
    return web.Response(status=reply.status, body=reply.body or b"", content_type="application/json",
                        headers={"x-amzn-ErrorType": f"{reply.error_type}:http://internal.amazon.com/coral/"
                                                     "com.amazon.bedrock/"})


class FakeSts:
    """AWS STS's AssumeRole (query protocol, XML answer), for `role_arn`: each call issues new role
    credentials, valid for `lifetime_s`, and registers them with the fake Bedrock."""

    def __init__(self, bedrock: FakeBedrock, lifetime_s: float = 3600) -> None:
        self.bedrock = bedrock
        self.lifetime_s = lifetime_s
        self.calls: list[dict[str, str]] = []
        self.url = ""

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/", self._handle)
        return app

    async def _handle(self, request: web.Request) -> web.Response:
        form = dict(await request.post())
        caller = request.headers.get("authorization", "").split("Credential=")[-1].split("/")[0]
        self.calls.append({**{k: str(v) for k, v in form.items()}, "caller": caller})
        n = len(self.calls)
        access, secret = f"ASIAROLE{n:012d}", f"role/secret+{n:04d}/abcdefghijklmnopqrstuv"
        self.bedrock.keys[access] = secret
        expires = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=self.lifetime_s)
        xml = f"""<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleResult>
    <Credentials>
      <AccessKeyId>{access}</AccessKeyId>
      <SecretAccessKey>{secret}</SecretAccessKey>
      <SessionToken>role-session-token-{n}</SessionToken>
      <Expiration>{expires.strftime("%Y-%m-%dT%H:%M:%SZ")}</Expiration>
    </Credentials>
    <AssumedRoleUser>
      <AssumedRoleId>AROAFAKE:{form.get("RoleSessionName")}</AssumedRoleId>
      <Arn>{form.get("RoleArn")}/{form.get("RoleSessionName")}</Arn>
    </AssumedRoleUser>
  </AssumeRoleResult>
  <ResponseMetadata><RequestId>req-{n}</RequestId></ResponseMetadata>
</AssumeRoleResponse>"""
        return web.Response(body=xml.encode(), content_type="text/xml")
